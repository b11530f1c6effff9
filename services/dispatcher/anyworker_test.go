package dispatcher_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingtest"
	"github.com/dot-do/platform/internal/telemetry/telemetrytest"
	"github.com/dot-do/platform/services/dispatcher"
)

// TestAnyWorkerSubdomainsAt10000 routes by subdomain with 10,000 live
// workers and a table that lists only routing.MaxWorkers of them: with
// subdomains_any_worker every live worker is reached, the 10,000th as the
// first; a name with nothing live is a 404 no_live_version whose metrics
// carry no worker label; without the flag a worker beyond the list is not
// served.
func TestAnyWorkerSubdomainsAt10000(t *testing.T) {
	const n = 10000
	name := func(i int) string { return fmt.Sprintf("w-%05d", i) }
	live := make(map[string]int64, n)
	for i := range n {
		live[name(i)] = 1
	}
	listed := make([]string, routing.MaxWorkers)
	for i := range listed {
		listed[i] = name(i)
	}
	table := routing.Table{BaseDomains: []string{"do"}, Workers: listed, DefaultWorker: listed[0],
		DefaultHosts: []string{"do"}, Subdomains: true, SubdomainsAnyWorker: true}
	if size := len(table.MarshalIndent()); size > 8<<10 {
		t.Errorf("the table takes %d bytes of JSON", size)
	}
	src := newFake("production", live)
	src.setTable(table)
	rec := telemetrytest.NewRecorder()
	d := newDispatcher(t, dispatcher.Config{Runtime: standInRuntime{}, MeterProvider: rec}, src)

	for i := range n {
		host := name(i) + ".do"
		if r := d.Route(host, "/"); r.Miss != routing.MissNone || r.Worker != name(i) || r.Rule != routing.RuleSubdomain || r.Version != 1 {
			t.Fatalf("Route(%s) = %+v; want %s by subdomain", host, r, name(i))
		}
	}
	base := front(t, d)
	beyond := []int{routing.MaxWorkers, 4321, n - 1}
	for _, i := range beyond {
		res := do(t, http.MethodGet, base, name(i)+".do", "/x", nil, nil)
		var e routingtest.Echo
		err := json.NewDecoder(res.Body).Decode(&e)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || e.Worker != name(i) || e.Path != "/x" {
			t.Errorf("GET %s.do/x: HTTP %d %+v (%v); want worker %s's answer", name(i), res.StatusCode, e, err, name(i))
		}
	}
	for host, code := range map[string]string{
		name(n) + ".do":        routing.CodeNoLiveVersion, // a worker name, nothing live
		"not_a_worker.do":      routing.CodeNotFound,      // not a worker name
		"a." + name(1) + ".do": routing.CodeNotFound,
	} {
		r := d.Route(host, "/")
		if r.Miss.Code() != code {
			t.Errorf("Route(%s) = %+v; want %s", host, r, code)
		}
		res := do(t, http.MethodGet, base, host, "/", nil, nil)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", host, res.StatusCode)
		}
	}
	rec.Collect(t).Expect(t, map[string]int64{
		fmt.Sprintf("%s status=200 worker=%s", dispatcher.MetricRequests, name(n-1)): 1,
		// Names with nothing live share the empty label: no series per name.
		dispatcher.MetricRequests + " status=404 worker=": 3,
	})

	table.SubdomainsAnyWorker = false
	src.setTable(table)
	if err := d.Refresh(t.Context()); err != nil { // a new snapshot, with the table
		t.Fatal(err)
	}
	if r := d.Route(name(n-1)+".do", "/"); r.Miss != routing.MissUnknownWorker || !strings.Contains(r.Reason, name(n-1)) {
		t.Errorf("without subdomains_any_worker: Route(%s.do) = %+v; want not_found", name(n-1), r)
	}
}
