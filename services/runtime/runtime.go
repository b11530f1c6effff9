package runtime

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/internal/progress"
	"github.com/dot-do/platform/services/runtime/cfapi"
	"github.com/dot-do/platform/services/runtime/scripts"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultDataDir is where namespaces, scripts and secrets are kept.
	DefaultDataDir = ".dotdo/runtime"
	// DefaultAccountID is the only account id the API serves.
	DefaultAccountID = "local"
	// DefaultMaxScriptBytes bounds the total size of a version's modules.
	DefaultMaxScriptBytes = cfapi.DefaultMaxScriptBytes
	// DefaultStreamTimeout is the default Config.StreamTimeout, the
	// dispatcher's own.
	DefaultStreamTimeout = time.Minute
)

// InvokePrefix is the path prefix of the invocation endpoint.
const InvokePrefix = "/invoke/"

// InvokeTokenHeader carries Config.InvokeToken on invocation requests; it
// is removed before the worker sees the request.
const InvokeTokenHeader = "X-Dotdo-Invoke-Token"

// ScriptVersionHeader is set on upload answers to the new version number.
const ScriptVersionHeader = "X-Dotdo-Script-Version"

// Config configures a Runtime.
type Config struct {
	// DataDir holds the runtime's data (DefaultDataDir if empty). One
	// runtime at a time may use it.
	DataDir string
	// AccountID is the Cloudflare account id the API answers for
	// (DefaultAccountID if empty).
	AccountID string
	// APIToken is the bearer token of the Cloudflare API. Required.
	APIToken string
	// InvokeToken is the credential of the invocation endpoint, sent in
	// InvokeTokenHeader. Required.
	InvokeToken string
	// WorkerdPath is the workerd binary. If empty: $DOTDO_WORKERD, else
	// node_modules/.bin/workerd in the working directory or its nearest
	// parent that has one.
	WorkerdPath string
	// MaxScriptBytes bounds the total size of an upload's modules
	// (DefaultMaxScriptBytes if zero).
	MaxScriptBytes int64
	// IdleTimeout is how long a worker's process may serve nothing before
	// it stops (scale to zero; workerd.DefaultIdleTimeout if zero).
	IdleTimeout time.Duration
	// CPULimit is the CPU time one invocation may use unless the worker's
	// own limits say otherwise (workerd.DefaultCPULimit if zero).
	CPULimit time.Duration
	// MemoryMB is a worker's isolate memory (workerd.DefaultMemoryMB if
	// zero).
	MemoryMB int
	// MaxProcesses bounds the workerd processes running at once
	// (workerd.DefaultMaxProcesses if zero).
	MaxProcesses int
	// MaxStarting bounds the workerd processes starting at once
	// (workerd.DefaultMaxStarting if zero); further starts queue.
	MaxStarting int
	// MinFreeMemoryMB is the memory, in MiB, the machine must have
	// available for a workerd process to start (MemAvailable): below it
	// idle processes stop, least recently used first, and a start that
	// still finds too little is answered 503 low_memory
	// (workerd.DefaultMinFreeMemory if zero; negative: no check).
	MinFreeMemoryMB int
	// StartupCheckTimeout bounds the start-up check of an upload.
	StartupCheckTimeout time.Duration
	// DrainTimeout bounds how long a replaced or idle process may finish
	// its in-flight requests.
	DrainTimeout time.Duration
	// StreamTimeout bounds each read of a request body and each write of a
	// response on the invocation endpoint over HTTP, in place of the
	// server's whole-request timeouts, so that a long download or event
	// stream lasts as long as it makes progress (DefaultStreamTimeout if
	// zero).
	StreamTimeout time.Duration
	// DefaultCompatibilityDate applies to uploads without one.
	DefaultCompatibilityDate string
	// MeterProvider receives the runtime's per-worker metrics (nil:
	// recorded nowhere).
	MeterProvider metric.MeterProvider
	// Logger receives the runtime's logs (slog.Default() if nil). Tokens
	// and secret values are never logged.
	Logger *slog.Logger
}

// ProcessInfo describes one running workerd process.
type ProcessInfo = workerd.ProcessInfo

// Runtime is a running local runtime.
type Runtime struct {
	cfg        Config
	log        *slog.Logger
	store      *scripts.Store
	sup        *workerd.Supervisor
	api        *cfapi.API
	invokeHash [32]byte
	apiHash    [32]byte
	tails      tails
	metrics    *metrics
	closing    chan struct{}
	tailsDone  chan struct{}
	cronsDone  chan struct{}
	stopTails  sync.Once
	closeOnce  sync.Once
	closeErr   error
}

// New opens the data directory, finds workerd and returns a runtime ready
// to serve. workerd processes start on demand.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.APIToken == "" {
		return nil, errors.New("runtime: Config.APIToken is required")
	}
	if cfg.InvokeToken == "" {
		return nil, errors.New("runtime: Config.InvokeToken is required")
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.MaxScriptBytes <= 0 {
		cfg.MaxScriptBytes = DefaultMaxScriptBytes
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = DefaultStreamTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bin, err := workerd.FindBinary(cfg.WorkerdPath, "")
	if err != nil {
		return nil, err
	}
	st, err := scripts.Open(cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{cfg: cfg, log: cfg.Logger, store: st, closing: make(chan struct{}), tailsDone: make(chan struct{}), cronsDone: make(chan struct{}),
		invokeHash: sha256.Sum256([]byte(cfg.InvokeToken)), apiHash: sha256.Sum256([]byte(cfg.APIToken))}
	rt.tails.init()
	if rt.metrics, err = newMetrics(cfg.MeterProvider); err != nil {
		_ = st.Close()
		return nil, err
	}
	rt.sup, err = workerd.New(workerd.Options{
		Binary:              bin,
		Source:              workerd.SourceFunc(rt.bundle),
		Live:                rt.live,
		OnInvocation:        rt.onInvocation,
		OnTail:              rt.tails.onTail,
		Logger:              cfg.Logger,
		IdleTimeout:         cfg.IdleTimeout,
		CPULimit:            cfg.CPULimit,
		MemoryMB:            cfg.MemoryMB,
		MaxProcesses:        cfg.MaxProcesses,
		MaxStarting:         cfg.MaxStarting,
		MinFreeMemory:       int64(cfg.MinFreeMemoryMB) << 20,
		StartupCheckTimeout: cfg.StartupCheckTimeout,
		DrainTimeout:        cfg.DrainTimeout,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	rt.api, err = cfapi.New(cfapi.Config{
		AccountID:                cfg.AccountID,
		APIToken:                 cfg.APIToken,
		MaxScriptBytes:           cfg.MaxScriptBytes,
		DefaultCompatibilityDate: cfg.DefaultCompatibilityDate,
		Store:                    st,
		Checker:                  checker{rt},
		OnNamespaceDeleted:       rt.namespaceDeleted,
		OnScriptDeleted:          rt.scriptDeleted,
		OnVersion: func(sc scripts.Script) {
			rt.sup.Prewarm(workerd.Key{Namespace: sc.Namespace, Script: sc.Name, Version: sc.Current.Number, SecretsGeneration: sc.SecretsGeneration})
		},
		Scheduler: rt.runScheduled,
		Logger:    cfg.Logger,
	})
	if err != nil {
		_ = rt.sup.Close()
		_ = st.Close()
		return nil, err
	}
	go rt.runCrons(time.Now)
	cfg.Logger.Info("runtime ready", "data_dir", st.Dir(), "account_id", cfg.AccountID, "workerd", bin)
	return rt, nil
}

// Handler returns the handler of the API and the invocation endpoint.
func (rt *Runtime) Handler() http.Handler { return http.HandlerFunc(rt.serveHTTP) }

// Close stops every workerd process (SIGKILL to each process group: no
// orphans) and releases the data directory. Invocations still in flight
// fail, so shut the HTTP server down (http.Server.Shutdown) first.
func (rt *Runtime) Close() error {
	rt.closeOnce.Do(func() {
		close(rt.closing)
		<-rt.cronsDone
		rt.closeErr = errors.Join(rt.sup.Close(), rt.store.Close())
	})
	return rt.closeErr
}

// Processes lists the running workerd processes: one per worker version
// with traffic.
func (rt *Runtime) Processes() []ProcessInfo { return rt.sup.Processes() }

func (rt *Runtime) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, cfapi.Prefix):
		rt.api.ServeHTTP(w, r)
	case strings.HasPrefix(p, InvokePrefix):
		// Stream both ways at once (on HTTP/1.1 net/http would otherwise
		// stop reading the body once the answer starts), bounded by
		// progress, not by the server's whole-request timeouts.
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w, r, _, release := progress.Deadlines(w, r, rc, rt.cfg.StreamTimeout)
		defer release()
		rt.invoke(w, r)
	case strings.HasPrefix(p, TailPrefix):
		rt.serveTail(w, r)
	case p == "/healthz":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	default:
		workerd.WriteError(w, http.StatusNotFound, "not found")
	}
}

func (rt *Runtime) invokeAuthorized(tok string) bool {
	if tok == "" {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(h[:], rt.invokeHash[:]) == 1
}

func (rt *Runtime) invoke(w http.ResponseWriter, r *http.Request) {
	if !rt.invokeAuthorized(r.Header.Get(InvokeTokenHeader)) {
		workerd.WriteError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	r.Header.Del(InvokeTokenHeader)
	rest := strings.TrimPrefix(r.URL.EscapedPath(), InvokePrefix)
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 3 {
		workerd.WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	version, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		workerd.WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	path := "/"
	if len(parts) == 4 {
		path += parts[3]
	}
	scheme := "http"
	if p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p == "https" || p == "http" {
		scheme = p
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host, _, _ = strings.Cut(fh, ",")
		host = strings.TrimSpace(host)
	}
	rt.run(w, r, parts[0], parts[1], version, host, scheme, path)
}

// Invoke runs r on version of script in namespace, in this process, as a
// request to the invocation endpoint would (the dispatcher of `dotdo dev`
// calls it, with no HTTP hop and no credential): r's URL path and query
// are the worker's, host and proto the host and scheme of the URL the
// worker sees. r's headers are changed in place.
func (rt *Runtime) Invoke(w http.ResponseWriter, r *http.Request, namespace, script string, version int64, host, proto string) {
	rt.run(w, r, namespace, script, version, host, proto, r.URL.EscapedPath())
}

// run checks a request for a worker version and runs it.
func (rt *Runtime) run(w http.ResponseWriter, r *http.Request, ns, script string, version int64, host, proto, path string) {
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Dotdo-") {
			delete(r.Header, k) // the platform's own headers never reach a worker
		}
	}
	if version <= 0 || !names.ValidScript(ns) || !names.ValidScript(script) {
		workerd.WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	gen, ok := rt.store.Lookup(ns, script, version)
	if !ok {
		workerd.WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	if host == "" || strings.ContainsAny(host, "/?#@\\ \t\r\n") {
		workerd.WriteError(w, http.StatusBadRequest, "bad host")
		return
	}
	rt.sup.Invoke(w, r, workerd.Target{
		Key:  workerd.Key{Namespace: ns, Script: script, Version: version, SecretsGeneration: gen, Tail: rt.tails.isTailed(ns, script)},
		Host: host, Proto: proto, Path: path, RawQuery: r.URL.RawQuery,
	})
}

// live is what a service binding to script in namespace reaches: the
// script's current version, the one its namespace serves (a failed deploy
// never becomes current, and a pending one is settled by the deploy
// service's reconciler against exactly this).
func (rt *Runtime) live(namespace, script string) (workerd.Key, error) {
	sc, err := rt.store.Script(namespace, script)
	if err != nil {
		return workerd.Key{}, workerd.ErrNotFound
	}
	return workerd.Key{Namespace: namespace, Script: script, Version: sc.Current.Number,
		SecretsGeneration: sc.SecretsGeneration, Tail: rt.tails.isTailed(namespace, script)}, nil
}

// namespaceDeleted stops the processes of a deleted namespace and forgets
// its workers.
func (rt *Runtime) namespaceDeleted(namespace string) {
	rt.sup.StopNamespace(namespace)
	rt.metrics.forgetNamespace(namespace)
}

// scriptDeleted stops the processes of a deleted script and forgets it.
func (rt *Runtime) scriptDeleted(namespace, script string) {
	rt.sup.StopScript(namespace, script)
	rt.metrics.forget(namespace, script)
}

// onInvocation counts an invocation and, when it left no tail event of
// workerd's (its process was killed), tells the tailers.
func (rt *Runtime) onInvocation(inv workerd.Invocation) {
	if rt.metrics.invocation(inv) {
		// An invocation that ends after its script was deleted (and its
		// worker forgotten) must not cache the worker again.
		if _, ok := rt.store.Lookup(inv.Key.Namespace, inv.Key.Script, inv.Key.Version); !ok {
			rt.metrics.forget(inv.Key.Namespace, inv.Key.Script)
		}
	}
	rt.tails.onInvocation(inv)
}

// Scheduled runs the scheduled handler of the current version of script
// in namespace for cron (a cron expression, "" for a trigger by hand).
func (rt *Runtime) Scheduled(ctx context.Context, namespace, script, cron string, at time.Time) error {
	key, err := rt.live(namespace, script)
	if err != nil {
		return err
	}
	if key.Tail {
		rt.tails.crons.Store(key, cron)
	}
	return rt.sup.Scheduled(ctx, key, cron, at)
}

// apiAuthorized reports whether r carries the API token as its bearer
// token.
func (rt *Runtime) apiAuthorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	h := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(h[:], rt.apiHash[:]) == 1
}

// bundle is the supervisor's code source: a stored version with the
// script's current secrets.
func (rt *Runtime) bundle(ns, script string, version int64) (*workerd.Bundle, error) {
	v, err := rt.store.Version(ns, script, version)
	if err != nil {
		if errors.Is(err, scripts.ErrNamespaceNotFound) || errors.Is(err, scripts.ErrScriptNotFound) || errors.Is(err, scripts.ErrVersionNotFound) {
			return nil, workerd.ErrNotFound
		}
		return nil, err
	}
	secrets, _, err := rt.store.Secrets(ns, script)
	if err != nil {
		return nil, workerd.ErrNotFound
	}
	mods := make([]scripts.Module, len(v.Modules))
	for i, m := range v.Modules {
		mods[i] = scripts.Module{ModuleInfo: m, Content: v.Contents[i]}
	}
	b := newBundle(v.MainModule, v.CompatibilityDate, v.CompatibilityFlags, v.Bindings, mods, secrets)
	b.Limits.CPU = time.Duration(v.Limits.CPUMs) * time.Millisecond
	return b, nil
}

func newBundle(main, date string, flags []string, bindings []scripts.Binding, mods []scripts.Module, secrets map[string]string) *workerd.Bundle {
	b := &workerd.Bundle{
		CompatibilityDate:  date,
		CompatibilityFlags: flags,
		MainModule:         main,
	}
	for _, m := range mods {
		b.Modules = append(b.Modules, workerd.Module{Name: m.Name, Type: string(m.Type), Content: m.Content})
	}
	for _, bd := range bindings {
		if _, secret := secrets[bd.Name]; secret {
			continue // a secret of the same name wins
		}
		switch bd.Type {
		case scripts.BindingJSON:
			b.Bindings = append(b.Bindings, workerd.Binding{Name: bd.Name, Kind: workerd.BindingJSON, Value: string(bd.JSON)})
		case scripts.BindingSecretText:
			b.Bindings = append(b.Bindings, workerd.Binding{Name: bd.Name, Kind: workerd.BindingSecret, Value: bd.Text})
		case scripts.BindingService:
			b.Bindings = append(b.Bindings, workerd.Binding{Name: bd.Name, Kind: workerd.BindingService, Value: bd.Service})
		default:
			b.Bindings = append(b.Bindings, workerd.Binding{Name: bd.Name, Kind: workerd.BindingText, Value: bd.Text})
		}
	}
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.Bindings = append(b.Bindings, workerd.Binding{Name: k, Kind: workerd.BindingSecret, Value: secrets[k]})
	}
	return b
}

// checker start-checks uploads in the supervisor's check process.
type checker struct{ rt *Runtime }

func (c checker) CheckStartup(ctx context.Context, ns, script string, d *scripts.Draft, secrets map[string]string) (time.Duration, error) {
	took, err := c.rt.sup.CheckStartup(ctx, newBundle(d.MainModule, d.CompatibilityDate, d.CompatibilityFlags, d.Bindings, d.Modules, secrets))
	var se *workerd.StartupError
	if errors.As(err, &se) {
		return took, &cfapi.ScriptError{Message: se.Message}
	}
	return took, err
}
