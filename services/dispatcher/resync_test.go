package dispatcher_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/dispatcher"
)

// serveDBAt serves the db service over st at addr until the returned stop
// is called.
func serveDBAt(t *testing.T, st store.Store, addr, token string) (stop func()) {
	t.Helper()
	var ln net.Listener
	var err error
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) { // the port may linger a moment after a stop
		if ln, err = net.Listen("tcp", addr); err == nil || time.Since(start) > 5*time.Second {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts, err := rpc.HandlerOptions(rpc.WithInternalToken(token), rpc.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := server.New("db", server.WithLogger(logger), server.WithUnboundedStreams(dbv1connect.DBServiceWatchEnvironmentProcedure))
	srv.Register(dbv1connect.NewDBServiceHandler(db.NewHandler(st, db.WithStop(ctx.Done())), opts...))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("db server: %v", err)
		}
	}
}

func goLive(t *testing.T, st store.Store, worker string) int64 {
	t.Helper()
	ctx := context.Background()
	d, _, err := st.BeginDeployment(ctx, store.NewDeployment{Environment: "production", Service: worker, Namespace: "dotdo-production",
		ScriptSHA256: store.SHA256Hex([]byte(worker))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusLive}); err != nil {
		t.Fatal(err)
	}
	return d.Version
}

// TestResyncAfterDBRestart: the db service stops; the dispatcher keeps
// serving its last state and watches again with backoff; what changed
// while nobody announced it (here, through the store directly, as another
// replica would) arrives with the first snapshot after the restart.
func TestResyncAfterDBRestart(t *testing.T) {
	st := sqlitetest.Open(t)
	goLive(t, st, "gateway")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "resync-test-token"
	stop := serveDBAt(t, st, addr, token)
	client, err := rpc.NewClient(dbv1connect.NewDBServiceClient, "http://"+addr, rpc.WithInternalToken(token))
	if err != nil {
		t.Fatal(err)
	}
	d := running(t, dispatcher.Config{WatchBackoff: 200 * time.Millisecond}, remote.New(client))
	if r := d.Route("gateway.do", "/"); r.Version != 1 {
		t.Fatalf("before the restart: %+v", r)
	}

	stop()
	v2 := goLive(t, st, "gateway") // no db service to announce it
	time.Sleep(300 * time.Millisecond)
	if r := d.Route("gateway.do", "/"); r.Version != 1 {
		t.Fatalf("while the db service is down: %+v; want the last state", r)
	}
	stop = serveDBAt(t, st, addr, token)
	defer stop()
	took := eventually(t, 5*time.Second, "the resync", func() bool { return d.Route("gateway.do", "/").Version == v2 })
	t.Logf("version %d, made live while the db service was down, routed %v after it restarted", v2, took)
}
