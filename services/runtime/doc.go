// Package runtime is the local runtime of the dotdo platform: Cloudflare's
// Workers for Platforms API for dispatch namespaces, served from a local
// data directory, and the execution of the uploaded workers in workerd.
//
// # Handler
//
// (*Runtime).Handler serves, on one listener:
//
//   - /client/v4/accounts/{account_id}/workers/dispatch/namespaces/... : the
//     Cloudflare API subset (package cfapi lists the routes), so that
//     cloudflare-go v6 works with option.WithBaseURL("http://host:port/client/v4/")
//     and option.WithAPIToken(Config.APIToken). Account id Config.AccountID
//     ("local" by default); other ids get 403 code 10000.
//   - /invoke/{namespace}/{script}/{version}/{path...}?{query} : the
//     invocation endpoint for the dispatcher (below).
//   - /healthz : 200 {"status":"ok"}, no credential.
//
// # Invocation endpoint
//
// A request to /invoke/{namespace}/{script}/{version}{/path}{?query} with
// header X-Dotdo-Invoke-Token: <Config.InvokeToken> runs version {version}
// (the number the upload answered, "dotdo_version") of the script on a
// request whose URL is {scheme}://{host}{/path}{?query}, where scheme is
// X-Forwarded-Proto (http or https; default http) and host is
// X-Forwarded-Host, else the Host header. Method, headers (the end user's
// Authorization included) and the body are passed on, the body streamed;
// the worker's response (status, headers, body) is streamed back, and
// WebSocket upgrades pass through. The X-Dotdo-Invoke-Token header is
// removed before the worker sees the request. No version lookup happens
// beyond an in-memory existence check. Answers that do not come from the
// worker are JSON {"error": ...}:
//
//	401 missing or wrong X-Dotdo-Invoke-Token
//	404 {"error":"Worker not found"}  unknown namespace, script or version
//	500 {"error":"Worker threw exception"}  the worker's fetch handler threw
//	500 {"error":"Worker failed to start"}  a stored version that throws at
//	    start-up after all (top-level code depending on what the upload check
//	    did not see, such as a secret put later)
//	502 the workerd process died under the request (crash, or killed as hung)
//	503 no workerd process could be started, or it could not read the
//	    worker's code (the process is then replaced)
//	503 {"error":"Worker runtime is low on memory; try again","code":"low_memory"}
//	    the worker had no process, and the machine had less memory
//	    available than Config.MinFreeMemoryMB even after the idle
//	    processes stopped
//
// # Versions
//
// Every upload (PUT .../scripts/{script}, PUT .../content) stores a new
// version of the script: numbers start at 1, increase with every upload and
// are never reused, not even after the script is deleted. An upload tagged
// "dotdo-version=N" (as the Deploy API tags every upload) gets number N,
// which must be above the last one, so that the runtime's numbers are the
// platform's deployment versions; numbers then skip where deployments
// failed. The upload's
// answer carries the number in result.dotdo_version and in the
// X-Dotdo-Script-Version header; all stored versions stay invocable until
// the script is deleted.
//
// # Top-level throws
//
// Every upload is started once before it is stored, in a separate workerd
// process used only for these checks: a script that throws at top level,
// has a syntax error, imports a missing module, has no default export or
// names an unsupported compatibility date or flag is rejected with 400 and
// Cloudflare's code 10021 and the workerd message ("Uncaught Error: ..."),
// and nothing is stored, as Cloudflare does. A script that hangs at
// start-up fails its check after HealthTimeout (or StartupCheckTimeout) and
// never reaches a serving process. A stored version that fails to start
// anyway (its top-level code depends on a secret put later, say) answers
// 500 "Worker failed to start" to its own requests only; the other workers
// of the namespace keep working.
//
// # Execution
//
// One workerd process per worker version with traffic, serving that
// version statically (package workerd): started on the first request (the
// cold start, tens of milliseconds), replaced blue/green when a newer
// version or new secrets take over, stopped after Config.IdleTimeout
// without requests (scale to zero), and killed when an invocation passes
// its CPU limit (limits.cpu_ms of the upload's metadata, else
// Config.CPULimit) or its memory limit (Config.MemoryMB): the request gets
// exceeded_cpu or exceeded_memory and the next one starts a new process.
// One worker's process never serves another's requests, so a worker that
// spins or allocates without bound costs no other worker anything. The env
// of a worker holds its plain_text, json and secret_text bindings and the
// script's secrets (secrets win over bindings of the same name); secrets
// reach the process in its environment, never on disk.
//
// # Admission and eviction
//
// At most Config.MaxProcesses processes run (the least recently used idle
// one makes room) and Config.MaxStarting start at once. Before a process
// starts the runtime reads the machine's available memory (MemAvailable of
// /proc/meminfo, at most every 250 ms): below Config.MinFreeMemoryMB
// (DOTDO_MIN_FREE_MEMORY_MB, 512 MiB by default) it stops idle processes,
// least recently used first, and refuses the start (503 low_memory) when
// that frees too little. Nothing the runtime keeps per worker outlives
// what needs it: the Unix socket of a service binding target lives while a
// running process binds it, and a deleted script's processes stop and its
// cached metric attributes go (the meter provider itself keeps the
// deleted worker's series at their last values until the runtime restarts,
// within OpenTelemetry's default limit of 2,000 series per instrument).
// The only environment variable read is DOTDO_WORKERD (the workerd binary,
// when Config.WorkerdPath is empty); everything else comes from Config.
package runtime
