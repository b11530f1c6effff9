package boot

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// TestLocalRuntimeDrain: stopping waits for the requests in flight through
// the in-process runtime, up to its bound, and refuses new ones.
func TestLocalRuntimeDrain(t *testing.T) {
	l := newLocalRuntime()
	started, release := make(chan struct{}), make(chan struct{})
	l.set(runtimeFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}), nil)
	h, err := l.wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inflight := httptest.NewRecorder()
	served := make(chan struct{})
	go func() { invoke(h, inflight); close(served) }()
	<-started

	drained := make(chan time.Duration)
	go func() { start := time.Now(); l.drain(5 * time.Second); drained <- time.Since(start) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-drained:
		t.Fatal("drain returned with a request in flight")
	default:
	}
	late := httptest.NewRecorder()
	invoke(h, late)
	if late.Code != http.StatusServiceUnavailable {
		t.Errorf("a request after the drain began: %d, want 503", late.Code)
	}
	close(release)
	<-served
	if took := <-drained; took > 2*time.Second || inflight.Code != http.StatusNoContent {
		t.Errorf("drain took %v; the request in flight got %d", took, inflight.Code)
	}

	// The bound: a request that never ends does not hold the stop.
	stuck, never := newLocalRuntime(), make(chan struct{})
	defer close(never)
	stuck.set(runtimeFunc(func(http.ResponseWriter, *http.Request) { <-never }), nil)
	sh, _ := stuck.wait(context.Background())
	go invoke(sh, httptest.NewRecorder())
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	stuck.drain(100 * time.Millisecond)
	if took := time.Since(start); took > time.Second {
		t.Errorf("drain past its bound: %v", took)
	}
}

// TestRuntimeRunDrainsInProcessRequests: under dotdo dev, a request handed
// to the runtime in process when the runtime is told to stop finishes
// before workerd is stopped, as one over HTTP does.
func TestRuntimeRunDrainsInProcessRequests(t *testing.T) {
	if _, err := workerd.FindBinary("", ""); err != nil {
		t.Skipf("skipping: this test runs workerd, and none was found: %v", err)
	}
	addr := testsupport.FreeAddr(t)
	c := RuntimeConfig{Common: Common{DataDir: t.TempDir()}, Addr: addr, MaxScriptBytes: 1 << 20, local: newLocalRuntime()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- c.Run(ctx, testsupport.QuietLogger()) }()
	h, err := c.local.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := WaitHealthy(wctx, "http://"+addr); err != nil {
		t.Fatal(err)
	}
	apiToken, err := c.RuntimeToken("")
	if err != nil {
		t.Fatal(err)
	}
	v := dispatchertest.UploadTo(t, "http://"+addr, apiToken, "dotdo-production", "slow",
		`export default { async fetch() { await new Promise((r) => setTimeout(r, 3000)); return new Response("done"); } };`)

	res := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		h.Invoke(res, req, "dotdo-production", "slow", v, "slow.do", "https")
		close(served)
	}()
	time.Sleep(300 * time.Millisecond) // the worker is running
	cancel()
	<-served
	if res.Code != http.StatusOK || res.Body.String() != "done" {
		t.Errorf("the request in flight at the stop got %d %q; want 200 done", res.Code, res.Body.String())
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// runtimeFunc is a dispatcher.LocalRuntime answering every call with f.
type runtimeFunc func(http.ResponseWriter, *http.Request)

func (f runtimeFunc) Invoke(w http.ResponseWriter, r *http.Request, _, _ string, _ int64, _, _ string) {
	f(w, r)
}

// invoke makes one call to rt.
func invoke(rt dispatcher.LocalRuntime, w http.ResponseWriter) {
	rt.Invoke(w, httptest.NewRequest(http.MethodGet, "/", nil), "ns", "x", 1, "x.do", "http")
}
