package dispatcher_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/telemetry/telemetrytest"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/dispatcher"
)

// eventually polls cond every millisecond until it holds or d passes, and
// returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestRunRefreshes runs the refresh loop: a new live version reaches
// routing within the interval plus one read, a failing source keeps the
// last table with one log line per LogInterval, and recovery is logged.
func TestRunRefreshes(t *testing.T) {
	const interval = 50 * time.Millisecond
	logs := &testsupport.LogBuffer{}
	src := newFake("production", map[string]int64{"gateway": 1})
	d, err := dispatcher.New(dispatcher.Config{
		InvokeToken: "t", RefreshInterval: interval, LogInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	eventually(t, 2*time.Second, "first load", d.Ready)

	src.set("gateway", 2)
	took := eventually(t, 2*time.Second, "version 2 routed", func() bool { return d.Route("gateway.do", "/").Version == 2 })
	t.Logf("a new live version was routed %v after the store changed (interval %v)", took, interval)
	if took > interval+250*time.Millisecond {
		t.Errorf("propagation took %v; the bound is the interval (%v) plus one read", took, interval)
	}

	src.fail(errors.New("db unavailable"))
	calls := src.calls.Load()
	eventually(t, 5*time.Second, "five failed refreshes", func() bool { return src.calls.Load() >= calls+5 })
	if n := logs.Count("refreshing the live versions failed"); n != 1 {
		t.Errorf("%d failure log lines for five failures within LogInterval; want 1", n)
	}
	if r := d.Route("gateway.do", "/"); r.Version != 2 || r.Miss != dispatcher.MissNone {
		t.Errorf("while the source fails: %+v; want the last table", r)
	}
	src.fail(nil)
	eventually(t, 2*time.Second, "recovery logged", func() bool { return logs.Count("works again") == 1 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after its context was canceled")
	}
}

func TestMetrics(t *testing.T) {
	rec := telemetrytest.NewRecorder()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: up.URL, MeterProvider: rec}, newFake("production", standardLive()))
	base := front(t, d)
	for _, host := range []string{"gateway.do", "gateway.do", "db.do", "nope.do", "schedule.do"} {
		res := do(t, http.MethodGet, base, host, "/", nil, nil)
		res.Body.Close()
	}
	up.Close()
	do(t, http.MethodGet, base, "gateway.do", "/", nil, nil).Body.Close()

	got := rec.Collect(t)
	for name, scope := range got.Scopes {
		if scope != dispatcher.MeterName {
			t.Errorf("%s recorded on scope %q, want %q", name, scope, dispatcher.MeterName)
		}
	}
	got.Expect(t, map[string]int64{
		dispatcher.MetricRequests + " status=418 worker=gateway":             2,
		dispatcher.MetricRequests + " status=418 worker=db":                  1,
		dispatcher.MetricRequests + " status=404 worker=":                    1,
		dispatcher.MetricRequests + " status=404 worker=schedule":            1,
		dispatcher.MetricRequests + " status=502 worker=gateway":             1,
		dispatcher.MetricNotFound + " reason=not_found":                      1,
		dispatcher.MetricNotFound + " reason=no_live_version":                1,
		dispatcher.MetricUpstreamErrors + " kind=unreachable worker=gateway": 1,
		// Started at zero by New, for every allow-listed worker.
		dispatcher.MetricUpstreamErrors + " kind=timeout worker=mcp": 0,
		dispatcher.MetricRefreshErrors:                               0,
	})
	if n := got.Total(dispatcher.MetricDuration); n != 6 {
		t.Errorf("%s has %d samples, want 6", dispatcher.MetricDuration, n)
	}
}

// TestFirstDeployServesAtOnce: a request for an allowed worker with nothing
// live re-reads the live versions (at most every 100 ms), so a worker's
// first deploy serves without waiting for the periodic refresh.
func TestFirstDeployServesAtOnce(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") })
	src := newFake("production", map[string]int64{"gateway": 1})
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: up.URL, RefreshInterval: time.Hour}, src)
	base := front(t, d)
	res := do(t, http.MethodGet, base, "db.do", "/", nil, nil)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("before the deploy: %d, want 404", res.StatusCode)
	}
	time.Sleep(150 * time.Millisecond) // past the refresh spacing
	src.set("db", 1)
	res = do(t, http.MethodGet, base, "db.do", "/", nil, nil)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(b) != "served" {
		t.Fatalf("right after the first deploy: %d %q, want 200 served", res.StatusCode, b)
	}
	// A flood of misses costs one read per spacing, not one per request.
	before := src.calls.Load()
	for range 50 {
		res := do(t, http.MethodGet, base, "mcp.do", "/", nil, nil)
		res.Body.Close()
	}
	if n := src.calls.Load() - before; n > 3 {
		t.Fatalf("50 misses caused %d reads of the live versions", n)
	}
}
