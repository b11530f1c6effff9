package dispatcher_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
)

const namespace = "dotdo-production"

// staticLive is a dispatcher Source with fixed live versions and the seed
// routing table: a snapshot, then nothing.
type staticLive map[string]int64

func (s staticLive) WatchEnvironment(ctx context.Context, _ string, fn func(store.WatchEvent) error) error {
	ev := store.WatchEvent{Snapshot: true}
	for w, v := range s {
		ev.Live = append(ev.Live, store.Deployment{Service: w, Environment: "production", Namespace: namespace, Version: v, Status: store.StatusLive})
	}
	if err := fn(ev); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func newDispatcher(tb testing.TB, cfg dispatcher.Config, live staticLive) *dispatcher.Dispatcher {
	tb.Helper()
	cfg.InvokeToken, cfg.Logger = dispatchertest.InvokeToken, testsupport.QuietLogger()
	d, err := dispatcher.New(cfg, live)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	if err := d.Refresh(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkRoute measures routing alone (no I/O), for each rule.
func BenchmarkRoute(b *testing.B) {
	d := newDispatcher(b, dispatcher.Config{RuntimeURL: "http://127.0.0.1:1"}, staticLive{"gateway": 1, "db": 2})
	for _, c := range []struct{ name, host, path string }{
		{"subdomain", "gateway.do", "/hello"},
		{"path", "api.do", "/api/db/users"},
		{"default", "api.do", "/v1/things"},
		{"uppercase-port", "GATEWAY.DO:8787", "/hello"},
		{"unknown", "nope.do", "/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = d.Route(c.host, c.path)
			}
		})
	}
}

// BenchmarkProxy measures the dispatcher's own cost per request: ServeHTTP
// in front of an upstream that answers at once, with 32 goroutines, over
// HTTP (a loopback server) and in process.
func BenchmarkProxy(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	up := httptest.NewServer(hello)
	defer up.Close()
	for _, c := range []struct {
		name string
		cfg  dispatcher.Config
	}{
		{"http", dispatcher.Config{RuntimeURL: up.URL}},
		{"in-process", dispatcher.Config{Runtime: localHandler{hello}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := newDispatcher(b, c.cfg, staticLive{"gateway": 1})
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "http://gateway.do/hello", nil)
					w := httptest.NewRecorder()
					d.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("status %d", w.Code)
						return
					}
				}
			})
		})
	}
}

// localHandler is a LocalRuntime answering every call with h.
type localHandler struct{ h http.Handler }

func (l localHandler) Invoke(w http.ResponseWriter, r *http.Request, _, _ string, _ int64, _, _ string) {
	l.h.ServeHTTP(w, r)
}
