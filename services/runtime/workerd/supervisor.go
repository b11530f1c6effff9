package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dot-do/platform/internal/errkind"
)

// Defaults applied by New to zero Options fields.
const (
	// DefaultIdleTimeout is how long a process may serve no request before
	// it is stopped (scale to zero).
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultStartTimeout bounds a process start (until it listens).
	DefaultStartTimeout = 15 * time.Second
	// DefaultStartupCheckTimeout bounds the startup check of an upload.
	DefaultStartupCheckTimeout = 5 * time.Second
	// DefaultDrainTimeout bounds how long a replaced or idle process may
	// finish its requests before it is killed.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultCPULimit is the CPU time one invocation may use, Cloudflare's
	// default for paid plans.
	DefaultCPULimit = 30 * time.Second
	// DefaultMemoryMB is the memory of a worker's isolate, Cloudflare's
	// 128 MB.
	DefaultMemoryMB = 128
	// DefaultMemoryHeadroom is how much anonymous memory a process may use
	// beyond its isolate's limit (workerd itself, ArrayBuffers) before it
	// is killed.
	DefaultMemoryHeadroom = 128 << 20
	// DefaultMaxProcesses bounds the processes running at once; at the
	// bound the least recently used idle process makes room.
	DefaultMaxProcesses = 1024
	// DefaultMaxStarting bounds the processes starting at once: a start
	// is mostly CPU (V8 and the worker's top level), so more starts at
	// once than cores only make each one slower. Further starts queue.
	DefaultMaxStarting = 4
	// DefaultCPUInterval is how often the CPU time of a process with
	// requests in flight is read.
	DefaultCPUInterval = 10 * time.Millisecond
	// DefaultMemoryInterval is how often the memory of a busy process is
	// read.
	DefaultMemoryInterval = 100 * time.Millisecond
	// DefaultMinFreeMemory is the memory the machine must have available
	// for a process to start: room for a few more processes (about 50 MB
	// each idle) and for the ones running to grow.
	DefaultMinFreeMemory = 512 << 20
)

// Errors returned by the supervisor.
var (
	// ErrClosed means the supervisor was closed.
	ErrClosed = errors.New("workerd supervisor closed")
	// ErrUnavailable means no workerd process could serve the call.
	ErrUnavailable = errors.New("workerd unavailable")
	// ErrBusy means every process slot is taken by a process with
	// requests in flight.
	ErrBusy = errors.New("workerd: every process slot is busy")
	// ErrLimit means an invocation exceeded the worker's CPU or memory
	// limit.
	ErrLimit = errors.New("worker exceeded a limit")
	// ErrLowMemory means a process was not started because the machine
	// had less memory available than Options.MinFreeMemory, even after
	// the idle processes stopped. Its kind is errkind.Exhausted.
	ErrLowMemory = errkind.New(errkind.Exhausted, "workerd: the machine is low on memory")
)

// Options configure a Supervisor.
type Options struct {
	// Binary is the workerd executable (see FindBinary). Required.
	Binary string
	// Source supplies the bundle of a version when a process starts for
	// it. Required.
	Source Source
	// Live returns the version (with its secrets generation and tailing)
	// a service binding to script in namespace reaches, or ErrNotFound.
	// Required for bundles with service bindings.
	Live func(namespace, script string) (Key, error)
	// OnInvocation, when set, is called after every invocation (from the
	// request's goroutine: keep it fast).
	OnInvocation func(Invocation)
	// OnTail receives the tail events (Cloudflare's TraceItem JSON, as
	// workerd's tail workers get them) of the invocations of processes
	// whose Key has Tail set, in batches.
	OnTail func(key Key, events []json.RawMessage)
	// Logger receives supervisor events and workerd's output.
	Logger *slog.Logger
	// IdleTimeout is how long a process may serve nothing before it stops.
	IdleTimeout time.Duration
	// StartTimeout bounds a process start.
	StartTimeout time.Duration
	// StartupCheckTimeout bounds the startup check of an upload.
	StartupCheckTimeout time.Duration
	// DrainTimeout bounds how long a stopping process may finish its
	// requests before it is killed.
	DrainTimeout time.Duration
	// CPULimit is the CPU time an invocation may use unless its bundle
	// says otherwise.
	CPULimit time.Duration
	// MemoryMB is the isolate memory of a worker unless its bundle says
	// otherwise.
	MemoryMB int
	// MemoryHeadroom is the anonymous memory a process may use beyond
	// MemoryMB before it is killed.
	MemoryHeadroom int64
	// MaxProcesses bounds the processes running at once, counting those
	// starting. A start at the bound stops the least recently used idle
	// process; when none is idle it waits (up to StartTimeout) for one.
	MaxProcesses int
	// MaxStarting bounds the processes starting at once; further starts
	// wait their turn, up to StartTimeout, then fail with ErrBusy.
	MaxStarting int
	// CPUInterval and MemoryInterval are how often busy processes are
	// measured.
	CPUInterval, MemoryInterval time.Duration
	// MinFreeMemory is the memory, in bytes, the machine must have
	// available for a process to start. Below it a start first stops idle
	// processes, least recently used first, and fails with ErrLowMemory
	// when that frees too little. Zero means DefaultMinFreeMemory;
	// negative, no check.
	MinFreeMemory int64
	// AvailableMemory returns the memory, in bytes, the machine has
	// available, and is called before each start while MinFreeMemory is
	// checked. Nil means MemAvailable of /proc/meminfo, read at most every
	// memoryReadEvery; where that cannot be read, nothing is checked.
	AvailableMemory func() (int64, error)
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.StartTimeout, DefaultStartTimeout)
	def(&o.StartupCheckTimeout, DefaultStartupCheckTimeout)
	def(&o.DrainTimeout, DefaultDrainTimeout)
	def(&o.CPULimit, DefaultCPULimit)
	def(&o.CPUInterval, DefaultCPUInterval)
	def(&o.MemoryInterval, DefaultMemoryInterval)
	if o.MemoryMB <= 0 {
		o.MemoryMB = DefaultMemoryMB
	}
	if o.MemoryHeadroom <= 0 {
		o.MemoryHeadroom = DefaultMemoryHeadroom
	}
	if o.MaxProcesses <= 0 {
		o.MaxProcesses = DefaultMaxProcesses
	}
	if o.MaxStarting <= 0 {
		o.MaxStarting = DefaultMaxStarting
	}
	if o.MinFreeMemory == 0 {
		o.MinFreeMemory = DefaultMinFreeMemory
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Supervisor runs one workerd process per worker version that has traffic,
// and keeps each within its limits. It is safe for concurrent use.
type Supervisor struct {
	opt Options
	log *slog.Logger
	// dir is the supervisor's private directory (0700): one subdirectory
	// per process, and the sockets of service bindings.
	dir string

	mu      sync.Mutex
	workers map[workerKey]*worker
	closed  bool
	// reserved counts the process slots held by starts in progress.
	reserved int
	// starts holds one token per start in progress (MaxStarting).
	starts chan struct{}
	// running lists every process that serves or drains, for the watchdog,
	// the reaper and Processes. It is replaced, never changed in place.
	running atomic.Pointer[[]*instance]

	bindings bindingServer
	tail     *tailSink
	// mem reads the machine's available memory for admitMemory.
	mem *memoryReader

	seq   atomic.Uint64
	stop  chan struct{}
	bg    sync.WaitGroup // watchdog, reaper, drains
	procs sync.WaitGroup // one per process, until reaped
}

type workerKey struct{ namespace, script string }

// worker holds the processes of one script: usually one, serving the live
// version; two for a moment when a new version or new secrets take over.
type worker struct {
	mu        sync.Mutex
	instances []*instance
	starting  map[Key]*startCall
	// gone is set when the worker left the supervisor's table (it had no
	// process left); whoever still holds it asks for a new one.
	gone bool
}

// startCall is one process start that concurrent requests for the same
// version wait for.
type startCall struct {
	done chan struct{}
	err  error
}

// New returns a supervisor. Processes start on demand.
func New(opt Options) (*Supervisor, error) {
	if opt.Binary == "" {
		return nil, ErrBinaryNotFound
	}
	if opt.Source == nil {
		return nil, errors.New("workerd: Options.Source is required")
	}
	opt.setDefaults()
	mem := memoryReader{read: opt.AvailableMemory}
	if opt.MinFreeMemory > 0 && opt.AvailableMemory == nil {
		mem = memoryReader{read: memAvailable, every: memoryReadEvery}
		if _, err := memAvailable(); err != nil {
			opt.Logger.Warn("workerd: the machine's available memory cannot be read; process starts are not checked against it", "err", err)
			opt.MinFreeMemory = -1
		}
	}
	// A short base path keeps Unix socket paths under their length limit.
	dir, err := os.MkdirTemp("", "dotdo-workerd-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s := &Supervisor{
		opt:     opt,
		log:     opt.Logger,
		dir:     dir,
		workers: map[workerKey]*worker{},
		mem:     &mem,
		starts:  make(chan struct{}, opt.MaxStarting),
		stop:    make(chan struct{}),
	}
	s.running.Store(&[]*instance{})
	s.bindings.init(s)
	if err := s.startTailSink(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		s.watchdog()
	}()
	go func() {
		defer s.bg.Done()
		s.reaper()
	}()
	return s, nil
}

// Close kills every process (SIGKILL to each process group), waits for
// them to exit and removes the supervisor's directory.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	for _, in := range *s.running.Load() {
		s.kill(in, "")
	}
	s.bindings.close()
	s.tail.close()
	waited := make(chan struct{})
	go func() { s.procs.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		err = errors.New("workerd: processes did not exit after SIGKILL")
	}
	s.bg.Wait()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
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

// ProcessInfo describes one running workerd process.
type ProcessInfo struct {
	// Key is the version the process serves.
	Key Key
	// PID is the process id (also its process group id).
	PID int
	// Socket is the Unix socket it serves on.
	Socket string
	// Serving is false once it takes no new requests (it drains).
	Serving bool
	// InFlight counts the requests it is serving.
	InFlight int64
	// AnonBytes is its anonymous resident memory.
	AnonBytes int64
	// StartedAt is when it began serving; StartTook how long it took to
	// start (the cold start).
	StartedAt time.Time
	StartTook time.Duration
	// LastActive is when a request last started or ended on it.
	LastActive time.Time
}

// Processes lists the running processes, ordered by key and start.
func (s *Supervisor) Processes() []ProcessInfo {
	var out []ProcessInfo
	for _, in := range *s.running.Load() {
		if in.exited() {
			continue
		}
		mem, _ := anonMemory(in.pid)
		out = append(out, ProcessInfo{
			Key: in.key, PID: in.pid, Socket: in.sock, Serving: !in.retired.Load(),
			InFlight: in.inflight.Load(), AnonBytes: mem, StartedAt: in.startedAt, StartTook: in.startTook,
			LastActive: time.Unix(0, in.lastActive.Load()),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].Key.String(), out[j].Key.String(); a != b {
			return a < b
		}
		return out[i].StartedAt.Before(out[j].StartedAt)
	})
	return out
}

// acquire returns a serving process for key, starting one when none runs,
// with one more request in flight on it; release it when the request ends.
func (s *Supervisor) acquire(ctx context.Context, key Key) (*instance, error) {
	w, err := s.worker(key)
	if err != nil {
		return nil, err
	}
	for {
		w.mu.Lock()
		if w.gone {
			w.mu.Unlock()
			if w, err = s.worker(key); err != nil {
				return nil, err
			}
			continue
		}
		for _, in := range w.instances {
			if in.key == key && !in.retired.Load() {
				if in.inflight.Add(1) == 1 {
					in.resetCPU.Store(true)
				}
				var old []*instance
				if !in.served {
					// Traffic has moved to this version: the processes of
					// older versions (or older secrets) go.
					in.served = true
					old = w.takeOlder(key)
				}
				w.mu.Unlock()
				in.touch()
				for _, o := range old {
					s.terminate(o)
				}
				return in, nil
			}
		}
		call := w.starting[key]
		if call == nil {
			call = &startCall{done: make(chan struct{})}
			w.starting[key] = call
			s.goBG(func() { s.start(w, key, call) })
		}
		w.mu.Unlock()
		select {
		case <-call.done:
			if call.err != nil {
				return nil, call.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stop:
			return nil, ErrClosed
		}
	}
}

// release ends one request on in.
func (s *Supervisor) release(in *instance) {
	in.touch()
	in.resetCPU.Store(true)
	in.inflight.Add(-1)
}

// worker returns the worker of key's script, creating it.
func (s *Supervisor) worker(key Key) (*worker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	wk := workerKey{key.Namespace, key.Script}
	w := s.workers[wk]
	if w == nil {
		w = &worker{starting: map[Key]*startCall{}}
		s.workers[wk] = w
	}
	return w, nil
}

// start starts the process of key for call.
func (s *Supervisor) start(w *worker, key Key, call *startCall) {
	in, err := s.startInstance(key)
	w.mu.Lock()
	delete(w.starting, key)
	if err == nil {
		w.instances = append(w.instances, in)
	}
	w.mu.Unlock()
	call.err = err
	close(call.done)
	if err != nil {
		// A worker that failed to start (a version that does not exist,
		// a script that throws) keeps no entry: requests for ever new
		// names must not grow the table.
		s.mu.Lock()
		s.dropIfEmpty(workerKey{key.Namespace, key.Script}, w)
		s.mu.Unlock()
		if !errors.Is(err, ErrClosed) {
			s.log.Warn("workerd: start failed", "worker", key.String(), "err", err)
		}
	}
}

// dropIfEmpty removes w, the worker of wk, from the supervisor's table
// when it has no process running or starting. Call with s.mu held.
func (s *Supervisor) dropIfEmpty(wk workerKey, w *worker) {
	if s.workers[wk] != w {
		return
	}
	w.mu.Lock()
	if len(w.instances) == 0 && len(w.starting) == 0 {
		w.gone = true
		delete(s.workers, wk)
	}
	w.mu.Unlock()
}

// takeOlder removes from w, and returns, the processes of versions older
// than key's, or of its version with older secrets or with tailing the
// other way. Call with w.mu held.
func (w *worker) takeOlder(key Key) []*instance {
	var old []*instance
	kept := w.instances[:0]
	for _, o := range w.instances {
		if o.key.Version < key.Version || o.key.Version == key.Version &&
			(o.key.SecretsGeneration < key.SecretsGeneration || o.key.SecretsGeneration == key.SecretsGeneration && o.key.Tail != key.Tail) {
			o.retired.Store(true)
			old = append(old, o)
			continue
		}
		kept = append(kept, o)
	}
	w.instances = kept
	return old
}

// Prewarm starts the process of key in the background when its script has
// a process serving already (a new version on its way to going live), so
// that the first request for key finds it running. The older process keeps
// serving until key's first request.
func (s *Supervisor) Prewarm(key Key) {
	s.mu.Lock()
	w := s.workers[workerKey{key.Namespace, key.Script}]
	s.mu.Unlock()
	if w == nil {
		return // no traffic: nothing to be quick for
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone || len(w.instances) == 0 || w.starting[key] != nil {
		return
	}
	for _, in := range w.instances {
		if in.key == key {
			return
		}
	}
	call := &startCall{done: make(chan struct{})}
	w.starting[key] = call
	s.goBG(func() { s.start(w, key, call) })
}

// startInstance takes a start slot and a process slot (see startSlots),
// reads key's bundle and spawns its process.
func (s *Supervisor) startInstance(key Key) (*instance, error) {
	release, err := s.startSlots()
	if err != nil {
		return nil, err
	}
	defer release()
	b, err := s.opt.Source.Bundle(key.Namespace, key.Script, key.Version)
	if err != nil {
		return nil, err
	}
	in, err := s.spawn(key, b, s.opt.StartTimeout)
	if err != nil {
		if errors.Is(err, errExitedEarly) {
			return nil, &StartupError{Message: startupMessage(in.stderr())}
		}
		if errors.Is(err, errStartTimeout) {
			return nil, &StartupError{Message: "Script startup exceeded the time limit.", Timeout: true}
		}
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.kill(in, "")
		return nil, ErrClosed
	}
	old := *s.running.Load()
	next := make([]*instance, len(old), len(old)+1)
	copy(next, old)
	next = append(next, in)
	s.running.Store(&next)
	s.log.Info("workerd: process started", "worker", key.String(), "pid", in.pid, "took", in.startTook.Round(time.Millisecond))
	return in, nil
}

// roomPoll is how often a start waiting for a process slot looks again.
const roomPoll = 5 * time.Millisecond

// startSlots waits for one of the MaxStarting start slots, then for one of
// the MaxProcesses process slots, stopping the least recently used idle
// process when all are taken. It fails with ErrBusy when it waited
// StartTimeout (every slot busy), and returns the function that gives both
// slots back once the process is running or failed to start. A spread of
// traffic over many cold workers thus starts at most MaxStarting processes
// at a time and never more than MaxProcesses in all.
func (s *Supervisor) startSlots() (release func(), err error) {
	timeout := time.NewTimer(s.opt.StartTimeout)
	defer timeout.Stop()
	select {
	case s.starts <- struct{}{}:
	case <-s.stop:
		return nil, ErrClosed
	case <-timeout.C:
		return nil, ErrBusy
	}
	for {
		if s.reserveProcess() {
			release = func() {
				s.mu.Lock()
				s.reserved--
				s.mu.Unlock()
				<-s.starts
			}
			if err := s.admitMemory(); err != nil {
				release()
				return nil, err
			}
			return release, nil
		}
		select {
		case <-time.After(roomPoll):
			continue
		case <-s.stop:
			err = ErrClosed
		case <-timeout.C:
			err = ErrBusy
		}
		<-s.starts
		return nil, err
	}
}

// reserveProcess takes a process slot when the processes serving and
// starting are fewer than MaxProcesses, or when stopping the least
// recently used idle process makes room, and reports whether it did.
func (s *Supervisor) reserveProcess() bool {
	for {
		s.mu.Lock()
		serving, lru := s.serving()
		serving += s.reserved
		if serving < s.opt.MaxProcesses {
			s.reserved++
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		if lru == nil || !s.retireIfIdle(lru) {
			return false
		}
	}
}

// serving counts the processes that take requests, and returns the least
// recently used of them with no request in flight (nil if none).
func (s *Supervisor) serving() (n int, lru *instance) {
	for _, in := range *s.running.Load() {
		if in.retired.Load() {
			continue
		}
		n++
		if in.inflight.Load() == 0 && (lru == nil || in.lastActive.Load() < lru.lastActive.Load()) {
			lru = in
		}
	}
	return n, lru
}

// retireIfIdle takes in out of service and stops it if it has no request
// in flight, and reports whether it did.
func (s *Supervisor) retireIfIdle(in *instance) bool {
	w, err := s.worker(in.key)
	if err != nil {
		return false
	}
	w.mu.Lock()
	if in.inflight.Load() != 0 || in.retired.Load() {
		w.mu.Unlock()
		return false
	}
	in.retired.Store(true)
	w.instances = remove(w.instances, in)
	w.mu.Unlock()
	s.terminate(in)
	return true
}

func remove(list []*instance, in *instance) []*instance {
	out := list[:0]
	for _, o := range list {
		if o != in {
			out = append(out, o)
		}
	}
	return out
}

// forget drops an exited process from the tables, and its script's worker
// when it has no process left.
func (s *Supervisor) forget(in *instance) {
	wk := workerKey{in.key.Namespace, in.key.Script}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.running.Load()
	next := make([]*instance, 0, len(old))
	for _, o := range old {
		if o != in {
			next = append(next, o)
		}
	}
	s.running.Store(&next)
	if w := s.workers[wk]; w != nil {
		w.mu.Lock()
		w.instances = remove(w.instances, in)
		w.mu.Unlock()
		s.dropIfEmpty(wk, w)
	}
}

// StopNamespace stops the processes of namespace (deleted): requests in
// flight on them fail.
func (s *Supervisor) StopNamespace(namespace string) {
	s.stopWhere(func(k Key) bool { return k.Namespace == namespace })
}

// StopScript stops the processes of script in namespace (deleted):
// requests in flight on them fail.
func (s *Supervisor) StopScript(namespace, script string) {
	s.stopWhere(func(k Key) bool { return k.Namespace == namespace && k.Script == script })
}

// stopWhere kills the processes whose key matches.
func (s *Supervisor) stopWhere(match func(Key) bool) {
	for _, in := range *s.running.Load() {
		if match(in.key) {
			s.kill(in, "")
		}
	}
}

// reaper stops processes that served nothing for IdleTimeout.
func (s *Supervisor) reaper() {
	every := min(s.opt.IdleTimeout/4, time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		idleSince := time.Now().Add(-s.opt.IdleTimeout).UnixNano()
		for _, in := range *s.running.Load() {
			if !in.retired.Load() && in.inflight.Load() == 0 && in.lastActive.Load() < idleSince {
				if s.retireIfIdle(in) {
					s.log.Info("workerd: idle process stopped", "worker", in.key.String(), "pid", in.pid)
				}
			}
		}
	}
}

// watchdog enforces the limits of every process with requests in flight:
// CPU time (read from the main thread's schedstat every CPUInterval, over
// the window since the process last was idle or finished a request) and
// anonymous memory (every MemoryInterval). A process over a limit is
// killed; its requests in flight get the limit's error.
func (s *Supervisor) watchdog() {
	t := time.NewTicker(s.opt.CPUInterval)
	defer t.Stop()
	memEvery := max(1, int(s.opt.MemoryInterval/s.opt.CPUInterval))
	for tick := 0; ; tick++ {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		checkMem := tick%memEvery == 0
		for _, in := range *s.running.Load() {
			if in.inflight.Load() == 0 || in.exited() || in.endReason() != "" {
				continue
			}
			cpu, err := cpuTime(in.pid)
			if err != nil {
				continue
			}
			if in.resetCPU.Swap(false) {
				in.cpuBase = cpu
			} else if used := time.Duration(cpu - in.cpuBase); used > in.cpuLimit {
				s.log.Warn("worker exceeded its CPU limit", "worker", in.key.String(), "pid", in.pid,
					"cpu", used.Round(time.Millisecond), "limit", in.cpuLimit)
				s.kill(in, endExceededCPU)
				continue
			}
			if checkMem {
				if mem, err := anonMemory(in.pid); err == nil && mem > in.memLimit {
					s.log.Warn("worker exceeded its memory limit", "worker", in.key.String(), "pid", in.pid,
						"anon_bytes", mem, "limit_bytes", in.memLimit)
					s.kill(in, endExceededMemory)
				}
			}
		}
	}
}

// StartupError reports that a worker failed to start. Message is workerd's
// description (for example "Uncaught Error: boom\n  at main.js:1:7") and is
// meant for the uploader.
type StartupError struct {
	// Message describes the failure for the uploader.
	Message string
	// Timeout is true when the worker did not finish starting in time.
	Timeout bool
}

// Error describes the failure.
func (e *StartupError) Error() string { return "worker failed to start: " + e.Message }

// startupMessage turns the stderr of a process that failed to start into
// the uploader's message: workerd writes "service main: Uncaught Error:
// ..." and indented location lines.
func startupMessage(lines []string) string {
	var out []string
	for _, l := range lines {
		if m, ok := strings.CutPrefix(l, "service main: "); ok {
			out = append(out[:0], m)
			continue
		}
		if len(out) > 0 && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		if len(lines) == 0 {
			return "The Worker could not be started."
		}
		return fmt.Sprintf("The Worker could not be started: %s", lines[len(lines)-1])
	}
	return strings.Join(out, "\n")
}
