package boot

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// RuntimeConfig configures the local runtime.
type RuntimeConfig struct {
	Common
	// Addr is the address of the Cloudflare-compatible API and the
	// invocation endpoint.
	Addr string
	// AccountID is the account id the API answers for.
	AccountID string
	// APIToken is the bearer token of the API; when empty it is read from
	// (or generated into) DataDir/runtime.token.
	APIToken string
	// MaxScriptBytes bounds an upload.
	MaxScriptBytes int64
	// IdleTimeout is how long a worker's process may serve nothing before
	// it stops (scale to zero).
	IdleTimeout time.Duration
	// CPULimit is the CPU time one invocation may use, unless the
	// worker's limits.cpu_ms says otherwise.
	CPULimit time.Duration
	// MemoryMB is a worker's isolate memory.
	MemoryMB int64
	// MaxProcesses bounds the workerd processes running at once.
	MaxProcesses int64
	// MaxStarting bounds the workerd processes starting at once.
	MaxStarting int64
	// MinFreeMemoryMB is the memory (MiB) the machine must have available
	// for a workerd process to start; 0 turns the check off.
	MinFreeMemoryMB int64

	// local, when set (by Dev), receives the runtime's handler for a
	// dispatcher in this process.
	local *localRuntime
}

// localRuntime hands the runtime, once it is open, to a dispatcher in the
// same process, which then calls its Invoke directly instead of its
// invocation endpoint over HTTP (dispatcher.Config.Runtime). It traces each
// call as the runtime's HTTP server would, and counts the calls in flight,
// so that the runtime, when it stops, can let them finish before it stops
// workerd, as its own server's graceful shutdown does for requests over
// HTTP.
type localRuntime struct {
	ready chan struct{}
	rt    dispatcher.LocalRuntime
	tel   *telemetry.Telemetry

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

var _ dispatcher.LocalRuntime = (*localRuntime)(nil)

func newLocalRuntime() *localRuntime { return &localRuntime{ready: make(chan struct{})} }

// set publishes rt (traced on tel, when set); call it once.
func (l *localRuntime) set(rt dispatcher.LocalRuntime, tel *telemetry.Telemetry) {
	l.rt, l.tel = rt, tel
	close(l.ready)
}

// Invoke implements dispatcher.LocalRuntime.
func (l *localRuntime) Invoke(w http.ResponseWriter, r *http.Request, namespace, worker string, version int64, host, proto string) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		workerd.WriteError(w, http.StatusServiceUnavailable, "Worker runtime is shutting down")
		return
	}
	l.inflight.Add(1)
	l.mu.Unlock()
	defer l.inflight.Done()
	if l.tel == nil {
		l.rt.Invoke(w, r, namespace, worker, version, host, proto)
		return
	}
	l.tel.InProcess(w, r, "runtime", func(w http.ResponseWriter, r *http.Request) {
		l.rt.Invoke(w, r, namespace, worker, version, host, proto)
	})
}

// wait returns the runtime once it is published, or ctx's error.
func (l *localRuntime) wait(ctx context.Context) (dispatcher.LocalRuntime, error) {
	select {
	case <-l.ready:
		return l, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the runtime: %w", context.Cause(ctx))
	}
}

// drain refuses new requests and waits up to timeout for those in flight.
func (l *localRuntime) drain(timeout time.Duration) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.inflight.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// RegisterFlags registers the runtime's flags on fs.
func (c *RuntimeConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_RUNTIME_ADDR", config.DefaultRuntimeAddr, "address of the Cloudflare-compatible API and the invocation endpoint")
	config.String(fs, &c.AccountID, "account-id", "DOTDO_RUNTIME_ACCOUNT_ID", runtime.DefaultAccountID, "account id the API answers for")
	config.Int64(fs, &c.MaxScriptBytes, "max-script-bytes", "DOTDO_MAX_SCRIPT_BYTES", 10<<20, "largest upload, all modules together")
	config.Duration(fs, &c.IdleTimeout, "idle-timeout", "DOTDO_IDLE_TIMEOUT", workerd.DefaultIdleTimeout, "how long a worker's process may serve nothing before it stops (scale to zero)")
	config.Duration(fs, &c.CPULimit, "cpu-limit", "DOTDO_CPU_LIMIT", workerd.DefaultCPULimit, "CPU time one invocation may use, unless the worker's limits.cpu_ms says otherwise")
	config.Int64(fs, &c.MemoryMB, "memory-mb", "DOTDO_MEMORY_MB", workerd.DefaultMemoryMB, "a worker's isolate memory, in MiB")
	config.Int64(fs, &c.MaxProcesses, "max-processes", "DOTDO_MAX_PROCESSES", workerd.DefaultMaxProcesses, "workerd processes running at once; at the bound the least recently used idle one stops")
	config.Int64(fs, &c.MinFreeMemoryMB, "min-free-memory-mb", "DOTDO_MIN_FREE_MEMORY_MB", workerd.DefaultMinFreeMemory>>20, "memory (MiB) the machine must have available for a workerd process to start: below it idle processes stop, then starts are refused (503 low_memory); 0: no check")
	config.Int64(fs, &c.MaxStarting, "max-starting", "DOTDO_MAX_STARTING", workerd.DefaultMaxStarting, "workerd processes starting at once; further starts queue (a spread of traffic over cold workers cannot fork-bomb the machine)")
	c.APIToken = config.Env("", "DOTDO_RUNTIME_TOKEN") // a secret: never a flag
}

// RuntimeToken returns the runtime's API token: DOTDO_RUNTIME_TOKEN when
// set, else the one in DataDir/runtime.token, created (mode 0600) on first
// use. The deploy service reads it the same way to upload.
func (c *Common) RuntimeToken(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	tok, err := credential.LoadOrCreate(filepath.Join(c.DataDir, "runtime.token"))
	if err != nil {
		return "", fmt.Errorf("runtime token: %w", err)
	}
	return tok, nil
}

// InvokeToken returns the credential of the runtime's invocation endpoint,
// which only the dispatcher and the runtime hold (not the internal service
// credential: the runtime runs untrusted workers and needs no access to
// auth or db): DOTDO_INVOKE_TOKEN when set, else the one in
// DataDir/invoke.token, created (mode 0600) on first use.
func (c *Common) InvokeToken() (string, error) {
	if tok := config.Env("", "DOTDO_INVOKE_TOKEN"); tok != "" {
		return tok, nil
	}
	tok, err := credential.LoadOrCreate(filepath.Join(c.DataDir, "invoke.token"))
	if err != nil {
		return "", fmt.Errorf("invoke token: %w", err)
	}
	return tok, nil
}

// Runtime opens the runtime on DataDir/runtime.
func (c *RuntimeConfig) Runtime(ctx context.Context, logger *slog.Logger) (*runtime.Runtime, error) {
	apiToken, err := c.RuntimeToken(c.APIToken)
	if err != nil {
		return nil, err
	}
	invokeToken, err := c.InvokeToken()
	if err != nil {
		return nil, err
	}
	return runtime.New(ctx, runtime.Config{
		DataDir:         filepath.Join(c.DataDir, "runtime"),
		AccountID:       c.AccountID,
		APIToken:        apiToken,
		InvokeToken:     invokeToken,
		MaxScriptBytes:  c.MaxScriptBytes,
		IdleTimeout:     c.IdleTimeout,
		CPULimit:        c.CPULimit,
		MemoryMB:        int(c.MemoryMB),
		MaxProcesses:    int(c.MaxProcesses),
		MaxStarting:     int(c.MaxStarting),
		MinFreeMemoryMB: minFreeMemoryMB(c.MinFreeMemoryMB),
		MeterProvider:   c.meterProvider(),
		Logger:          logger,
	})
}

// minFreeMemoryMB turns the flag's 0 (no check) into the runtime's
// negative.
func minFreeMemoryMB(flag int64) int {
	if flag == 0 {
		return -1
	}
	return int(flag)
}

// Run serves the runtime until ctx is done, then stops its workerd
// processes.
func (c *RuntimeConfig) Run(ctx context.Context, logger *slog.Logger) error {
	rt, err := c.Runtime(ctx, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	c.shareLocal(rt)
	if c.local != nil {
		// Before rt.Close: in-process requests finish as HTTP ones do.
		defer c.local.drain(server.DefaultShutdownTimeout)
	}
	srv := c.Server(logger, rt)
	// Open tails never end by themselves; end them as shutdown begins so
	// the server's drain does not wait for them.
	stop := context.AfterFunc(ctx, rt.StopTails)
	defer stop()
	c.listenMetrics(ctx, logger)
	return srv.ListenAndServe(ctx, c.Addr)
}

// shareLocal hands rt, traced, to the dispatcher in this process, if there
// is one.
func (c *RuntimeConfig) shareLocal(rt *runtime.Runtime) {
	if c.local != nil {
		c.local.set(rt, c.Telemetry)
	}
}

// Server serves rt's API and invocation endpoint, traced, with the
// standard health check beside them. Invocations bypass the server's mux,
// which would clean (and redirect) the worker's path: /api//db must reach
// the worker as it was sent.
func (c *RuntimeConfig) Server(logger *slog.Logger, rt *runtime.Runtime) *server.Server {
	api, inv := rt.Handler(), rt.Handler()
	if c.Telemetry != nil {
		api = c.Telemetry.HTTPHandler(api, "runtime")
		inv = c.Telemetry.DataPlaneHandler(inv, "runtime")
	}
	invoke := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, runtime.InvokePrefix) {
				inv.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := server.New("runtime", server.WithLogger(logger), server.WithMiddleware(invoke))
	srv.Handle("/", api)
	c.mountMetrics(srv, false)
	return srv
}
