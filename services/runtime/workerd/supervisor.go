package workerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "embed"
)

//go:embed router.js
var routerJS []byte

// CheckPool is the pool name of the process that runs startup checks.
const CheckPool = "(startup-check)"

// Defaults applied by New to zero Options fields.
const (
	// DefaultHealthInterval is the default Options.HealthInterval.
	DefaultHealthInterval = time.Second
	// DefaultHealthTimeout is the default Options.HealthTimeout.
	DefaultHealthTimeout = 2 * time.Second
	// DefaultStartTimeout is the default Options.StartTimeout.
	DefaultStartTimeout = 15 * time.Second
	// DefaultStartupCheckTimeout is the default Options.StartupCheckTimeout.
	DefaultStartupCheckTimeout = 5 * time.Second
	// DefaultDrainTimeout is the default Options.DrainTimeout.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultMaxLoadedVersions is the default Options.MaxLoadedVersions.
	DefaultMaxLoadedVersions = 500
	// DefaultMaxRSSBytes is the default Options.MaxRSSBytes (1 GiB; workerd
	// aborts near a 1.4 GB heap).
	DefaultMaxRSSBytes = 1 << 30
)

const (
	// checkPoolMaxLoaded bounds the startup-check process separately: every
	// check loads a new id that is never used again.
	checkPoolMaxLoaded = 64
	routerCompatDate   = "2025-01-01"
)

// Errors returned by the supervisor.
var (
	// ErrClosed means the supervisor (or the pool) was closed.
	ErrClosed = errors.New("workerd supervisor closed")
	// ErrUnavailable means no workerd process could serve the call.
	ErrUnavailable = errors.New("workerd unavailable")
)

// Options configure a Supervisor.
type Options struct {
	// Binary is the workerd executable (see FindBinary). Required.
	Binary string
	// Source supplies worker code to the loader. Required.
	Source Source
	// PoolAllowed, when set, is asked before a pool is created for a
	// namespace; returning false refuses with ErrNotFound. It guards against
	// starting a process for a namespace deleted concurrently.
	PoolAllowed func(namespace string) bool
	// Logger receives supervisor events and workerd's output.
	Logger *slog.Logger
	// HealthInterval is the time between health checks of each process.
	HealthInterval time.Duration
	// HealthTimeout is how long a health check may take before the process
	// is considered hung and killed.
	HealthTimeout time.Duration
	// StartTimeout bounds a process start (until it reports listening).
	StartTimeout time.Duration
	// StartupCheckTimeout bounds the startup check of an upload.
	StartupCheckTimeout time.Duration
	// DrainTimeout bounds how long a replaced process may finish in-flight
	// requests before it is killed.
	DrainTimeout time.Duration
	// MaxLoadedVersions is the number of worker ids a process may load
	// before it is replaced.
	MaxLoadedVersions int
	// MaxRSSBytes is the resident memory above which a process is replaced.
	MaxRSSBytes int64
}

// Supervisor runs and watches the workerd processes. It is safe for
// concurrent use.
type Supervisor struct {
	opt      Options
	log      *slog.Logger
	key      string
	stateDir string
	sockPath string
	codeSrv  *http.Server
	codeLn   net.Listener

	mu     sync.Mutex
	pools  map[string]*pool
	procs  map[string]*proc
	trials map[string]*Bundle
	closed bool

	seq  atomic.Uint64
	stop chan struct{}
	bg   sync.WaitGroup // health loop, code server, drains
	wait sync.WaitGroup // one per live process
}

// New starts a supervisor: its code server and health loop. Processes start
// on demand.
func New(opt Options) (*Supervisor, error) {
	if opt.Binary == "" {
		return nil, ErrBinaryNotFound
	}
	if opt.Source == nil {
		return nil, errors.New("workerd: Options.Source is required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&opt.HealthInterval, DefaultHealthInterval)
	setDefault(&opt.HealthTimeout, DefaultHealthTimeout)
	setDefault(&opt.StartTimeout, DefaultStartTimeout)
	setDefault(&opt.StartupCheckTimeout, DefaultStartupCheckTimeout)
	setDefault(&opt.DrainTimeout, DefaultDrainTimeout)
	if opt.MaxLoadedVersions <= 0 {
		opt.MaxLoadedVersions = DefaultMaxLoadedVersions
	}
	if opt.MaxRSSBytes <= 0 {
		opt.MaxRSSBytes = DefaultMaxRSSBytes
	}
	// A short base path keeps the Unix socket path under its length limit.
	dir, err := os.MkdirTemp("", "dotdo-workerd-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if strings.ContainsAny(dir, "\"\\\n") {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("workerd: unusable temporary directory %q", dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "router.js"), routerJS, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Supervisor{
		opt:      opt,
		log:      opt.Logger,
		key:      randomHex(32),
		stateDir: dir,
		sockPath: filepath.Join(dir, "code.sock"),
		pools:    map[string]*pool{},
		procs:    map[string]*proc{},
		trials:   map[string]*Bundle{},
		stop:     make(chan struct{}),
	}
	ln, err := net.Listen("unix", s.sockPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("workerd: code server: %w", err)
	}
	s.codeLn = ln
	s.codeSrv = &http.Server{Handler: http.HandlerFunc(s.serveCode), ReadHeaderTimeout: 10 * time.Second}
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		if err := s.codeSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("workerd code server stopped", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		s.healthLoop()
	}()
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Close kills every workerd process (SIGKILL to each process group), waits
// for them to exit and removes the supervisor's temporary directory.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pools := make([]*pool, 0, len(s.pools))
	for _, p := range s.pools {
		pools = append(pools, p)
	}
	procs := make([]*proc, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	close(s.stop)
	for _, p := range pools {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
	}
	for _, p := range procs {
		s.kill(p, "supervisor closing")
	}
	// Processes still starting register themselves and are killed because
	// their pool is closed; wait for every process to be reaped.
	waited := make(chan struct{})
	go func() { s.wait.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		err = errors.New("workerd: processes did not exit after SIGKILL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.codeSrv.Shutdown(ctx)
	s.bg.Wait()
	if rerr := os.RemoveAll(s.stateDir); err == nil {
		err = rerr
	}
	return err
}

// ProcessInfo describes one running workerd process.
type ProcessInfo struct {
	// Pool is the namespace the process serves, or CheckPool.
	Pool string
	// PID is the process id (also its process group id).
	PID int
	// Socket is the Unix socket it listens on.
	Socket string
	// Current is false while the process drains after being replaced.
	Current bool
	// LoadedVersions counts the worker ids it has loaded.
	LoadedVersions int64
	// InFlight counts requests being proxied to it.
	InFlight int64
	// RSSBytes is its resident memory.
	RSSBytes int64
	// StartedAt is when it reported listening.
	StartedAt time.Time
}

// Processes lists the live workerd processes, ordered by pool and start.
func (s *Supervisor) Processes() []ProcessInfo {
	s.mu.Lock()
	procs := make([]*proc, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	out := make([]ProcessInfo, 0, len(procs))
	for _, p := range procs {
		if !p.alive() {
			continue
		}
		out = append(out, ProcessInfo{
			Pool: p.pool.name, PID: p.pid, Socket: p.sock, Current: !p.retired.Load(),
			LoadedVersions: p.loaded.Load(), InFlight: p.inflight.Load(), RSSBytes: p.rss(), StartedAt: p.startedAt,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pool != out[j].Pool {
			return out[i].Pool < out[j].Pool
		}
		return out[i].StartedAt.Before(out[j].StartedAt)
	})
	return out
}

// goBG runs fn in a background goroutine that Close waits for; after Close
// has begun it does nothing.
func (s *Supervisor) goBG(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		fn()
	}()
}
