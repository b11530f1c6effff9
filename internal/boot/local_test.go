package boot

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestLocalRuntimeDrain: stopping waits for the requests in flight through
// the in-process runtime, up to its bound, and refuses new ones.
func TestLocalRuntimeDrain(t *testing.T) {
	l := newLocalRuntime()
	started, release := make(chan struct{}), make(chan struct{})
	l.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	h, err := l.wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inflight := httptest.NewRecorder()
	served := make(chan struct{})
	go func() { h.ServeHTTP(inflight, httptest.NewRequest("GET", "/invoke/x", nil)); close(served) }()
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
	h.ServeHTTP(late, httptest.NewRequest("GET", "/invoke/x", nil))
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
	stuck.set(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-never }))
	sh, _ := stuck.wait(context.Background())
	go sh.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/invoke/x", nil))
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	stuck.drain(100 * time.Millisecond)
	if took := time.Since(start); took > time.Second {
		t.Errorf("drain past its bound: %v", took)
	}
}
