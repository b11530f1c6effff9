package workerd

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"path/filepath"
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
// one Unix socket per target script, created when a process that binds to
// it starts. A request on the socket of (namespace, script) runs on the
// live version of that script (Options.Live), in its own process, exactly
// as a request from the dispatcher would.
type bindingServer struct {
	s       *Supervisor
	mu      sync.Mutex
	servers map[workerKey]*http.Server
	closed  bool
	wg      sync.WaitGroup
}

func (b *bindingServer) init(s *Supervisor) {
	b.s = s
	b.servers = map[workerKey]*http.Server{}
}

// bindingSocket returns the function a process configuration uses to name
// the socket of a service binding from namespace.
func (s *Supervisor) bindingSocket(namespace string) func(script string) string {
	return func(script string) string { return s.bindings.socket(namespace, script) }
}

// socket returns the path of the binding socket of (namespace, script),
// serving it from now on. Paths are hashed: names can be long, and socket
// paths are short.
func (b *bindingServer) socket(namespace, script string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + script))
	path := filepath.Join(b.s.dir, "b-"+hex.EncodeToString(sum[:8])+".sock")
	wk := workerKey{namespace, script}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.servers[wk] != nil {
		return path
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.s.log.Error("workerd: binding socket", "namespace", namespace, "script", script, "err", err)
		return path
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.s.serveBinding(w, r, namespace, script) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	b.servers[wk] = srv
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.s.log.Error("workerd: binding server stopped", "namespace", namespace, "script", script, "err", err)
		}
	}()
	return path
}

func (b *bindingServer) close() {
	b.mu.Lock()
	b.closed = true
	servers := b.servers
	b.servers = nil
	b.mu.Unlock()
	for _, srv := range servers {
		_ = srv.Close()
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
