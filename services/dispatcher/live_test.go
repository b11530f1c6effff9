package dispatcher_test

import (
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/routing"
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

// TestRunWatches runs the watch loop: a change pushed by the source is
// routed at once; a failing source keeps the last state with one log line
// per LogInterval while Run retries with backoff, and recovery is logged
// and resyncs what changed meanwhile.
func TestRunWatches(t *testing.T) {
	logs := &testsupport.LogBuffer{}
	src := newFake("production", map[string]int64{"gateway": 1})
	d := running(t, dispatcher.Config{
		LogInterval: time.Hour, WatchBackoff: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}, src)

	src.set("gateway", 2)
	took := eventually(t, 2*time.Second, "version 2 routed", func() bool { return d.Route("gateway.do", "/").Version == 2 })
	t.Logf("a new live version was routed %v after the source pushed it", took)

	src.fail(errors.New("db unavailable"))
	calls := src.calls.Load()
	eventually(t, 5*time.Second, "five failed watches", func() bool { return src.calls.Load() >= calls+5 })
	if n := logs.Count("the watch of the routing state failed"); n != 1 {
		t.Errorf("%d failure log lines for five failures within LogInterval; want 1", n)
	}
	if r := d.Route("gateway.do", "/"); r.Version != 2 || r.Miss != routing.MissNone {
		t.Errorf("while the source fails: %+v; want the last state", r)
	}
	// What changes while the watch is down arrives with the next snapshot.
	src.mu.Lock()
	src.live["db"] = 4
	src.mu.Unlock()
	src.fail(nil)
	eventually(t, 2*time.Second, "recovery logged", func() bool { return logs.Count("watching the routing state again") == 1 })
	eventually(t, 2*time.Second, "the resync", func() bool { return d.Route("db.do", "/").Version == 4 })
}

// TestTableChangesServeAtOnce: a new routing table reaches routing without
// a restart; an allowed worker's first deploy serves at once; a table
// change restarts nothing else.
func TestTableChangesServeAtOnce(t *testing.T) {
	src := newFake("production", map[string]int64{"gateway": 1})
	d := running(t, dispatcher.Config{}, src)
	if r := d.Route("api.do", "/tools/x"); r.Worker != "gateway" || r.Rule != routing.RuleDefault || r.TableVersion != 0 {
		t.Fatalf("with the seed table: %+v", r)
	}
	tbl := routing.Seed()
	tbl.PathRoutes = append(tbl.PathRoutes, routing.PathRoute{Prefix: "/tools", Worker: "mcp", Hosts: []string{"do", "api.do"}})
	src.setTable(tbl)
	eventually(t, 2*time.Second, "the new table", func() bool { return d.Route("api.do", "/tools/x").Worker == "mcp" })
	if r := d.Route("api.do", "/tools/x"); r.Miss != routing.MissNotLive || r.TableVersion != 1 {
		t.Fatalf("before mcp is deployed: %+v", r)
	}
	if got, v := d.Table(); v != 1 || !got.Equal(tbl.Normalize()) {
		t.Fatalf("Table() = version %d %+v", v, got)
	}
	src.set("mcp", 1)
	eventually(t, 2*time.Second, "the first deploy of mcp", func() bool { return d.Route("api.do", "/tools/x").Version == 1 })
	if r := d.Route("gateway.do", "/"); r.Version != 1 {
		t.Fatalf("gateway after the table change: %+v", r)
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
		// Started at zero for every worker of the routing table.
		dispatcher.MetricUpstreamErrors + " kind=timeout worker=mcp": 0,
		dispatcher.MetricRefreshErrors:                               0,
	})
	if n := got.Total(dispatcher.MetricDuration); n != 6 {
		t.Errorf("%s has %d samples, want 6", dispatcher.MetricDuration, n)
	}
}
