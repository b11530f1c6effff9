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
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

type proc struct {
	id        string
	pool      *pool
	cmd       *exec.Cmd
	pid       int
	addr      string // placeholder host for URLs; connections go to sock
	sock      string // the Unix socket workerd listens on
	startedAt time.Time
	tr        *http.Transport
	client    *http.Client
	rp        *httputil.ReverseProxy

	done     chan struct{} // closed once the process has been reaped
	inflight atomic.Int64
	loaded   atomic.Int64
	retired  atomic.Bool
	killed   atomic.Bool
	checking atomic.Bool
	// inflightAtKill is the number of requests in flight when it was killed.
	inflightAtKill atomic.Int64
}

func (p *proc) alive() bool {
	if p.killed.Load() {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// rss returns the process's resident set size in bytes (0 if unknown).
func (p *proc) rss() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func (s *Supervisor) configText(sock string) string {
	return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "router", worker = (
      modules = [(name = "router.js", esModule = embed "router.js")],
      compatibilityDate = "` + routerCompatDate + `",
      bindings = [
        (name = "LOADER", workerLoader = ()),
        (name = "CODE", service = "code"),
        (name = "KEY", text = "` + s.key + `"),
      ],
    )),
    (name = "code", external = (address = "unix:` + s.sockPath + `", http = ())),
  ],
  sockets = [(name = "http", address = "unix:` + sock + `", http = (), service = "router")],
);
`
}

// start launches a workerd process for the pool and waits until it reports
// on its control fd that it listens. The process serves HTTP on a Unix
// socket in the supervisor's private directory: cheaper than TCP loopback
// (about 10% less CPU per request on both sides here) and unreachable for
// other local users; the router still checks its key on every request.
func (s *Supervisor) start(pl *pool) (*proc, error) {
	id := "p" + strconv.FormatUint(s.seq.Add(1), 10)
	cfg := filepath.Join(s.stateDir, id+".capnp")
	sock := filepath.Join(s.stateDir, id+".sock")
	if err := os.WriteFile(cfg, []byte(s.configText(sock)), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(cfg) // read at start-up only; it holds the router key

	// Everything the process's goroutines may touch is set before it starts.
	p := &proc{id: id, pool: pl, sock: sock, addr: "workerd-" + id, done: make(chan struct{})}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	p.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
	}
	p.client = &http.Client{Transport: p.tr}
	p.rp = s.newReverseProxy(p)

	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer ctlR.Close()
	cmd := exec.Command(s.opt.Binary, "serve", "--experimental", "--control-fd=3", cfg)
	cmd.Dir = s.stateDir
	cmd.Env = []string{} // workerd needs nothing from our environment (which holds tokens)
	cmd.ExtraFiles = []*os.File{ctlW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		ctlW.Close()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		ctlW.Close()
		return nil, err
	}
	// Count the process before it exists, under the lock Close takes to set
	// closed, so that Close waits for every process it may not have seen.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ctlW.Close()
		return nil, ErrClosed
	}
	s.wait.Add(1)
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		s.wait.Done()
		ctlW.Close()
		return nil, fmt.Errorf("%w: start %s: %v", ErrUnavailable, s.opt.Binary, err)
	}
	ctlW.Close()
	p.cmd = cmd
	p.pid = cmd.Process.Pid
	logDone := make(chan struct{}, 2)
	go s.forwardOutput(p, "stdout", stdout, logDone)
	go s.forwardOutput(p, "stderr", stderr, logDone)
	go func() {
		defer s.wait.Done()
		// Wait closes the output pipes, so let the forwarders finish first.
		<-logDone
		<-logDone
		err := cmd.Wait()
		close(p.done)
		s.reaped(p, err)
	}()

	if err := waitListening(ctlR, s.opt.StartTimeout, p.done, s.stop); err != nil {
		s.kill(p, "failed to start")
		<-p.done
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p.startedAt = time.Now()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.kill(p, "supervisor closed")
		return nil, ErrClosed
	}
	s.procs[id] = p
	s.mu.Unlock()
	s.log.Info("workerd: process started", "pool", pl.name, "pid", p.pid)
	return p, nil
}

// waitListening reads workerd's control fd until the http socket reports
// {"event":"listen","socket":"http",...}. It keeps draining the fd
// afterwards.
func waitListening(r *os.File, timeout time.Duration, exited, stop <-chan struct{}) error {
	ch := make(chan error, 1)
	// Duplicate the fd so that the reader goroutine owns its own copy and
	// the caller can close r when start returns.
	fd, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		return err
	}
	own := os.NewFile(uintptr(fd), "workerd-control")
	go func() {
		defer own.Close()
		sc := bufio.NewScanner(own)
		sent := false
		for sc.Scan() {
			if sent {
				continue
			}
			var ev struct {
				Event  string `json:"event"`
				Socket string `json:"socket"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "listen" && ev.Socket == "http" {
				ch <- nil
				sent = true
			}
		}
		if !sent {
			ch <- errors.New("workerd exited before listening (see its stderr in the log)")
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-exited:
		return errors.New("workerd exited before listening (see its stderr in the log)")
	case <-stop:
		return ErrClosed
	case <-t.C:
		return fmt.Errorf("workerd did not report listening within %s", timeout)
	}
}

func (s *Supervisor) forwardOutput(p *proc, stream string, r io.Reader, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	eachLine(r, maxLoggedLine, func(line string) {
		s.log.Info("workerd output", "pool", p.pool.name, "pid", p.pid, "stream", stream, "line", line)
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

// kill sends SIGKILL to the process group of p (workerd ignores SIGTERM
// while a worker spins) and takes it out of service at once.
func (s *Supervisor) kill(p *proc, reason string) {
	if !p.killed.CompareAndSwap(false, true) {
		return
	}
	p.inflightAtKill.Store(p.inflight.Load())
	p.pool.mu.Lock()
	if p.pool.cur == p {
		p.pool.cur = nil
	}
	p.pool.mu.Unlock()
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.log.Error("workerd: kill failed", "pool", p.pool.name, "pid", p.pid, "err", err)
	}
	s.log.Info("workerd: process killed", "pool", p.pool.name, "pid", p.pid, "reason", reason)
}

// reaped runs once the process has exited.
func (s *Supervisor) reaped(p *proc, err error) {
	if !p.killed.Load() {
		s.log.Error("workerd: process exited unexpectedly", "pool", p.pool.name, "pid", p.pid, "err", err)
		p.killed.Store(true)
		// Anything left in its group goes too.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	p.pool.mu.Lock()
	if p.pool.cur == p {
		p.pool.cur = nil
	}
	p.pool.mu.Unlock()
	s.mu.Lock()
	delete(s.procs, p.id)
	s.mu.Unlock()
	p.tr.CloseIdleConnections()
	_ = os.Remove(p.sock)
}
