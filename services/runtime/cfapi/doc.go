// Package cfapi serves the subset of Cloudflare's API that manages Workers
// for Platforms dispatch namespaces, backed by the runtime's on-disk store
// (package scripts), so that cloudflare-go v6 (package
// workers_for_platforms) and wrangler work against the local runtime
// unchanged.
//
// Every path lives under
//
//	/client/v4/accounts/{account_id}/workers/dispatch/namespaces
//
// and needs "Authorization: Bearer <token>". Answers use Cloudflare's
// envelope {success, errors:[{code,message}], messages, result}. Routes:
//
//	GET    /namespaces                                  list namespaces
//	POST   /namespaces                                  create {"name": ...}
//	GET    /namespaces/{ns}                             get
//	DELETE /namespaces/{ns}                             delete with its scripts
//	GET    /namespaces/{ns}/scripts[?tags=a:yes,b:no]   list scripts, filtered by tags
//	DELETE /namespaces/{ns}/scripts?tags=a:yes          delete scripts matching the filter
//	PUT    /namespaces/{ns}/scripts/{s}                 upload (multipart), a new version
//	GET    /namespaces/{ns}/scripts/{s}                 script details
//	DELETE /namespaces/{ns}/scripts/{s}                 delete
//	GET    /namespaces/{ns}/scripts/{s}/content         modules as multipart/form-data
//	PUT    /namespaces/{ns}/scripts/{s}/content         new modules, same settings: a new version
//	GET    /namespaces/{ns}/scripts/{s}/settings        settings (secret values never shown)
//	GET    /namespaces/{ns}/scripts/{s}/bindings        bindings (secret values never shown)
//	GET    /namespaces/{ns}/scripts/{s}/tags            tags
//	PUT    /namespaces/{ns}/scripts/{s}/tags            replace tags with a JSON array
//	PUT    /namespaces/{ns}/scripts/{s}/tags/{tag}      add one tag
//	DELETE /namespaces/{ns}/scripts/{s}/tags/{tag}      remove one tag
//	GET    /namespaces/{ns}/scripts/{s}/secrets         list secrets (names and types)
//	PUT    /namespaces/{ns}/scripts/{s}/secrets         put {"name","text","type":"secret_text"}
//	GET    /namespaces/{ns}/scripts/{s}/secrets/{name}  one secret's name and type
//	DELETE /namespaces/{ns}/scripts/{s}/secrets/{name}  delete a secret
//
// An upload's answer carries the new version number, the one the
// invocation endpoint takes, in the result field "dotdo_version" and the
// header X-Dotdo-Script-Version.
package cfapi
