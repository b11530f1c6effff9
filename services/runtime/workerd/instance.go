package workerd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Key names what one process serves: a version of a script, with the
// script's secrets as of a generation.
type Key struct {
	// Namespace is the dispatch namespace.
	Namespace string
	// Script is the script name.
	Script string
	// Version is the version number.
	Version int64
	// SecretsGeneration changes whenever the script's secrets do.
	SecretsGeneration uint64
	// Tail is set while someone tails the script: its process then runs
	// the platform's tail worker, which sends each invocation's events to
	// Options.OnTail. (Tailing costs the worker throughput, so a process
	// runs it only then.)
	Tail bool
}

func (k Key) String() string {
	return k.Namespace + "/" + k.Script + "@" + strconv.FormatInt(k.Version, 10)
}

// Why a process ended, when it was not stopped by the supervisor's choice.
const (
	endExceededCPU    = "exceeded_cpu"
	endExceededMemory = "exceeded_memory"
	endCrashed        = "crashed"
)

// heapLimitMessage is what workerd writes to stderr when V8 reaches the
// heap limit, just before it aborts.
const heapLimitMessage = "Reached heap limit"

// instance is one workerd process serving one worker version on a Unix
// socket in its private directory.
type instance struct {
	id   string
	key  Key
	dir  string
	sock string
	pid  int
	cmd  *exec.Cmd
	tr   *http.Transport
	pool *connPool

	// bindings are the binding targets whose sockets the process holds
	// (bindingServer.hold), given back when it is reaped.
	bindings []workerKey

	cpuLimit   time.Duration
	memLimit   int64 // bytes of anonymous memory before the process is killed
	memoryMB   int
	startedAt  time.Time
	startTook  time.Duration
	done       chan struct{} // closed once the process has been reaped
	inflight   atomic.Int64
	lastActive atomic.Int64 // unix nanoseconds of the last request start or end
	// resetCPU asks the watchdog to take the process's current CPU time as
	// the base of the window it measures (set when a request starts on an
	// idle process and whenever one ends).
	resetCPU atomic.Bool
	cpuBase  int64 // the watchdog's alone
	// served is set by the first request; the worker's lock guards it.
	served bool
	// retired is set once the process takes no new requests.
	retired atomic.Bool
	// serving is set once the process listens.
	serving atomic.Bool
	// stopped is set when the supervisor ends the process by choice (idle,
	// replaced, closing), so that its exit is no crash.
	stopped atomic.Bool
	// ended is why the process ended, when it was killed for a limit or
	// crashed ("" when the supervisor stopped it).
	ended atomic.Pointer[string]
	// stderrTail keeps the last lines of stderr, for the log of a crash and
	// the message of a failed start.
	stderrMu   sync.Mutex
	stderrTail []string
}

func (in *instance) touch() { in.lastActive.Store(time.Now().UnixNano()) }

// endReason returns why the process ended ("" for a stop by choice or a
// process still running).
func (in *instance) endReason() string {
	if p := in.ended.Load(); p != nil {
		return *p
	}
	return ""
}

// setEnded records why the process ended; the first reason stays.
func (in *instance) setEnded(reason string) { in.ended.CompareAndSwap(nil, &reason) }

func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

const stderrTailLines = 20

func (in *instance) keepStderr(line string) {
	in.stderrMu.Lock()
	defer in.stderrMu.Unlock()
	if len(in.stderrTail) == stderrTailLines {
		copy(in.stderrTail, in.stderrTail[1:])
		in.stderrTail = in.stderrTail[:stderrTailLines-1]
	}
	in.stderrTail = append(in.stderrTail, line)
}

func (in *instance) stderr() []string {
	in.stderrMu.Lock()
	defer in.stderrMu.Unlock()
	return append([]string(nil), in.stderrTail...)
}

// spawn starts a workerd process for b under key in a new directory below
// s.dir and waits (up to timeout) until it serves. The process is in its own process group
// and dies with this one (Pdeathsig). On error nothing is left running.
func (s *Supervisor) spawn(key Key, b *Bundle, timeout time.Duration) (*instance, error) {
	id := "p" + strconv.FormatUint(s.seq.Add(1), 10)
	dir := filepath.Join(s.dir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	in := &instance{id: id, key: key, dir: dir, sock: filepath.Join(dir, "http.sock"), done: make(chan struct{})}
	in.cpuLimit = b.Limits.CPU
	if in.cpuLimit <= 0 {
		in.cpuLimit = s.opt.CPULimit
	}
	in.memoryMB = b.Limits.MemoryMB
	if in.memoryMB <= 0 {
		in.memoryMB = s.opt.MemoryMB
	}
	in.memLimit = int64(in.memoryMB)<<20 + s.opt.MemoryHeadroom
	tailProps, tailSock := s.tailConfig(key)
	cfgPath, env, err := writeConfig(b, processConfig{dir: dir, sock: in.sock, memoryMB: in.memoryMB,
		bindingSocket: s.bindingSocket(key.Namespace), tail: tailProps, tailSocket: tailSock})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// The socket is bound here and handed over (--socket-fd), so that no
	// stale file can stop the start and nobody else can take the path.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: in.sock, Net: "unix"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	_ = ln.Close()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer lnFile.Close()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer ctlR.Close()

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	in.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", in.sock)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}

	in.pool = &connPool{sock: in.sock}
	cmd := exec.Command(s.opt.Binary, "serve", "--socket-fd", "http=3", "--control-fd=4", cfgPath)
	cmd.Dir = dir
	// The secrets, and nothing else of ours (which holds tokens). A nil Env
	// would mean "inherit": make it empty at least.
	cmd.Env = append(make([]string, 0, len(env)), env...)
	cmd.ExtraFiles = []*os.File{lnFile, ctlW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		ctlW.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		ctlW.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// Count the process before it exists, under the lock Close takes, so
	// that Close waits for every process.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ctlW.Close()
		_ = os.RemoveAll(dir)
		return nil, ErrClosed
	}
	s.procs.Add(1)
	s.mu.Unlock()
	in.bindings = s.bindings.hold(key.Namespace, serviceTargets(b))
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		s.bindings.release(in.bindings)
		s.procs.Done()
		ctlW.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: start %s: %v", ErrUnavailable, s.opt.Binary, err)
	}
	ctlW.Close()
	in.cmd, in.pid = cmd, cmd.Process.Pid
	outDone := make(chan struct{}, 2)
	go s.forwardOutput(in, "stdout", stdout, outDone)
	go s.forwardOutput(in, "stderr", stderr, outDone)
	go func() {
		defer s.procs.Done()
		// Wait closes the pipes: let the readers finish first.
		<-outDone
		<-outDone
		err := cmd.Wait()
		// Out of the tables before done: whoever learns of the end from
		// done (a request answered with the limit its worker exceeded) can
		// count on the next request finding a new process.
		s.reaped(in, err)
		close(in.done)
	}()
	if err := waitListening(ctlR, timeout, in.done, s.stop); err != nil {
		s.kill(in, "")
		<-in.done
		return in, err
	}
	in.startedAt = time.Now()
	in.startTook = in.startedAt.Sub(begin)
	in.serving.Store(true)
	in.touch()
	return in, nil
}

// errStartTimeout means a process did not report listening in time.
var errStartTimeout = errors.New("workerd did not start in time")

// errExitedEarly means a process exited before it listened.
var errExitedEarly = errors.New("workerd exited before it listened")

// waitListening reads workerd's control fd until the http socket reports
// {"event":"listen","socket":"http",...}.
func waitListening(r *os.File, timeout time.Duration, exited, stop <-chan struct{}) error {
	ch := make(chan error, 1)
	fd, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		return err
	}
	own := os.NewFile(uintptr(fd), "workerd-control")
	go func() {
		defer own.Close()
		sc := bufio.NewScanner(own)
		for sc.Scan() {
			var ev struct {
				Event  string `json:"event"`
				Socket string `json:"socket"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "listen" && ev.Socket == "http" {
				ch <- nil
				return
			}
		}
		ch <- errExitedEarly
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-exited:
		return errExitedEarly
	case <-stop:
		return ErrClosed
	case <-t.C:
		return errStartTimeout
	}
}

// forwardOutput logs each line a process writes (console.log of workers
// goes to stdout, console.error and uncaught exceptions to stderr) and
// notices the heap limit.
func (s *Supervisor) forwardOutput(in *instance, stream string, r io.Reader, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	eachLine(r, maxLoggedLine, func(line string) {
		if stream == "stderr" {
			in.keepStderr(line)
			if strings.Contains(line, heapLimitMessage) {
				in.setEnded(endExceededMemory)
			}
		}
		s.log.Info("workerd output", "worker", in.key.String(), "pid", in.pid, "stream", stream, "line", line)
	})
}

// maxLoggedLine bounds a line of workerd output in the log.
const maxLoggedLine = 4096

// eachLine calls fn with each line read from r until r ends, without its
// line ending. A line longer than max bytes is cut to max bytes followed by
// "…"; the rest of it is read and dropped, so that one long line (a worker
// logging a large object) costs no more memory than a short one and loses
// nothing after it.
func eachLine(r io.Reader, max int, fn func(line string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		ended := len(chunk) > 0
		if err == nil { // the chunk ends the line: drop the line ending
			chunk = bytes.TrimSuffix(bytes.TrimSuffix(chunk, []byte("\n")), []byte("\r"))
		}
		if !cut {
			if room := max - len(line); len(chunk) > room {
				line, cut = append(line, chunk[:room]...), true
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if ended || len(line) > 0 {
			out := string(line)
			if cut {
				out += "…"
			}
			fn(out)
		}
		if err != nil {
			return
		}
		line, cut = line[:0], false
	}
}

// kill sends SIGKILL to in's process group (workerd ignores SIGTERM while
// a worker spins). reason, when set, is why: a limit the worker exceeded.
func (s *Supervisor) kill(in *instance, reason string) {
	if reason != "" {
		in.setEnded(reason)
	} else {
		in.stopped.Store(true)
	}
	in.retired.Store(true)
	if err := syscall.Kill(-in.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.log.Error("workerd: kill failed", "worker", in.key.String(), "pid", in.pid, "err", err)
	}
}

// terminate asks in's process to finish its requests and exit (SIGTERM: it
// stops accepting, drains, exits), and kills it after the drain timeout.
func (s *Supervisor) terminate(in *instance) {
	in.stopped.Store(true)
	in.retired.Store(true)
	_ = syscall.Kill(in.pid, syscall.SIGTERM)
	s.goBG(func() {
		t := time.NewTimer(s.opt.DrainTimeout)
		defer t.Stop()
		select {
		case <-in.done:
		case <-t.C:
			s.kill(in, "")
		case <-s.stop:
		}
	})
}

// reaped runs once in's process has exited: it leaves the tables, its
// connections close and its directory goes.
func (s *Supervisor) reaped(in *instance, err error) {
	in.retired.Store(true)
	if in.serving.Load() && in.endReason() == "" && !in.stopped.Load() {
		in.setEnded(endCrashed)
	}
	if r := in.endReason(); r != "" {
		s.log.Warn("workerd: process ended", "worker", in.key.String(), "pid", in.pid, "reason", r,
			"err", fmt.Sprint(err), "stderr", stderrSummary(in.stderr()))
	} else {
		s.log.Debug("workerd: process stopped", "worker", in.key.String(), "pid", in.pid)
	}
	// Anything left in its group goes too.
	_ = syscall.Kill(-in.pid, syscall.SIGKILL)
	s.forget(in)
	s.bindings.release(in.bindings)
	in.tr.CloseIdleConnections()
	in.pool.closeIdle()
	_ = os.RemoveAll(in.dir)
}

// stderrSummary is the end of a process's stderr for the log: its last
// few lines, without the native stack of a crash.
func stderrSummary(lines []string) string {
	var keep []string
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "stack: ") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 4 {
		keep = keep[len(keep)-4:]
	}
	return strings.Join(keep, "\n")
}

// schedstatPath is where the watchdog reads the CPU time of a process's
// main thread, which runs all JavaScript.
func schedstatPath(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/schedstat" }

// cpuTime returns the CPU time, in nanoseconds, that the main thread of
// pid has used, from /proc/<pid>/schedstat.
func cpuTime(pid int) (int64, error) {
	b, err := os.ReadFile(schedstatPath(pid))
	if err != nil {
		return 0, err
	}
	f, _, _ := bytes.Cut(b, []byte(" "))
	return strconv.ParseInt(string(f), 10, 64)
}

// anonMemory returns pid's anonymous resident memory in bytes (RssAnon of
// /proc/<pid>/status: the heap and ArrayBuffers, not the shared pages of
// the binary).
func anonMemory(pid int) (int64, error) {
	return procKB("/proc/"+strconv.Itoa(pid)+"/status", "RssAnon:")
}
