// Package cfapi serves the subset of Cloudflare's API that manages Workers
// for Platforms dispatch namespaces, backed by a local store, so that
// cloudflare-go v6 (package workers_for_platforms) and wrangler work against
// the local runtime unchanged.
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

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/runtime/scripts"
)

// Prefix is the path prefix of the API.
const Prefix = "/client/v4/"

// DefaultMaxScriptBytes is the default bound on the total size of a
// script's modules (10 MiB, Cloudflare's paid-plan limit).
const DefaultMaxScriptBytes = 10 << 20

// DefaultCompatibilityDate is used for uploads without compatibility_date.
const DefaultCompatibilityDate = "2025-01-01"

const (
	maxJSONBody     = 1 << 20
	maxMetadataSize = 1 << 20
)

// StartupChecker starts an uploaded version before it is stored. An error
// wrapping a *ScriptError rejects the upload with a 400; any other error
// answers 503 and nothing is stored.
type StartupChecker interface {
	CheckStartup(ctx context.Context, namespace, script string, d *scripts.Draft, secrets map[string]string) (time.Duration, error)
}

// ScriptError is a start-up failure of an uploaded script; Message reaches
// the uploader.
type ScriptError struct {
	// Message is workerd's description of the failure.
	Message string
}

// Error returns the message.
func (e *ScriptError) Error() string { return e.Message }

// Config configures the API handler.
type Config struct {
	// AccountID is the only account id served; others get 403.
	AccountID string
	// APIToken is the bearer token every request must carry. Required.
	APIToken string
	// MaxScriptBytes bounds the total size of a version's modules.
	MaxScriptBytes int64
	// DefaultCompatibilityDate applies when an upload names none.
	DefaultCompatibilityDate string
	// Store holds the data. Required.
	Store *scripts.Store
	// Checker, when set, start-checks every upload before it is stored.
	Checker StartupChecker
	// OnNamespaceDeleted, when set, is called after a namespace is deleted.
	OnNamespaceDeleted func(namespace string)
	// Logger receives one line per request (never a token or secret).
	Logger *slog.Logger
}

// API is the http.Handler of the Cloudflare API subset.
type API struct {
	cfg       Config
	log       *slog.Logger
	tokenHash [32]byte
}

// New returns the API handler.
func New(cfg Config) (*API, error) {
	if cfg.APIToken == "" {
		return nil, errors.New("cfapi: APIToken is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("cfapi: Store is required")
	}
	if cfg.AccountID == "" {
		return nil, errors.New("cfapi: AccountID is required")
	}
	if cfg.MaxScriptBytes <= 0 {
		cfg.MaxScriptBytes = DefaultMaxScriptBytes
	}
	if cfg.DefaultCompatibilityDate == "" {
		cfg.DefaultCompatibilityDate = DefaultCompatibilityDate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: cfg.Logger, tokenHash: sha256.Sum256([]byte(cfg.APIToken))}, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route := a.serve(sw, r)
	level := slog.LevelDebug
	if r.Method != http.MethodGet || sw.status >= 400 {
		level = slog.LevelInfo
	}
	a.log.Log(r.Context(), level, "runtime api", "method", r.Method, "route", route, "status", sw.status,
		"duration", time.Since(start).Round(time.Microsecond))
}

// serve handles the request and returns a route label for the log.
func (a *API) serve(w http.ResponseWriter, r *http.Request) string {
	if err := a.authenticate(r); err != nil {
		writeError(w, err)
		return "unauthenticated"
	}
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok || len(segs) < 2 || segs[0] != "accounts" {
		writeError(w, errf(http.StatusNotFound, CodeNoRoute, "No route for the URI"))
		return "no route"
	}
	if segs[1] != a.cfg.AccountID {
		writeError(w, errf(http.StatusForbidden, CodeAuthError, "Authentication error"))
		return "foreign account"
	}
	segs = segs[2:]
	if len(segs) < 3 || segs[0] != "workers" || segs[1] != "dispatch" || segs[2] != "namespaces" {
		writeError(w, errf(http.StatusNotFound, CodeNoRoute, "No route for the URI"))
		return "no route"
	}
	segs = segs[3:]
	h, route := a.route(r.Method, segs)
	if h == nil {
		writeError(w, errf(http.StatusNotFound, CodeNoRoute, "No route for the URI"))
		return "no route"
	}
	if err := h(w, r, segs); err != nil {
		writeError(w, err)
	}
	return route
}

func (a *API) authenticate(r *http.Request) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errf(http.StatusBadRequest, CodeAuthMissing, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errf(http.StatusBadRequest, CodeAuthFormat, "Invalid format for Authorization header")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		return errf(http.StatusForbidden, CodeAuthInvalid, "Invalid access token")
	}
	return nil
}

// splitPath splits the escaped path below Prefix into unescaped segments.
// Segments are unescaped one by one, so "%2F" stays inside its segment
// (and is then refused by name validation).
func splitPath(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, Prefix)
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil, true
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

type handler func(w http.ResponseWriter, r *http.Request, segs []string) *apiError

// route picks the handler for the path below .../dispatch/namespaces. A nil
// handler means no such path; a known path with another method answers 405.
func (a *API) route(method string, segs []string) (handler, string) {
	type ep struct {
		route   string
		methods map[string]handler
	}
	var e ep
	switch {
	case len(segs) == 0:
		e = ep{"namespaces", map[string]handler{"GET": a.listNamespaces, "POST": a.createNamespace}}
	case len(segs) == 1:
		e = ep{"namespace", map[string]handler{"GET": a.getNamespace, "DELETE": a.deleteNamespace}}
	case len(segs) == 2 && segs[1] == "scripts":
		e = ep{"scripts", map[string]handler{"GET": a.listScripts, "DELETE": a.deleteScriptsByTag}}
	case len(segs) == 3 && segs[1] == "scripts":
		e = ep{"script", map[string]handler{"GET": a.getScript, "PUT": a.uploadScript, "DELETE": a.deleteScript}}
	case len(segs) == 4 && segs[1] == "scripts":
		switch segs[3] {
		case "content":
			e = ep{"script content", map[string]handler{"GET": a.getContent, "PUT": a.putContent}}
		case "settings":
			e = ep{"script settings", map[string]handler{"GET": a.getSettings}}
		case "bindings":
			e = ep{"script bindings", map[string]handler{"GET": a.getBindings}}
		case "tags":
			e = ep{"script tags", map[string]handler{"GET": a.getTags, "PUT": a.putTags}}
		case "secrets":
			e = ep{"script secrets", map[string]handler{"GET": a.listSecrets, "PUT": a.putSecret}}
		}
	case len(segs) == 5 && segs[1] == "scripts":
		switch segs[3] {
		case "tags":
			e = ep{"script tag", map[string]handler{"PUT": a.putTag, "DELETE": a.deleteTag}}
		case "secrets":
			e = ep{"script secret", map[string]handler{"GET": a.getSecret, "DELETE": a.deleteSecret}}
		}
	}
	if e.methods == nil {
		return nil, ""
	}
	if h, ok := e.methods[method]; ok {
		return h, method + " " + e.route
	}
	return func(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
		return errf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method not allowed for this endpoint")
	}, method + " " + e.route
}

// pathNames validates the namespace (and script) segments.
func pathNames(segs []string, withScript bool) (ns, script string, err *apiError) {
	ns = segs[0]
	if !names.ValidScript(ns) {
		return "", "", errf(http.StatusBadRequest, CodeInvalidName, "Invalid namespace name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
	}
	if withScript {
		script = segs[2]
		if !names.ValidScript(script) {
			return "", "", errf(http.StatusBadRequest, CodeInvalidName, "Invalid script name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
		}
	}
	return ns, script, nil
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) *apiError {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, CodeBadBody, "The request body is not valid JSON for this endpoint.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errf(http.StatusBadRequest, CodeBadBody, "The request body has data after the JSON value.")
	}
	return nil
}

func fail(err error) *apiError {
	if err == nil {
		return nil
	}
	if ae := storeError(err); ae != nil {
		return ae
	}
	return errf(http.StatusInternalServerError, CodeInternal, "Internal error.")
}

// Namespaces.

type namespaceJSON struct {
	NamespaceID    string    `json:"namespace_id"`
	NamespaceName  string    `json:"namespace_name"`
	CreatedOn      time.Time `json:"created_on"`
	CreatedBy      string    `json:"created_by"`
	ModifiedOn     time.Time `json:"modified_on"`
	ModifiedBy     string    `json:"modified_by"`
	ScriptCount    int       `json:"script_count"`
	TrustedWorkers bool      `json:"trusted_workers"`
}

func (a *API) namespaceJSON(n scripts.Namespace) namespaceJSON {
	return namespaceJSON{
		NamespaceID: n.ID, NamespaceName: n.Name, CreatedOn: n.CreatedOn, CreatedBy: a.cfg.AccountID,
		ModifiedOn: n.ModifiedOn, ModifiedBy: a.cfg.AccountID, ScriptCount: n.ScriptCount,
	}
}

func (a *API) listNamespaces(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
	list := a.cfg.Store.Namespaces()
	out := make([]namespaceJSON, 0, len(list))
	for _, n := range list {
		out = append(out, a.namespaceJSON(n))
	}
	writeResult(w, out)
	return nil
}

func (a *API) createNamespace(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if !names.ValidScript(body.Name) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid namespace name: use 1 to 63 lowercase letters, digits, '-' and '_'.")
	}
	n, err := a.cfg.Store.CreateNamespace(body.Name)
	if err != nil {
		return fail(err)
	}
	writeResult(w, a.namespaceJSON(n))
	return nil
}

func (a *API) getNamespace(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return aerr
	}
	n, err := a.cfg.Store.Namespace(ns)
	if err != nil {
		return fail(err)
	}
	writeResult(w, a.namespaceJSON(n))
	return nil
}

func (a *API) deleteNamespace(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return aerr
	}
	if err := a.cfg.Store.DeleteNamespace(ns); err != nil {
		return fail(err)
	}
	if a.cfg.OnNamespaceDeleted != nil {
		a.cfg.OnNamespaceDeleted(ns)
	}
	writeResult(w, nil)
	return nil
}

// Scripts.

type scriptJSON struct {
	ID                 string    `json:"id"`
	Etag               string    `json:"etag"`
	CreatedOn          time.Time `json:"created_on"`
	ModifiedOn         time.Time `json:"modified_on"`
	CompatibilityDate  string    `json:"compatibility_date"`
	CompatibilityFlags []string  `json:"compatibility_flags"`
	Tags               []string  `json:"tags"`
	HasModules         bool      `json:"has_modules"`
	HasAssets          bool      `json:"has_assets"`
	Logpush            bool      `json:"logpush"`
	UsageModel         string    `json:"usage_model"`
	StartupTimeMs      int64     `json:"startup_time_ms"`
	LastDeployedFrom   string    `json:"last_deployed_from"`
	// DotdoVersion is the local runtime's version number of the current
	// upload: the one the invocation endpoint takes.
	DotdoVersion int64 `json:"dotdo_version"`
}

func toScriptJSON(s scripts.Script) scriptJSON {
	c := s.Current
	flags := c.CompatibilityFlags
	if flags == nil {
		flags = []string{}
	}
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	usage := c.UsageModel
	if usage == "" {
		usage = "standard"
	}
	return scriptJSON{
		ID: s.Name, Etag: c.Etag, CreatedOn: s.CreatedOn, ModifiedOn: s.ModifiedOn,
		CompatibilityDate: c.CompatibilityDate, CompatibilityFlags: flags, Tags: tags,
		HasModules: true, Logpush: c.Logpush, UsageModel: usage, StartupTimeMs: c.StartupTimeMs,
		LastDeployedFrom: "api", DotdoVersion: c.Number,
	}
}

func (a *API) getScript(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, struct {
		CreatedOn         time.Time  `json:"created_on"`
		ModifiedOn        time.Time  `json:"modified_on"`
		DispatchNamespace string     `json:"dispatch_namespace"`
		Script            scriptJSON `json:"script"`
	}{s.CreatedOn, s.ModifiedOn, ns, toScriptJSON(s)})
	return nil
}

func (a *API) deleteScript(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if err := a.cfg.Store.DeleteScript(ns, name); err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

// tagFilter is a parsed ?tags= filter: "a:yes,b:no" keeps scripts tagged a
// and not tagged b; a bare "a" means "a:yes".
type tagFilter struct {
	include, exclude []string
}

func parseTagFilter(q string) (tagFilter, *apiError) {
	var f tagFilter
	for _, item := range strings.Split(q, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		tag, want := item, "yes"
		if i := strings.LastIndexByte(item, ':'); i >= 0 {
			switch strings.ToLower(item[i+1:]) {
			case "yes", "true":
				tag, want = item[:i], "yes"
			case "no", "false":
				tag, want = item[:i], "no"
			}
		}
		if !scripts.ValidTag(tag) {
			return f, errf(http.StatusBadRequest, CodeInvalidName, "Invalid tags filter: use tag:yes or tag:no, separated by commas.")
		}
		if want == "yes" {
			f.include = append(f.include, tag)
		} else {
			f.exclude = append(f.exclude, tag)
		}
	}
	return f, nil
}

func (f tagFilter) empty() bool { return len(f.include) == 0 && len(f.exclude) == 0 }

func (f tagFilter) match(s scripts.Script) bool {
	has := func(t string) bool {
		for _, x := range s.Tags {
			if x == t {
				return true
			}
		}
		return false
	}
	for _, t := range f.include {
		if !has(t) {
			return false
		}
	}
	for _, t := range f.exclude {
		if has(t) {
			return false
		}
	}
	return true
}

func (a *API) listScripts(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return aerr
	}
	f, aerr := parseTagFilter(r.URL.Query().Get("tags"))
	if aerr != nil {
		return aerr
	}
	list, err := a.cfg.Store.Scripts(ns, f.match)
	if err != nil {
		return fail(err)
	}
	out := make([]scriptJSON, 0, len(list))
	for _, s := range list {
		out = append(out, toScriptJSON(s))
	}
	writeResult(w, out)
	return nil
}

func (a *API) deleteScriptsByTag(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, _, aerr := pathNames(segs, false)
	if aerr != nil {
		return aerr
	}
	f, aerr := parseTagFilter(r.URL.Query().Get("tags"))
	if aerr != nil {
		return aerr
	}
	if f.empty() {
		return errf(http.StatusBadRequest, CodeBadBody, "A tags filter is required to delete scripts (for example ?tags=customer-1:yes).")
	}
	if _, err := a.cfg.Store.DeleteScripts(ns, f.match); err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

// script returns the namespace, name and script that segs name.
func (a *API) script(segs []string) (ns, name string, s scripts.Script, aerr *apiError) {
	ns, name, aerr = pathNames(segs, true)
	if aerr != nil {
		return "", "", scripts.Script{}, aerr
	}
	s, err := a.cfg.Store.Script(ns, name)
	if err != nil {
		return "", "", scripts.Script{}, fail(err)
	}
	return ns, name, s, nil
}

// Tags.

func (a *API) getTags(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, nonNil(s.Tags))
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *API) putTags(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	var tags []string
	if err := decodeJSON(w, r, &tags); err != nil {
		return err
	}
	if _, err := scripts.ValidateTags(tags); err != nil {
		return errf(http.StatusBadRequest, CodeInvalidName, err.Error())
	}
	got, err := a.cfg.Store.SetTags(ns, name, tags)
	if err != nil {
		return fail(err)
	}
	writeResult(w, nonNil(got))
	return nil
}

func (a *API) putTag(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if !scripts.ValidTag(segs[4]) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid tag.")
	}
	if _, err := a.cfg.Store.AddTag(ns, name, segs[4]); err != nil {
		if errors.Is(err, scripts.ErrInvalid) {
			return errf(http.StatusBadRequest, CodeInvalidName, strings.TrimPrefix(err.Error(), scripts.ErrInvalid.Error()+": "))
		}
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

func (a *API) deleteTag(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if _, err := a.cfg.Store.RemoveTag(ns, name, segs[4]); err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

// Secrets.

type secretJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	out := make([]secretJSON, 0, len(s.SecretNames))
	for _, n := range s.SecretNames {
		out = append(out, secretJSON{Name: n, Type: scripts.BindingSecretText})
	}
	writeResult(w, out)
	return nil
}

func (a *API) putSecret(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	var body struct {
		Name string  `json:"name"`
		Text *string `json:"text"`
		Type string  `json:"type"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Type == "" {
		body.Type = scripts.BindingSecretText
	}
	if body.Type != scripts.BindingSecretText {
		return errf(http.StatusBadRequest, CodeBadBody, "Only secrets of type secret_text are supported by the local runtime.")
	}
	if !names.ValidBinding(body.Name) {
		return errf(http.StatusBadRequest, CodeInvalidName, "Invalid secret name.")
	}
	if body.Text == nil {
		return errf(http.StatusBadRequest, CodeBadBody, "A secret_text secret needs a text field.")
	}
	if err := a.cfg.Store.PutSecret(ns, name, body.Name, *body.Text); err != nil {
		return fail(err)
	}
	writeResult(w, secretJSON{Name: body.Name, Type: scripts.BindingSecretText})
	return nil
}

func (a *API) getSecret(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	for _, n := range s.SecretNames {
		if n == segs[4] {
			writeResult(w, secretJSON{Name: n, Type: scripts.BindingSecretText})
			return nil
		}
	}
	return fail(scripts.ErrSecretNotFound)
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	ns, name, aerr := pathNames(segs, true)
	if aerr != nil {
		return aerr
	}
	if err := a.cfg.Store.DeleteSecret(ns, name, segs[4]); err != nil {
		return fail(err)
	}
	writeResult(w, nil)
	return nil
}

// Settings and bindings.

type bindingJSON struct {
	Name string          `json:"name"`
	Type string          `json:"type"`
	Text string          `json:"text,omitempty"`
	JSON json.RawMessage `json:"json,omitempty"`
}

// publicBindings renders bindings for the client: secret values never leave.
func publicBindings(bs []scripts.Binding) []bindingJSON {
	out := make([]bindingJSON, 0, len(bs))
	for _, b := range bs {
		j := bindingJSON{Name: b.Name, Type: b.Type}
		switch b.Type {
		case scripts.BindingPlainText:
			j.Text = b.Text
		case scripts.BindingJSON:
			j.JSON = b.JSON
		}
		out = append(out, j)
	}
	return out
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	c := s.Current
	usage := c.UsageModel
	if usage == "" {
		usage = "standard"
	}
	flags := c.CompatibilityFlags
	if flags == nil {
		flags = []string{}
	}
	writeResult(w, struct {
		Bindings           []bindingJSON `json:"bindings"`
		CompatibilityDate  string        `json:"compatibility_date"`
		CompatibilityFlags []string      `json:"compatibility_flags"`
		Logpush            bool          `json:"logpush"`
		Tags               []string      `json:"tags"`
		TailConsumers      []any         `json:"tail_consumers"`
		UsageModel         string        `json:"usage_model"`
	}{publicBindings(c.Bindings), c.CompatibilityDate, flags, c.Logpush, nonNil(s.Tags), []any{}, usage})
	return nil
}

func (a *API) getBindings(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, _, s, aerr := a.script(segs)
	if aerr != nil {
		return aerr
	}
	writeResult(w, publicBindings(s.Current.Bindings))
	return nil
}

// scriptVersionHeader carries the new version number of an upload.
const scriptVersionHeader = "X-Dotdo-Script-Version"

func setVersionHeader(w http.ResponseWriter, n int64) {
	w.Header().Set(scriptVersionHeader, strconv.FormatInt(n, 10))
}
