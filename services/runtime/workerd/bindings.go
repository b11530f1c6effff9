package workerd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BindingDepthHeader counts the service-binding hops a request has made; a
// request past MaxBindingDepth is refused, so that workers binding each
// other in a loop cannot recurse without end.
const BindingDepthHeader = "X-Dotdo-Binding-Depth"

// MaxBindingDepth is the number of nested service-binding calls allowed.
const MaxBindingDepth = 16

// bindingServer serves the service bindings of the supervisor's workers:
// one Unix socket per target script that a running process binds to. A
// process holds the sockets of its targets from its start until it is
// reaped; the socket of a target no process holds any more is closed and
// its file removed, so that the sockets follow the processes running, not
// every target ever bound. A request on the socket of (namespace, script)
// runs on the live version of that script (Options.Live), in its own
// process, exactly as a request from the dispatcher would.
type bindingServer struct {
	s       *Supervisor
	mu      sync.Mutex
	targets map[workerKey]*bindingTarget
	closed  bool
	wg      sync.WaitGroup
}

// bindingTarget is the socket of one binding target and the number of
// processes holding it.
type bindingTarget struct {
	srv  *http.Server
	ln   net.Listener
	refs int
}

func (b *bindingServer) init(s *Supervisor) {
	b.s = s
	b.targets = map[workerKey]*bindingTarget{}
}

// bindingSocket returns the function a process configuration uses to name
// the socket of a service binding from namespace.
func (s *Supervisor) bindingSocket(namespace string) func(script string) string {
	return func(script string) string { return s.bindings.path(namespace, script) }
}

// path returns the path of the binding socket of (namespace, script).
// Paths are hashed: names can be long, and socket paths are short.
func (b *bindingServer) path(namespace, script string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + script))
	return filepath.Join(b.s.dir, "b-"+hex.EncodeToString(sum[:8])+".sock")
}

// serviceTargets returns the scripts b's service bindings reach, each once.
func serviceTargets(b *Bundle) []string {
	var out []string
	for _, bd := range b.Bindings {
		if bd.Kind == BindingService && !slices.Contains(out, bd.Value) {
			out = append(out, bd.Value)
		}
	}
	return out
}

// hold serves the binding sockets of scripts in namespace for one more
// process, and returns the targets to give back to release when the
// process has ended.
func (b *bindingServer) hold(namespace string, scripts []string) []workerKey {
	if len(scripts) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	held := make([]workerKey, 0, len(scripts))
	for _, script := range scripts {
		wk := workerKey{namespace, script}
		t := b.targets[wk]
		if t == nil {
			if t = b.listen(wk); t == nil {
				continue
			}
			b.targets[wk] = t
		}
		t.refs++
		held = append(held, wk)
	}
	return held
}

// listen starts serving the binding socket of wk. Call with b.mu held.
func (b *bindingServer) listen(wk workerKey) *bindingTarget {
	ln, err := net.Listen("unix", b.path(wk.namespace, wk.script))
	if err != nil {
		b.s.log.Error("workerd: binding socket", "namespace", wk.namespace, "script", wk.script, "err", err)
		return nil
	}
	t := &bindingTarget{ln: ln, srv: &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.s.serveBinding(w, r, wk.namespace, wk.script)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			b.s.log.Error("workerd: binding server stopped", "namespace", wk.namespace, "script", wk.script, "err", err)
		}
	}()
	return t
}

// release gives back the targets hold returned; a target no process holds
// any more stops being served and its socket file goes.
func (b *bindingServer) release(held []workerKey) {
	if len(held) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, wk := range held {
		t := b.targets[wk]
		if t == nil {
			continue // closed meanwhile
		}
		if t.refs--; t.refs == 0 {
			delete(b.targets, wk)
			t.stop()
		}
	}
}

// stop closes the socket (removing its file) before the server, so that
// the path is free again at once.
func (t *bindingTarget) stop() {
	_ = t.ln.Close()
	_ = t.srv.Close()
}

func (b *bindingServer) close() {
	b.mu.Lock()
	b.closed = true
	targets := b.targets
	b.targets = nil
	b.mu.Unlock()
	for _, t := range targets {
		t.stop()
	}
	b.wg.Wait()
}

// serveBinding runs a worker's service-binding call to script on the live
// version of script.
func (s *Supervisor) serveBinding(w http.ResponseWriter, r *http.Request, namespace, script string) {
	depth, _ := strconv.Atoi(r.Header.Get(BindingDepthHeader))
	if depth >= MaxBindingDepth {
		WriteError(w, http.StatusLoopDetected, "too many nested service binding calls")
		return
	}
	r.Header.Set(BindingDepthHeader, strconv.Itoa(depth+1))
	if s.opt.Live == nil {
		WriteError(w, http.StatusServiceUnavailable, "service bindings are not served")
		return
	}
	key, err := s.opt.Live(namespace, script)
	if err != nil {
		WriteError(w, http.StatusNotFound, "Worker not found")
		return
	}
	proto := "http"
	if strings.EqualFold(r.Header.Get(protoHeader), "https") {
		proto = "https"
	}
	path, query, _ := strings.Cut(r.RequestURI, "?")
	if !strings.HasPrefix(path, "/") {
		// An absolute-form request line: keep its path only.
		if u, err := r.URL.Parse(path); err == nil {
			path = u.EscapedPath()
		}
	}
	s.Invoke(w, r, Target{
		Key:  key,
		Host: r.Host, Proto: proto, Path: path, RawQuery: query,
	})
}
