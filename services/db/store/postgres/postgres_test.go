package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/storetest"
)

func TestConformance(t *testing.T) {
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T) store.Store { return pgtest.Open(t) })
}

func TestOpenInvalidDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:s3cret@[::1")
	if !errors.Is(err, errkind.Invalid) {
		t.Fatalf("Open with a malformed DSN = %v, want errkind.Invalid", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

// TestIdempotencyRaceWithUncommittedInsert forces the race the
// in-transaction idempotency check cannot see: another transaction has
// inserted the same idempotency key but not committed yet. BeginDeployment
// must wait for it, then return its deployment and roll back its own version
// allocation.
func TestIdempotencyRaceWithUncommittedInsert(t *testing.T) {
	h := pgtest.Open(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, h.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	nd := store.NewDeployment{Environment: "prod", Service: "api", ScriptSHA256: store.SHA256Hex(nil),
		ActorKeyID: "key_a", IdempotencyKey: "req-1"}

	// Another process allocated version 1 and inserted it, uncommitted.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Undoes the insert when the test stops early; after the commit
		// below there is nothing left to roll back.
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("rollback: %v", err)
		}
	}()
	var xid int64
	if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO deployment_counters (environment, service, last_version) VALUES ('prod', 'api', 1)`,
		`INSERT INTO deployments (id, environment, service, version, status, kind, script_sha256, actor_key_id, idempotency_key, created_at)
VALUES ('dep_other', 'prod', 'api', 1, 'pending', 'deploy', '` + nd.ScriptSHA256 + `', 'key_a', 'req-1', 0)`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	type result struct {
		d       store.Deployment
		created bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		d, created, err := h.BeginDeployment(ctx, nd)
		done <- result{d, created, err}
	}()
	// Commit once BeginDeployment waits for our transaction.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := h.QueryInt64(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted
AND transactionid::text::bigint = ? % 4294967296`, xid)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("BeginDeployment never waited for the concurrent transaction")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.created || r.d.ID != "dep_other" {
		t.Fatalf("BeginDeployment = %+v, created=%v, %v; want the other deployment replayed", r.d, r.created, r.err)
	}
	// Its version allocation was rolled back.
	nd.IdempotencyKey = ""
	d, _, err := h.BeginDeployment(ctx, nd)
	if err != nil || d.Version != 2 {
		t.Fatalf("next deployment: version %d, %v; want 2", d.Version, err)
	}
}

// TestPendingPagingAcrossLateCommits pages through the pending deployments
// while a BeginDeployment is stuck after it drew its seq (it waits for
// another transaction that holds the same idempotency key) and later
// BeginDeployments try to commit. A keyset page must never run past a seq
// whose deployment commits later: every deployment whose BeginDeployment
// returned before the reader's last page is on a page.
func TestPendingPagingAcrossLateCommits(t *testing.T) {
	h := pgtest.Open(t)
	ctx := t.Context()
	dep := func(svc string) store.NewDeployment {
		return store.NewDeployment{Environment: "prod", Service: svc, ScriptSHA256: store.SHA256Hex(nil)}
	}
	first, _, err := h.BeginDeployment(ctx, dep("first"))
	if err != nil {
		t.Fatal(err)
	}

	// Another writer inserts a deployment with idempotency key (key_a,
	// req-1), uncommitted.
	conn, err := pgx.Connect(ctx, h.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var xid int64
	if err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO deployment_counters (environment, service, last_version) VALUES ('prod', 'raw', 1)`,
		`INSERT INTO deployments (id, environment, service, version, status, kind, script_sha256, actor_key_id, idempotency_key, created_at)
VALUES ('dep_raw', 'prod', 'raw', 1, 'pending', 'deploy', '` + store.SHA256Hex(nil) + `', 'key_a', 'req-1', 0)`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	type result struct {
		d   store.Deployment
		err error
		at  time.Time
	}
	begin := func(nd store.NewDeployment, out chan<- result) {
		d, _, err := h.BeginDeployment(ctx, nd)
		out <- result{d, err, time.Now()}
	}
	// The slow one: waits for the other writer's transaction.
	slowNd := dep("slow")
	slowNd.ActorKeyID, slowNd.IdempotencyKey = "key_a", "req-1"
	slow := make(chan result, 1)
	go begin(slowNd, slow)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := h.QueryInt64(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted
AND transactionid::text::bigint = ? % 4294967296`, xid)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("BeginDeployment never waited for the concurrent transaction")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Two fast ones after it.
	fast := make(chan result, 2)
	go begin(dep("fast1"), fast)
	time.Sleep(50 * time.Millisecond)
	go begin(dep("fast2"), fast)
	time.Sleep(300 * time.Millisecond)

	// A reconciler pages through the pending deployments; after its first
	// page the other writer gives up, which lets the slow one commit.
	var listed []store.Deployment
	var lastRead time.Time
	var slowDone *result
	p := store.Page{PageSize: 2}
	for pages := 0; ; pages++ {
		items, next, err := h.ListPending(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		lastRead = time.Now()
		listed = append(listed, items...)
		if next == "" {
			break
		}
		if pages == 0 {
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-slow
			slowDone = &r
		}
		p.PageToken = next
	}
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatal(err)
	}
	if slowDone == nil {
		r := <-slow
		slowDone = &r
	}
	results := []result{*slowDone, <-fast, <-fast}
	seen := map[string]bool{first.ID: false}
	for _, d := range listed {
		seen[d.ID] = true
	}
	if !seen[first.ID] {
		t.Errorf("the deployment committed before the listing is missing")
	}
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.at.Before(lastRead) && !seen[r.d.ID] {
			t.Errorf("deployment %s (%s, seq order) committed before the last page was read but is on no page", r.d.ID, r.d.Service)
		}
	}
	// Read afresh, the list holds all of them, in commit order.
	all, _, err := h.ListPending(ctx, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, d := range all {
		order = append(order, d.Service)
	}
	if got := strings.Join(order, ","); got != "first,slow,fast1,fast2" {
		t.Errorf("pending in seq order: %s, want first,slow,fast1,fast2", got)
	}
}

// waitChange returns the next change on ch that satisfies ok, or fails t
// after 10 s.
func waitChange(t *testing.T, ch <-chan store.Change, what string, ok func(store.Change) bool) store.Change {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-ch:
			if ok(c) {
				return c
			}
		case <-deadline:
			t.Fatalf("no change announced for %s", what)
		}
	}
}

// TestChangesReachOtherProcesses: a change committed through one store is
// announced to the subscribers of another store on the same database, as
// to another db replica (LISTEN/NOTIFY), and a rolled-back change to none.
func TestChangesReachOtherProcesses(t *testing.T) {
	h := pgtest.Open(t)
	other := h.Reopen(t).(store.Notifier)
	ch := make(chan store.Change, 16)
	defer other.Subscribe(func(c store.Change) { ch <- c })()
	waitChange(t, ch, "the listener's first connection", func(c store.Change) bool { return c.Resync })

	ctx := t.Context()
	if _, err := h.PutRouteTable(ctx, store.NewRouteTable{Environment: "prod", Table: routing.Seed(), Kind: store.RouteTableSeed, BaseVersion: store.AnyVersion}); err != nil {
		t.Fatal(err)
	}
	c := waitChange(t, ch, "a route table put by another process", func(store.Change) bool { return true })
	if c != (store.Change{Environment: "prod", RouteTable: true}) {
		t.Fatalf("got %+v", c)
	}
	d, _, err := h.BeginDeployment(ctx, store.NewDeployment{Environment: "prod", Service: "api", ScriptSHA256: store.SHA256Hex(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusLive}); err != nil {
		t.Fatal(err)
	}
	c = waitChange(t, ch, "a deployment made live by another process", func(store.Change) bool { return true })
	if c != (store.Change{Environment: "prod", Service: "api"}) {
		t.Fatalf("got %+v", c)
	}
}

// TestListenerResyncs: when the listener's connection is lost, it
// reconnects and asks its subscribers to read everything again.
func TestListenerResyncs(t *testing.T) {
	h := pgtest.Open(t)
	ch := make(chan store.Change, 16)
	defer h.Subscribe(func(c store.Change) { ch <- c })()
	waitChange(t, ch, "the listener's first connection", func(c store.Change) bool { return c.Resync })
	if _, err := h.ExecSQL(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND query = 'LISTEN "dotdo_' || md5(current_schema()) || '"'`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitChange(t, ch, "a resync after the lost connection", func(c store.Change) bool { return c.Resync })
	t.Logf("resynced %v after the listener's connection was terminated", time.Since(start).Round(time.Millisecond))
}
