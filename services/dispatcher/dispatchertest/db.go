package dispatchertest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/db/store"
)

// ServeDB serves the db service over st on loopback, as the db binary does
// (internal credential, unbounded watch streams), until tb ends, and
// returns its client: a dispatcher's Source (WatchEnvironment) and a
// store.Store.
func ServeDB(tb testing.TB, st store.Store) *remote.Store {
	tb.Helper()
	token := credential.Generate()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts, err := rpc.HandlerOptions(rpc.WithInternalToken(token), rpc.WithLogger(logger))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := server.New("db", server.WithLogger(logger), server.WithUnboundedStreams(dbv1connect.DBServiceWatchEnvironmentProcedure))
	srv.Register(dbv1connect.NewDBServiceHandler(db.NewHandler(st, db.WithStop(ctx.Done())), opts...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("db server: %v", err)
		}
	})
	client, err := rpc.NewClient(dbv1connect.NewDBServiceClient, "http://"+ln.Addr().String(), rpc.WithInternalToken(token))
	if err != nil {
		tb.Fatal(err)
	}
	return remote.New(client)
}
