package db_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

const token = "watch-test-internal-token"

// serve runs a db service over st until the test ends; closing stop ends
// its watches as a shutdown does.
func serve(t *testing.T, st store.Store, stop <-chan struct{}, heartbeat time.Duration) dbv1connect.DBServiceClient {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts, err := rpc.HandlerOptions(rpc.WithInternalToken(token), rpc.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("db", server.WithLogger(logger), server.WithUnboundedStreams(dbv1connect.DBServiceWatchEnvironmentProcedure))
	srv.Register(dbv1connect.NewDBServiceHandler(db.NewHandler(st, db.WithStop(stop), db.WithHeartbeat(heartbeat)), opts...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	client, err := rpc.NewClient(dbv1connect.NewDBServiceClient, "http://"+ln.Addr().String(), rpc.WithInternalToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func deployLive(t *testing.T, st store.Store, env, svc string) store.Deployment {
	t.Helper()
	ctx := t.Context()
	d, _, err := st.BeginDeployment(ctx, store.NewDeployment{Environment: env, Service: svc, Namespace: "dotdo-" + env, ScriptSHA256: store.SHA256Hex([]byte(svc))})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = st.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusLive}); err != nil {
		t.Fatal(err)
	}
	return d
}

// watch runs remote.WatchEnvironment in the background and hands its
// events to the test.
func watch(t *testing.T, client dbv1connect.DBServiceClient, env string) (<-chan store.WatchEvent, <-chan error) {
	t.Helper()
	events, errc := make(chan store.WatchEvent, 64), make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		errc <- remote.New(client).WatchEnvironment(ctx, env, func(ev store.WatchEvent) error {
			events <- ev
			return nil
		})
	}()
	return events, errc
}

func next(t *testing.T, events <-chan store.WatchEvent, what string) store.WatchEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no event for %s", what)
	}
	return store.WatchEvent{}
}

// TestWatchEnvironment: a snapshot first, then each change of the watched
// environment as it commits (and none of another), a snapshot again on a
// resync, and the end of the stream when the service stops.
func TestWatchEnvironment(t *testing.T) {
	st := sqlitetest.Open(t)
	deployLive(t, st, "production", "gateway")
	deployLive(t, st, "staging", "gateway")
	stop := make(chan struct{})
	client := serve(t, st, stop, db.WatchHeartbeat)
	events, errc := watch(t, client, "production")

	ev := next(t, events, "the snapshot")
	if !ev.Snapshot || len(ev.Live) != 1 || ev.Live[0].Service != "gateway" || ev.Live[0].Environment != "production" || ev.RouteTable != nil {
		t.Fatalf("first event = %+v; want a snapshot with production's gateway and no route table", ev)
	}

	ctx := t.Context()
	if _, err := st.PutRouteTable(ctx, store.NewRouteTable{Environment: "production", Table: routing.Seed(), Kind: store.RouteTableSeed, BaseVersion: 0}); err != nil {
		t.Fatal(err)
	}
	ev = next(t, events, "the route table")
	if ev.Snapshot || ev.RouteTable == nil || ev.RouteTable.Version != 1 || !ev.RouteTable.Table.Equal(routing.Seed()) {
		t.Fatalf("after a put = %+v; want route table version 1", ev)
	}

	deployLive(t, st, "staging", "db") // another environment: nothing
	start := time.Now()
	d := deployLive(t, st, "production", "db")
	ev = next(t, events, "the live deployment")
	t.Logf("a live deployment reached the watcher %v after it committed", time.Since(start).Round(time.Microsecond))
	if ev.Snapshot || len(ev.Live) != 1 || ev.Live[0].ID != d.ID || ev.RouteTable != nil {
		t.Fatalf("after a deploy = %+v; want deployment %s", ev, d.ID)
	}

	st.Publish(store.Change{Resync: true}) // as after a lost database connection
	ev = next(t, events, "the resync")
	if !ev.Snapshot || len(ev.Live) != 2 || ev.RouteTable == nil || ev.RouteTable.Version != 1 {
		t.Fatalf("after a resync = %+v; want a snapshot of two live deployments and version 1", ev)
	}
	select {
	case ev := <-events:
		t.Fatalf("an unexpected event: %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}

	close(stop)
	select {
	case err := <-errc:
		if !errors.Is(err, remote.ErrWatchEnded) || !errors.Is(err, errkind.Unavailable) {
			t.Fatalf("the watch ended with %v; want ErrWatchEnded (Unavailable)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end when the service stopped")
	}
}

// TestWatchCoalesces: a burst of deploys of one service while the watch is
// busy sends that service's live deployment, the latest, once or a few
// times, never an older one after a newer one.
func TestWatchCoalesces(t *testing.T) {
	st := sqlitetest.Open(t)
	client := serve(t, st, nil, db.WatchHeartbeat)
	events, _ := watch(t, client, "production")
	next(t, events, "the snapshot")
	var last store.Deployment
	for range 20 {
		last = deployLive(t, st, "production", "gateway")
	}
	var seen int64
	for seen != last.Version {
		ev := next(t, events, "the last deployment")
		if v := ev.Live[0].Version; v < seen {
			t.Fatalf("version %d after version %d", v, seen)
		} else {
			seen = v
		}
	}
}

// TestWatchHeartbeat: a quiet watch carries heartbeats, which the remote
// client takes as a sign of life and does not pass on.
func TestWatchHeartbeat(t *testing.T) {
	st := sqlitetest.Open(t)
	client := serve(t, st, nil, 20*time.Millisecond)
	stream, err := client.WatchEnvironment(t.Context(), connect.NewRequest(&dbv1.WatchEnvironmentRequest{Environment: "production"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var beats int
	for beats < 3 && stream.Receive() {
		if stream.Msg().GetHeartbeat() != nil {
			beats++
		}
	}
	if beats < 3 {
		t.Fatalf("%d heartbeats before the stream ended: %v", beats, stream.Err())
	}
	// An environment name that is not one is refused before any event.
	bad, err := client.WatchEnvironment(t.Context(), connect.NewRequest(&dbv1.WatchEnvironmentRequest{Environment: "Prod!"}))
	if err == nil {
		for bad.Receive() {
		}
		err = bad.Err()
	}
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a bad environment: %v; want InvalidArgument", err)
	}
}

// TestWatchHearsOtherReplicas: two db services share a PostgreSQL
// database, as two replicas do; a deploy recorded through one reaches a
// watcher of the other (NOTIFY, then LISTEN).
func TestWatchHearsOtherReplicas(t *testing.T) {
	a := pgtest.Open(t)
	b := a.Reopen(t)
	client := serve(t, b, nil, db.WatchHeartbeat)
	events, _ := watch(t, client, "production")
	next(t, events, "the snapshot")
	// The watch started the replica's listener, whose connection asks for
	// a resync once it listens: from then on it hears the other replica.
	if ev := next(t, events, "the resync of the listener's first connection"); !ev.Snapshot {
		t.Fatalf("got %+v; want the listener's resync", ev)
	}
	start := time.Now()
	d := deployLive(t, a, "production", "gateway")
	for {
		ev := next(t, events, "the deployment made through the other replica")
		if !ev.Snapshot && len(ev.Live) == 1 && ev.Live[0].ID == d.ID {
			break
		}
	}
	t.Logf("a deployment recorded through one replica reached a watcher of the other %v later", time.Since(start).Round(time.Microsecond))
}

// TestWatchSnapshotInParts: asked for parts, a snapshot of 1,150 live
// deployments comes as parts of at most the page size (the route table
// with the first, `more` on all but the last), none holding the whole
// environment; unasked, it is one message; the remote client asks for
// parts and passes the snapshot on whole.
func TestWatchSnapshotInParts(t *testing.T) {
	st := sqlitetest.Open(t)
	const n = 1150
	for i := range n {
		deployLive(t, st, "production", fmt.Sprintf("w%04d", i))
	}
	if _, err := st.PutRouteTable(t.Context(), store.NewRouteTable{Environment: "production", Table: routing.Seed(), Kind: store.RouteTableSeed}); err != nil {
		t.Fatal(err)
	}
	client := serve(t, st, nil, db.WatchHeartbeat)

	// parts returns the sizes of the messages of the first snapshot, and
	// whether each carried the route table.
	parts := func(pageSize uint32) (sizes []int, tables []bool) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		stream, err := client.WatchEnvironment(ctx, connect.NewRequest(&dbv1.WatchEnvironmentRequest{Environment: "production", SnapshotPageSize: pageSize}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		for stream.Receive() {
			snap := stream.Msg().GetSnapshot()
			if snap == nil {
				t.Fatalf("a %T inside the snapshot", stream.Msg().GetEvent())
			}
			sizes, tables = append(sizes, len(snap.GetLive())), append(tables, snap.GetRouteTable() != nil)
			if !snap.GetMore() {
				return sizes, tables
			}
		}
		t.Fatalf("the stream ended inside the snapshot: %v", stream.Err())
		return nil, nil
	}
	if sizes, tables := parts(500); !slices.Equal(sizes, []int{500, 500, 150}) || !slices.Equal(tables, []bool{true, false, false}) {
		t.Errorf("page size 500: parts of %v live deployments, route table in %v; want [500 500 150] and only in the first", sizes, tables)
	}
	if sizes, tables := parts(0); !slices.Equal(sizes, []int{n}) || !tables[0] {
		t.Errorf("no page size: parts of %v live deployments, route table in %v; want one message of %d with the table", sizes, tables, n)
	}

	events, _ := watch(t, client, "production")
	ev := next(t, events, "the snapshot")
	if !ev.Snapshot || len(ev.Live) != n || ev.RouteTable == nil || ev.RouteTable.Version != 1 {
		t.Fatalf("the remote watch passed on a snapshot of %d live deployments (route table %v); want all %d and version 1", len(ev.Live), ev.RouteTable, n)
	}
	seen := map[string]bool{}
	for _, d := range ev.Live {
		seen[d.Service] = true
	}
	if len(seen) != n {
		t.Fatalf("the snapshot holds %d distinct services; want %d", len(seen), n)
	}
	start := time.Now()
	d := deployLive(t, st, "production", "w0007")
	if ev := next(t, events, "a change after the snapshot"); ev.Snapshot || len(ev.Live) != 1 || ev.Live[0].ID != d.ID {
		t.Fatalf("after the snapshot = %+v; want deployment %s", ev, d.ID)
	}
	t.Logf("after a snapshot of %d in parts, a deploy reached the watcher in %v", n, time.Since(start).Round(time.Microsecond))
}
