package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/db/store"
)

func newTable(kind store.RouteTableKind, base int64) store.NewRouteTable {
	return store.NewRouteTable{Environment: "prod", Table: routing.Seed(), Kind: kind, BaseVersion: base, ActorKeyID: "key_1", ActorName: "alice"}
}

func testRouteTables(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	if _, err := s.GetRouteTable(ctx, "prod", 0); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("GetRouteTable with none stored = %v; want NotFound", err)
	}
	v1 := must[store.RouteTable](t)(s.PutRouteTable(ctx, newTable(store.RouteTableSeed, 0)))
	if v1.Version != 1 || v1.Kind != store.RouteTableSeed || v1.ActorKeyID != "key_1" || v1.ActorName != "alice" || v1.CreatedAt.IsZero() || !v1.Table.Equal(routing.Seed()) {
		t.Fatalf("first version: %+v", v1)
	}
	// A second seed loses: the environment has a table now.
	_, err := s.PutRouteTable(ctx, newTable(store.RouteTableSeed, 0))
	wantErr(t, err, errkind.Precondition)

	changed := routing.Seed()
	changed.PathRoutes = append(changed.PathRoutes, routing.PathRoute{Prefix: "/tools/", Worker: "mcp", Hosts: []string{"API.DO"}})
	changed.SubdomainsAnyWorker = true
	nt := newTable(store.RouteTableSet, 1)
	nt.Table = changed
	v2 := must[store.RouteTable](t)(s.PutRouteTable(ctx, nt))
	last := v2.Table.PathRoutes[len(v2.Table.PathRoutes)-1]
	if v2.Version != 2 || last.Prefix != "/tools" || last.Hosts[0] != "api.do" || !v2.Table.SubdomainsAnyWorker {
		t.Fatalf("second version (normalized): %+v", v2)
	}
	_, err = s.PutRouteTable(ctx, nt) // base version 1 is stale now
	wantErr(t, err, errkind.Precondition)
	v3 := must[store.RouteTable](t)(s.PutRouteTable(ctx, newTable(store.RouteTableSet, store.AnyVersion)))

	wantEqual(t, must[store.RouteTable](t)(s.GetRouteTable(ctx, "prod", 0)), v3)
	wantEqual(t, must[store.RouteTable](t)(s.GetRouteTable(ctx, "prod", 2)), v2)
	for _, c := range []struct {
		env string
		v   int64
	}{{"prod", 9}, {"staging", 0}, {"staging", 1}} {
		if _, err := s.GetRouteTable(ctx, c.env, c.v); !errors.Is(err, errkind.NotFound) {
			t.Errorf("GetRouteTable(%s, %d) = %v; want NotFound", c.env, c.v, err)
		}
	}

	rb := newTable(store.RouteTableRollback, store.AnyVersion)
	rb.RestoredVersion = 9
	_, err = s.PutRouteTable(ctx, rb)
	wantErr(t, err, errkind.NotFound)
	rb.RestoredVersion, rb.Table = 2, v2.Table
	v4 := must[store.RouteTable](t)(s.PutRouteTable(ctx, rb))
	if v4.Version != 4 || v4.Kind != store.RouteTableRollback || v4.RestoredVersion != 2 || !v4.Table.Equal(v2.Table) {
		t.Fatalf("rollback version: %+v", v4)
	}

	// Invalid input stores nothing.
	bad := newTable(store.RouteTableSet, store.AnyVersion)
	bad.Table.PathRoutes[0].Worker = "nope"
	_, err = s.PutRouteTable(ctx, bad)
	var fe *routing.FieldError
	if !errors.As(err, &fe) || fe.Field != "path_routes[0].worker" || !errors.Is(err, errkind.Invalid) {
		t.Fatalf("an invalid table: %v; want a FieldError naming path_routes[0].worker", err)
	}
	for _, nt := range []store.NewRouteTable{
		{Environment: "Prod!", Table: routing.Seed(), Kind: store.RouteTableSet, BaseVersion: store.AnyVersion},
		{Environment: "prod", Table: routing.Seed(), Kind: "replace", BaseVersion: store.AnyVersion},
		{Environment: "prod", Table: routing.Seed(), Kind: store.RouteTableRollback, BaseVersion: store.AnyVersion},
		{Environment: "prod", Table: routing.Seed(), Kind: store.RouteTableSet, RestoredVersion: 1, BaseVersion: store.AnyVersion},
	} {
		if _, err := s.PutRouteTable(ctx, nt); !errors.Is(err, errkind.Invalid) {
			t.Errorf("PutRouteTable(%+v) = %v; want Invalid", nt, err)
		}
	}
	if cur := must[store.RouteTable](t)(s.GetRouteTable(ctx, "prod", 0)); cur.Version != 4 {
		t.Fatalf("refused puts changed the table: version %d", cur.Version)
	}

	// Pages, newest first.
	var got []int64
	f := store.RouteTableFilter{Environment: "prod", PageSize: 3}
	for {
		items, next, err := s.ListRouteTables(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range items {
			got = append(got, rt.Version)
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	wantEqual(t, got, []int64{4, 3, 2, 1})
	if _, _, err := s.ListRouteTables(ctx, store.RouteTableFilter{Environment: "staging", PageToken: f.PageToken}); !errors.Is(err, errkind.Invalid) {
		t.Errorf("a page token of another environment: %v; want Invalid", err)
	}
	if items, next, err := s.ListRouteTables(ctx, store.RouteTableFilter{Environment: "staging"}); err != nil || len(items) != 0 || next != "" {
		t.Errorf("ListRouteTables of an environment without tables = %v, %q, %v", items, next, err)
	}
}

func testConcurrentRouteTables(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	const n = 8
	// Racing seeds: exactly one wins.
	var won atomic.Int64
	parallel(n, func(int) {
		_, err := s.PutRouteTable(ctx, newTable(store.RouteTableSeed, 0))
		switch {
		case err == nil:
			won.Add(1)
		case !errors.Is(err, errkind.Precondition):
			t.Errorf("a racing seed: %v", err)
		}
	})
	if won.Load() != 1 {
		t.Fatalf("%d racing seeds won; want 1", won.Load())
	}
	// Racing sets without a base version all land, each on its own version.
	versions := make([]int64, n)
	parallel(n, func(i int) {
		rt, err := s.PutRouteTable(ctx, newTable(store.RouteTableSet, store.AnyVersion))
		if err != nil {
			t.Errorf("a racing set: %v", err)
			return
		}
		versions[i] = rt.Version
	})
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+2) {
			t.Fatalf("racing sets got versions %v; want 2..%d once each", versions, n+1)
		}
	}
}

func newWorker(kind store.Kind, restored int64) store.NewDispatchWorkerDeployment {
	return store.NewDispatchWorkerDeployment{
		Environment: "prod", Kind: kind, RestoredVersion: restored, RouteTableVersion: 3, ScriptName: "dotdo-dispatcher-prod",
		ScriptSHA256: script(1), CompatibilityDate: "2025-01-01", Routes: []string{"do/*", "*.do/*"}, ActorKeyID: "key_1", ActorName: "alice",
		Crons: []store.CronTrigger{{Cron: "*/5 * * * *", Workers: []string{"db", "gateway"}}, {Cron: "0 3 * * *", Workers: []string{"db"}}},
	}
}

func testDispatchWorkers(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	begin := func(nd store.NewDispatchWorkerDeployment) store.DispatchWorkerDeployment {
		t.Helper()
		return must[store.DispatchWorkerDeployment](t)(s.BeginDispatchWorkerDeployment(ctx, nd))
	}
	complete := func(id string, st store.Status) store.DispatchWorkerDeployment {
		t.Helper()
		o := store.Outcome{Status: st}
		if st == store.StatusFailed {
			o.Error = "boom"
		}
		return must[store.DispatchWorkerDeployment](t)(s.CompleteDispatchWorkerDeployment(ctx, id, o))
	}
	get := func(v int64) store.DispatchWorkerDeployment {
		t.Helper()
		return must[store.DispatchWorkerDeployment](t)(s.GetDispatchWorkerDeployment(ctx, "prod", v))
	}
	d1 := begin(newWorker("", 0))
	want := store.DispatchWorkerDeployment{
		ID: d1.ID, Environment: "prod", Version: 1, Status: store.StatusPending, Kind: store.KindDeploy, RouteTableVersion: 3,
		ScriptName: "dotdo-dispatcher-prod", ScriptSHA256: script(1), CompatibilityDate: "2025-01-01",
		Routes: []string{"do/*", "*.do/*"}, ActorKeyID: "key_1", ActorName: "alice", CreatedAt: d1.CreatedAt,
		Crons: []store.CronTrigger{{Cron: "*/5 * * * *", Workers: []string{"db", "gateway"}}, {Cron: "0 3 * * *", Workers: []string{"db"}}},
	}
	wantEqual(t, d1, want)
	wantEqual(t, get(1), want)

	// A deploy that stopped before its outcome is failed by the next one.
	d2 := begin(newWorker(store.KindDeploy, 0))
	if d1 = get(1); d1.Status != store.StatusFailed || d1.Error == "" || d1.FinishedAt.IsZero() {
		t.Fatalf("the interrupted deployment: %+v", d1)
	}
	d2 = complete(d2.ID, store.StatusLive)
	if d2.Version != 2 || d2.Status != store.StatusLive || d2.FinishedAt.IsZero() {
		t.Fatalf("second deployment: %+v", d2)
	}
	_, err := s.CompleteDispatchWorkerDeployment(ctx, d2.ID, store.Outcome{Status: store.StatusFailed})
	wantErr(t, err, errkind.Precondition)
	d3 := complete(begin(newWorker(store.KindDeploy, 0)).ID, store.StatusLive)
	if get(2).Status != store.StatusSuperseded || d3.Status != store.StatusLive {
		t.Fatalf("a live deployment did not supersede the one before it: %+v", get(2))
	}
	d4 := complete(begin(newWorker(store.KindDeploy, 0)).ID, store.StatusFailed)
	if d4.Error != "boom" || get(3).Status != store.StatusLive {
		t.Fatalf("a failed deployment changed the live one: %+v, %+v", d4, get(3))
	}

	// Rollbacks restore a version that went live.
	_, err = s.BeginDispatchWorkerDeployment(ctx, newWorker(store.KindRollback, 1))
	wantErr(t, err, errkind.Precondition)
	_, err = s.BeginDispatchWorkerDeployment(ctx, newWorker(store.KindRollback, 99))
	wantErr(t, err, errkind.NotFound)
	d5 := complete(begin(newWorker(store.KindRollback, 2)).ID, store.StatusLive)
	if d5.Version != 5 || d5.Kind != store.KindRollback || d5.RestoredVersion != 2 || get(3).Status != store.StatusSuperseded {
		t.Fatalf("rollback: %+v", d5)
	}
	for _, nd := range []store.NewDispatchWorkerDeployment{
		{Environment: "prod", ScriptName: "x", ScriptSHA256: "nope"},
		{Environment: "prod", ScriptName: "Bad/Name", ScriptSHA256: script(1)},
		{Environment: "prod", ScriptName: "x", ScriptSHA256: script(1), Kind: store.KindRollback},
		{Environment: "", ScriptName: "x", ScriptSHA256: script(1)},
		{Environment: "prod", ScriptName: "x", ScriptSHA256: script(1), Crons: []store.CronTrigger{{Cron: "* * * * *"}}},
		{Environment: "prod", ScriptName: "x", ScriptSHA256: script(1), Crons: []store.CronTrigger{{Cron: "* * * * *", Workers: []string{"Bad/Name"}}}},
	} {
		if _, err := s.BeginDispatchWorkerDeployment(ctx, nd); !errors.Is(err, errkind.Invalid) {
			t.Errorf("BeginDispatchWorkerDeployment(%+v) = %v; want Invalid", nd, err)
		}
	}
	if _, err := s.GetDispatchWorkerDeployment(ctx, "staging", 1); !errors.Is(err, errkind.NotFound) {
		t.Errorf("another environment's version: %v; want NotFound", err)
	}

	var got []string
	f := store.DispatchWorkerFilter{Environment: "prod", PageSize: 2}
	for {
		items, next, err := s.ListDispatchWorkerDeployments(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range items {
			got = append(got, fmt.Sprintf("%d:%s", d.Version, d.Status))
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	wantEqual(t, got, []string{"5:live", "4:failed", "3:superseded", "2:superseded", "1:failed"})
}

// testChanges checks the change feed of a store that is a store.Notifier:
// a deployment going live and a new route table are announced once
// committed; a failed deployment and a refused table are not.
func testChanges(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	n, ok := s.(store.Notifier)
	if !ok {
		t.Skipf("store %T is not a store.Notifier", s)
	}
	ctx := t.Context()
	got := make(chan store.Change, 16)
	cancel := n.Subscribe(func(c store.Change) {
		if !c.Resync { // a listener that (re)connects asks for one
			got <- c
		}
	})
	defer cancel()
	next := func(what string) store.Change {
		t.Helper()
		select {
		case c := <-got:
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("no change announced for %s", what)
		}
		return store.Change{}
	}

	must[store.RouteTable](t)(s.PutRouteTable(ctx, newTable(store.RouteTableSeed, 0)))
	wantEqual(t, next("a route table"), store.Change{Environment: "prod", RouteTable: true})
	_, _ = s.PutRouteTable(ctx, newTable(store.RouteTableSeed, 0)) // refused: nothing announced

	d := begin(t, s, newDep("prod", "api"))
	complete(t, s, d.ID, store.StatusLive)
	wantEqual(t, next("a deployment going live"), store.Change{Environment: "prod", Service: "api"})
	complete(t, s, begin(t, s, newDep("prod", "api")).ID, store.StatusFailed)

	must[store.RouteTable](t)(s.PutRouteTable(ctx, newTable(store.RouteTableSet, store.AnyVersion)))
	wantEqual(t, next("a second route table"), store.Change{Environment: "prod", RouteTable: true})
	select {
	case c := <-got:
		t.Fatalf("an extra change was announced: %+v", c)
	case <-time.After(100 * time.Millisecond):
	}

	cancel()
	must[store.RouteTable](t)(s.PutRouteTable(ctx, newTable(store.RouteTableSet, store.AnyVersion)))
	select {
	case c := <-got:
		t.Fatalf("a cancelled subscriber got %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}
