// Package workerd runs user workers in workerd processes and keeps those
// processes healthy.
//
// A Supervisor keeps one workerd process per pool: one pool per dispatch
// namespace, started lazily on the first request, plus one pool for startup
// checks of uploads so that a script that hangs or crashes at start-up never
// touches a serving process. Each process runs a single static router worker
// (router.js) that loads user workers on demand through workerd's Worker
// Loader binding (workerd runs with --experimental). The loader asks for a
// worker's code once per id and process; the router fetches it from the
// supervisor's code server, a Go HTTP server on a Unix socket in a private
// (0700) directory, declared in the workerd config as an external service.
// Each process is started as
//
//	workerd serve --experimental --control-fd=3 <config>
//
// in its own process group, listens on a Unix socket in the same directory
// and is ready once it writes {"event":"listen","socket":"http",...} to fd 3.
//
// The supervisor health-checks every process (a request the router answers
// without touching user code) each HealthInterval. A process that does not
// answer within HealthTimeout, typically because a worker spins in
// while(true){} (workerd enforces no CPU limit and then ignores SIGTERM), is
// killed with SIGKILL to its process group; the next request starts a new
// one. A process whose loaded versions or RSS pass their bounds is replaced
// blue/green: the new process is started and made current, the old one
// drains its in-flight requests (up to DrainTimeout) and is then killed.
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

type pool struct {
	name      string
	maxLoaded int

	mu        sync.Mutex
	cur       *proc
	starting  chan struct{}
	startErr  error
	recycling bool
	closed    bool
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

// getPool returns the pool for name, creating it.
func (s *Supervisor) getPool(name string) (*pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if p, ok := s.pools[name]; ok {
		return p, nil
	}
	max := s.opt.MaxLoadedVersions
	if name == CheckPool {
		max = min(max, checkPoolMaxLoaded)
	} else if s.opt.PoolAllowed != nil && !s.opt.PoolAllowed(name) {
		return nil, ErrNotFound
	}
	p := &pool{name: name, maxLoaded: max}
	s.pools[name] = p
	return p, nil
}

// StopPool kills the processes of a pool (for a deleted namespace) and
// forgets the pool. In-flight requests on it fail.
func (s *Supervisor) StopPool(name string) {
	s.mu.Lock()
	p, ok := s.pools[name]
	delete(s.pools, name)
	var victims []*proc
	for _, pr := range s.procs {
		if pr.pool == p {
			victims = append(victims, pr)
		}
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	p.mu.Lock()
	p.closed = true
	p.cur = nil
	p.mu.Unlock()
	for _, pr := range victims {
		s.kill(pr, "namespace deleted")
	}
}

// acquire returns the pool's current process with one more in-flight
// request counted, starting the process if there is none. The caller must
// call release.
func (s *Supervisor) acquire(ctx context.Context, name string) (*proc, error) {
	p, err := s.getPool(name)
	if err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if c := p.cur; c != nil && c.alive() {
			c.inflight.Add(1)
			p.mu.Unlock()
			return c, nil
		}
		if ch := p.starting; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			p.mu.Lock()
			err := p.startErr
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		ch := make(chan struct{})
		p.starting = ch
		p.mu.Unlock()

		np, err := s.start(p)
		p.mu.Lock()
		p.starting = nil
		p.startErr = err
		if err == nil {
			if p.closed {
				err = ErrClosed
			} else {
				p.cur = np
			}
		}
		close(ch)
		p.mu.Unlock()
		if err != nil {
			if np != nil {
				s.kill(np, "pool closed during start")
			}
			return nil, err
		}
	}
}

func (s *Supervisor) release(p *proc) {
	p.inflight.Add(-1)
}

// recycle replaces old, if it is still its pool's current process, with a
// new process (blue/green): the new one becomes current once it listens and
// the old one drains, then is killed.
func (s *Supervisor) recycle(old *proc, reason string) {
	p := old.pool
	p.mu.Lock()
	if p.closed || p.cur != old || p.recycling {
		p.mu.Unlock()
		return
	}
	p.recycling = true
	p.mu.Unlock()
	s.log.Info("workerd: replacing process", "pool", p.name, "pid", old.pid, "reason", reason,
		"loaded_versions", old.loaded.Load(), "rss_bytes", old.rss())

	np, err := s.start(p)
	p.mu.Lock()
	p.recycling = false
	if err != nil {
		p.mu.Unlock()
		if !errors.Is(err, ErrClosed) {
			s.log.Error("workerd: replacement failed to start; keeping the old process", "pool", p.name, "err", err)
		}
		return
	}
	if p.closed {
		p.mu.Unlock()
		s.kill(np, "pool closed")
		return
	}
	prev := p.cur
	p.cur = np
	if prev != nil {
		prev.retired.Store(true)
	}
	p.mu.Unlock()
	if prev != nil {
		s.goBG(func() {
			s.drain(prev)
		})
	}
}

// drain waits until the retired process has no request in flight (or
// DrainTimeout passes, or it dies) and kills it.
func (s *Supervisor) drain(p *proc) {
	deadline := time.NewTimer(s.opt.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for p.inflight.Load() > 0 {
		select {
		case <-p.done:
			return
		case <-s.stop:
			return
		case <-deadline.C:
			s.log.Warn("workerd: drain timed out; killing process with requests in flight", "pool", p.pool.name, "pid", p.pid, "in_flight", p.inflight.Load())
			s.kill(p, "drain timeout")
			return
		case <-tick.C:
		}
	}
	s.kill(p, "replaced")
}

func (s *Supervisor) healthLoop() {
	t := time.NewTicker(s.opt.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		procs := make([]*proc, 0, len(s.procs))
		for _, p := range s.procs {
			procs = append(procs, p)
		}
		s.mu.Unlock()
		for _, p := range procs {
			if !p.alive() || !p.checking.CompareAndSwap(false, true) {
				continue
			}
			s.goBG(func() {
				defer p.checking.Store(false)
				s.checkHealth(p)
			})
		}
	}
}

func (s *Supervisor) checkHealth(p *proc) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.HealthTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/", nil)
	req.Header.Set("x-dotdo-key", s.key)
	req.Header.Set("x-dotdo-op", "health")
	res, err := p.client.Do(req)
	if err == nil {
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", res.StatusCode)
		}
	}
	if err != nil {
		if !p.alive() {
			return
		}
		s.log.Error("workerd: process unresponsive; killing it", "pool", p.pool.name, "pid", p.pid,
			"timeout", s.opt.HealthTimeout, "err", err)
		s.kill(p, "health check failed")
		return
	}
	if rss := p.rss(); rss > s.opt.MaxRSSBytes && !p.retired.Load() {
		s.goBG(func() {
			s.recycle(p, fmt.Sprintf("rss %d bytes above bound %d", rss, s.opt.MaxRSSBytes))
		})
	}
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

// Recycle replaces the current process of a pool blue/green, as the bounds
// do. It returns when the replacement serves (or failed to start).
func (s *Supervisor) Recycle(name string) {
	s.mu.Lock()
	p := s.pools[name]
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		s.recycle(cur, "requested")
	}
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
