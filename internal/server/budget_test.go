package server_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/server"
)

// TestBodyBudget: bodies in flight never take more than the budget, all
// requests together; a request that cannot get its share in time is
// refused with resource_exhausted in its protocol, and gets it once the
// others are done.
func TestBodyBudget(t *testing.T) {
	b := server.NewBodyBudget(2<<20, 200*time.Millisecond)
	var mu sync.Mutex
	peak := int64(0)
	hold := make(chan struct{})
	h := b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusTeapot)
			return
		}
		mu.Lock()
		peak = max(peak, b.InFlight())
		mu.Unlock()
		if r.Header.Get("Hold") != "" {
			<-hold
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	req := func(size int, ctype string, known bool, holdIt bool) *http.Request {
		r := httptest.NewRequest("POST", "/x", io.NopCloser(bytes.NewReader(make([]byte, size))))
		r.ContentLength = -1
		if known {
			r.ContentLength = int64(size)
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if holdIt {
			r.Header.Set("Hold", "1")
		}
		return r
	}

	// A holds 1.5 MiB until released.
	aDone := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req(3<<19, "application/json", true, true))
		aDone <- rec.Code
	}()
	for b.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	// B (known length, REST) and C (unknown length, Connect) cannot get
	// theirs in time.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req(3<<19, "", true, false))
	if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), `"code":8`) || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("REST request over budget: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req(3<<20, "application/grpc", false, false))
	if rec.Code != http.StatusTeapot || !strings.Contains(rec.Body.String(), "resource_exhausted") {
		t.Fatalf("streamed request over budget: %d %s", rec.Code, rec.Body)
	}
	if got := b.InFlight(); got != 3<<19 {
		t.Fatalf("in flight %d after refusals, want A's %d", got, 3<<19)
	}
	close(hold)
	if code := <-aDone; code != http.StatusNoContent {
		t.Fatalf("A: %d", code)
	}
	// Now they pass; a body of unknown length larger than the budget is
	// read on (the handler's own limit refuses it).
	for _, r := range []*http.Request{req(3<<19, "", true, false), req(3<<20, "application/grpc", false, false), req(100, "", false, false)} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("after A: %d %s", rec.Code, rec.Body)
		}
	}
	if b.InFlight() != 0 || peak > b.Size() {
		t.Fatalf("in flight %d at rest, peak %d of %d", b.InFlight(), peak, b.Size())
	}
}
