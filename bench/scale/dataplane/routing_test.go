package dataplane

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
)

const (
	environment = "production"
	namespace   = "dotdo-production"
	baseDomain  = "scale.test"
)

func workerName(i int) string { return fmt.Sprintf("w-%05d", i) }

// table returns a routing table of n live workers: subdomain routing for
// the first routing.MaxWorkers of them (the allow-list's bound), w-00000
// as the default worker, and a path route at /<mark> when mark is set.
func table(n int, mark string) routing.Table {
	ws := make([]string, min(n, routing.MaxWorkers))
	for i := range ws {
		ws[i] = workerName(i)
	}
	t := routing.Table{BaseDomains: []string{baseDomain}, Workers: ws, DefaultWorker: ws[0],
		DefaultHosts: []string{baseDomain}, Subdomains: true}
	if mark != "" {
		t.PathRoutes = []routing.PathRoute{{Prefix: "/" + mark, Worker: ws[0], Hosts: []string{baseDomain}}}
	}
	return t
}

// liveDeployments returns n live deployments, one per worker, as a
// snapshot lists them.
func liveDeployments(n int) []store.Deployment {
	out := make([]store.Deployment, n)
	now := time.Now()
	for i := range out {
		out[i] = store.Deployment{ID: fmt.Sprintf("dep_%08d", i), Environment: environment, Service: workerName(i),
			Namespace: namespace, Version: 1, Status: store.StatusLive, Kind: store.KindDeploy,
			ScriptSHA256: fmt.Sprintf("%064x", i), CreatedAt: now}
	}
	return out
}

// pushSource is an in-memory dispatcher.Source: a snapshot, then the
// events sent on events; applied receives a value after each is applied.
type pushSource struct {
	snap    store.WatchEvent
	events  chan store.WatchEvent
	applied chan struct{}
}

func newPushSource(n int) *pushSource { return newPushSourceTable(n, table(n, "")) }

// anyTable is the table of n live workers with subdomains_any_worker:
// every one of them is served by subdomain, and the table lists only the
// default worker, w-00000, whatever n is.
func anyTable(int) routing.Table {
	t := table(1, "")
	t.SubdomainsAnyWorker = true
	return t
}

func newPushSourceTable(n int, t routing.Table) *pushSource {
	rt := store.RouteTable{Environment: environment, Version: 1, Table: t}
	return &pushSource{
		snap:   store.WatchEvent{Snapshot: true, Live: liveDeployments(n), RouteTable: &rt},
		events: make(chan store.WatchEvent), applied: make(chan struct{}),
	}
}

func (p *pushSource) WatchEnvironment(ctx context.Context, _ string, fn func(store.WatchEvent) error) error {
	if err := fn(p.snap); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-p.events:
			if err := fn(ev); err != nil {
				return err
			}
			p.applied <- struct{}{}
		}
	}
}

func newDispatcher(tb testing.TB, src dispatcher.Source) *dispatcher.Dispatcher {
	tb.Helper()
	d, err := dispatcher.New(dispatcher.Config{Environment: environment, Namespace: namespace,
		InvokeToken: "scale", Logger: quiet()}, src)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return d
}

// loaded returns a dispatcher that has applied src's snapshot.
func loaded(tb testing.TB, src dispatcher.Source) *dispatcher.Dispatcher {
	tb.Helper()
	d := newDispatcher(tb, src)
	if err := d.Refresh(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return d
}

// stateHeap returns the live heap a dispatcher's state of n live workers
// takes: the heap after its snapshot is applied and dropped, less the heap
// before the snapshot was made.
func stateHeap(tb testing.TB, n int, t routing.Table) int64 {
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	src := newPushSourceTable(n, t)
	d := loaded(tb, src)
	src.snap = store.WatchEvent{} // what the state keeps of it is the state's
	after := heap()
	runtime.KeepAlive(d)
	return after - before
}

// routeHosts returns Host values that route to live workers of n.
func routeHosts(n int) []string {
	hosts := make([]string, min(n, routing.MaxWorkers))
	for i := range hosts {
		hosts[i] = workerName(i) + "." + baseDomain
	}
	return hosts
}

// benchRoute measures Route with n live workers, over the hosts of the
// listed workers.
func benchRoute(b *testing.B, n int) { benchRouteHosts(b, n, newPushSource(n), routeHosts(n)) }

// benchRouteAny measures Route with n live workers and
// subdomains_any_worker, over the hosts of all n workers: most of them
// beyond the list at 10,000.
func benchRouteAny(b *testing.B, n int) {
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = workerName(i) + "." + baseDomain
	}
	benchRouteHosts(b, n, newPushSourceTable(n, anyTable(n)), hosts)
}

func benchRouteHosts(b *testing.B, n int, src *pushSource, hosts []string) {
	d := loaded(b, src)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r := d.Route(hosts[i%len(hosts)], "/x"); r.Version != 1 {
			b.Fatalf("route %s: %+v", hosts[i%len(hosts)], r)
		}
		i++
	}
}

// running returns a dispatcher running (Run) on src until tb ends.
func running(tb testing.TB, src *pushSource) *dispatcher.Dispatcher {
	d := newDispatcher(tb, src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	for !d.Ready() {
		time.Sleep(time.Millisecond)
	}
	return d
}

// benchApplyLive measures the apply of one pushed deploy with n live
// workers: from the event's arrival until requests route with it.
func benchApplyLive(b *testing.B, n int) {
	src := newPushSource(n)
	running(b, src)
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		v++
		src.events <- store.WatchEvent{Live: []store.Deployment{{ID: "dep_x", Environment: environment,
			Service: workerName(int(v) % n), Namespace: namespace, Version: v, Status: store.StatusLive}}}
		<-src.applied
	}
}

// benchApplyTable measures the apply of one pushed routing-table change
// with n live workers.
func benchApplyTable(b *testing.B, n int) {
	src := newPushSource(n)
	running(b, src)
	tables := [2]routing.Table{table(n, "a"), table(n, "b")}
	b.ReportAllocs()
	v := int64(1)
	for b.Loop() {
		v++
		src.events <- store.WatchEvent{RouteTable: &store.RouteTable{Environment: environment, Version: v, Table: tables[v%2]}}
		<-src.applied
	}
}

func forSizes(b *testing.B, bench func(*testing.B, int)) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("live=%d", n), func(b *testing.B) { bench(b, n) })
	}
}

// BenchmarkRoute is the per-request routing cost (table and live-version
// lookup) with 10, 1,000 and 10,000 live workers.
func BenchmarkRoute(b *testing.B) { forSizes(b, benchRoute) }

// BenchmarkRouteAnyWorker is BenchmarkRoute with subdomains_any_worker,
// spread over every live worker.
func BenchmarkRouteAnyWorker(b *testing.B) { forSizes(b, benchRouteAny) }

// BenchmarkApplyLive is the cost of applying one pushed deploy.
func BenchmarkApplyLive(b *testing.B) { forSizes(b, benchApplyLive) }

// BenchmarkApplyTable is the cost of applying one pushed routing-table
// change.
func BenchmarkApplyTable(b *testing.B) { forSizes(b, benchApplyTable) }

// seed puts n live deployments and a routing table into st, as deploys
// would.
func seed(t *testing.T, st store.Store, n int) {
	ctx := t.Context()
	for i := range n {
		deployLive(t, st, workerName(i))
	}
	if _, err := st.PutRouteTable(ctx, store.NewRouteTable{Environment: environment, Table: table(n, ""), Kind: store.RouteTableSet, BaseVersion: store.AnyVersion}); err != nil {
		t.Fatal(err)
	}
}

// deployLive records a deploy of svc that went live and returns its
// version.
func deployLive(t *testing.T, st store.Store, svc string) int64 {
	ctx := t.Context()
	d, _, err := st.BeginDeployment(ctx, store.NewDeployment{Environment: environment, Service: svc, Namespace: namespace,
		ScriptSHA256: store.SHA256Hex([]byte(svc + time.Now().String()))})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = st.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusLive}); err != nil {
		t.Fatal(err)
	}
	return d.Version
}

// await spins until cond holds and returns how long it took; it fails the
// test after 10 s.
func await(t *testing.T, what string, cond func() bool) time.Duration {
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not within 10 s", what)
		}
		runtime.Gosched()
	}
	return time.Since(start)
}

func testRouting(t *testing.T, sz sizes) {
	costs := &report{title: "Routing state vs live workers (in-process push; testing.Benchmark)",
		head: []string{"live workers", "state heap", "heap/worker", "Route ns/op", "Route allocs/op",
			"apply deploy ns/op", "allocs/op", "apply table ns/op", "allocs/op"}}
	anyCosts := &report{title: "Subdomain routing to any of the live workers (subdomains_any_worker; hosts spread over all of them)",
		head: []string{"live workers", "table JSON", "state heap", "Route ns/op", "Route allocs/op"}}
	prop := &report{title: "A change reaching traffic (db service over SQLite -> WatchEnvironment -> dispatcher; load average before: " + loadAverage() + ")",
		head: []string{"live workers", "resync (snapshot) took", "deploy p50", "deploy p99", "table change p50", "table change p99"}}
	heaps, anyHeaps := map[int]int64{}, map[int]int64{}
	for _, n := range sz.live { // first, while nothing else holds memory
		heaps[n] = stateHeap(t, n, table(n, ""))
		anyHeaps[n] = stateHeap(t, n, anyTable(n))
	}
	for _, n := range sz.live {
		heap := heaps[n]
		route := testing.Benchmark(func(b *testing.B) { benchRoute(b, n) })
		live := testing.Benchmark(func(b *testing.B) { benchApplyLive(b, n) })
		tbl := testing.Benchmark(func(b *testing.B) { benchApplyTable(b, n) })
		costs.add(n, mib(heap), fmt.Sprintf("%d B", heap/int64(n)), route.NsPerOp(), route.AllocsPerOp(),
			live.NsPerOp(), live.AllocsPerOp(), tbl.NsPerOp(), tbl.AllocsPerOp())
		prop.add(propagation(t, sz, n)...)
		rany := testing.Benchmark(func(b *testing.B) { benchRouteAny(b, n) })
		anyCosts.add(n, fmt.Sprintf("%d B", len(anyTable(n).MarshalIndent())), mib(anyHeaps[n]), rany.NsPerOp(), rany.AllocsPerOp())
	}
	costs.log(t)
	anyCosts.log(t)
	prop.log(t)
}

// propagation serves a db service over SQLite holding n live workers to a
// running dispatcher, and times how long deploys and routing-table changes
// take from their commit until requests route with them.
func propagation(t *testing.T, sz sizes, n int) []any {
	st := sqlitetest.Open(t)
	seed(t, st, n)
	src := dispatchertest.ServeDB(t, st)
	// Run's first snapshot is the resync a dispatcher does at start-up and
	// after a broken watch.
	d := newDispatcher(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	resync := await(t, "the snapshot", d.Ready)
	if lv, _ := d.LiveVersions(); len(lv) != n {
		t.Fatalf("%d live workers after the snapshot, want %d", len(lv), n)
	}
	host := workerName(n-1) + "." + baseDomain
	if n > routing.MaxWorkers {
		host = workerName(routing.MaxWorkers-1) + "." + baseDomain
	}
	var deploys, tables []time.Duration
	for i := range sz.changes {
		v := deployLive(t, st, hostWorker(host))
		deploys = append(deploys, await(t, "deploy", func() bool { return d.Route(host, "/").Version >= v }))
		rt, err := st.PutRouteTable(t.Context(), store.NewRouteTable{Environment: environment,
			Table: table(n, fmt.Sprintf("m%d", i)), Kind: store.RouteTableSet, BaseVersion: store.AnyVersion})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, await(t, "table change", func() bool { return d.Route(host, "/").TableVersion >= rt.Version }))
	}
	return []any{n, ms(resync), ms(percentile(deploys, .5)), ms(percentile(deploys, .99)),
		ms(percentile(tables, .5)), ms(percentile(tables, .99))}
}

func hostWorker(host string) string { return host[:len(host)-len(baseDomain)-1] }
