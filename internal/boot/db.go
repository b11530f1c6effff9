package boot

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres"
	"github.com/dot-do/platform/services/db/store/sqlite"
)

// DBConfig configures the db service.
type DBConfig struct {
	Common
	// Addr is the address to serve DBService on.
	Addr string
	// DatabaseURL selects PostgreSQL; SQLite under DataDir when empty.
	DatabaseURL string
	// MaxScriptBytes is the deploy service's limit on a worker, which
	// bounds the script blobs db must accept.
	MaxScriptBytes int64
}

// RegisterFlags registers the db service's flags on fs.
func (c *DBConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_DB_ADDR", config.DefaultDBAddr, "address to serve DBService on")
	config.Int64(fs, &c.MaxScriptBytes, "max-script-bytes", "DOTDO_MAX_SCRIPT_BYTES", 10<<20, "largest worker deploy accepts (bounds the script blobs)")
	// A DSN may hold a password: read from the environment only.
	c.DatabaseURL = config.Env("", "DOTDO_DATABASE_URL")
}

// OpenStore opens the configured store: PostgreSQL when DatabaseURL is set,
// else SQLite at DataDir/dotdo.db. Migrations are applied.
func (c *DBConfig) OpenStore(ctx context.Context) (store.Store, error) {
	if c.DatabaseURL != "" {
		s, err := postgres.Open(ctx, c.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "dotdo.db"))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return s, nil
}

// Server builds the db server over st. Its watches (WatchEnvironment) end
// when stop is closed, so that a shutdown need not wait for them.
func (c *DBConfig) Server(logger *slog.Logger, st store.Store, stop <-chan struct{}) (*server.Server, error) {
	tok, err := c.Token()
	if err != nil {
		return nil, err
	}
	opts, err := rpc.HandlerOptions(c.rpcOptions(logger, rpc.WithInternalToken(tok), rpc.WithReadMaxBytes(c.readMaxBytes()))...)
	if err != nil {
		return nil, err
	}
	srv := server.New("db", server.WithLogger(logger), server.WithUnboundedStreams(dbv1connect.DBServiceWatchEnvironmentProcedure))
	srv.Register(dbv1connect.NewDBServiceHandler(db.NewHandler(st, db.WithStop(stop)), opts...))
	c.mountMetrics(srv, false)
	return srv, nil
}

// Run opens the store and serves the db service until ctx is done.
func (c *DBConfig) Run(ctx context.Context, logger *slog.Logger) error {
	st, err := c.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := c.Server(logger, st, ctx.Done())
	if err != nil {
		return err
	}
	c.listenMetrics(ctx, logger)
	return srv.ListenAndServe(ctx, c.Addr)
}

// readMaxBytes bounds a request to the db service: a script blob holds a
// worker's modules with a little framing, and the request adds its own.
func (c *DBConfig) readMaxBytes() int {
	return int(max(c.MaxScriptBytes, 10<<20))*2 + 1<<20
}
