package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
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
	// AuditKey keys the audit chain; when empty it is read from (or, with
	// a migration of the existing chain, generated into) DataDir/audit.key.
	AuditKey string
	// AuditRekey migrates the audit chain to AuditKey at start-up (set
	// once, after an upgrade, when AuditKey comes from the environment).
	AuditRekey bool
}

// RegisterFlags registers the db service's flags on fs.
func (c *DBConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_DB_ADDR", config.DefaultDBAddr, "address to serve DBService on")
	config.Int64(fs, &c.MaxScriptBytes, "max-script-bytes", "DOTDO_MAX_SCRIPT_BYTES", 10<<20, "largest worker deploy accepts (bounds the script blobs)")
	// A DSN may hold a password: read from the environment only.
	c.DatabaseURL = config.Env("", "DOTDO_DATABASE_URL")
	// Secrets are never flags.
	c.AuditKey = config.Env("", "DOTDO_AUDIT_KEY")
	c.AuditRekey = config.Env("", "DOTDO_AUDIT_REKEY") == "1"
}

// OpenStore opens the configured store: PostgreSQL when DatabaseURL is set,
// else SQLite at DataDir/dotdo.db. Migrations are applied, and the audit
// chain is keyed with the audit key (see auditKey), migrated to it when the
// key is new or AuditRekey is set.
func (c *DBConfig) OpenStore(ctx context.Context, logger *slog.Logger) (store.Store, error) {
	key, err := c.auditKey()
	if err != nil {
		return nil, err
	}
	opts := []store.Option{store.WithAuditKey(key.key)}
	var s store.Store
	if c.DatabaseURL != "" {
		if s, err = postgres.Open(ctx, c.DatabaseURL, opts...); err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
	} else if s, err = sqlite.Open(ctx, filepath.Join(c.DataDir, "dotdo.db"), opts...); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if key.rekey {
		if err := rekeyAudit(ctx, logger, s, key); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// AuditKeyFile is the audit key's file under the data directory, when
// DOTDO_AUDIT_KEY is not set.
const AuditKeyFile = "audit.key"

// auditKeyMaterial is the audit key and what to do with it at start-up.
type auditKeyMaterial struct {
	key []byte
	// rekey migrates the chain to key before serving.
	rekey bool
	// pending, when set, is the file holding a new key, renamed to the key
	// file once the chain is migrated to it.
	pending string
}

// auditKey returns the audit key: DOTDO_AUDIT_KEY (at least 32 bytes) when
// set, else DataDir/audit.key. When that file does not exist a key is
// generated into audit.key.new (mode 0600), the chain is migrated to it,
// and only then is it renamed to audit.key: so an existing chain is
// migrated exactly when its key is created, never because of anything the
// database says (a forger who rewrote the chain without the key cannot get
// it re-keyed), and a crash in between resumes the same migration.
func (c *DBConfig) auditKey() (auditKeyMaterial, error) {
	if c.AuditKey != "" {
		if len(c.AuditKey) < 32 {
			return auditKeyMaterial{}, fmt.Errorf("DOTDO_AUDIT_KEY is %d bytes; use at least 32 random bytes", len(c.AuditKey))
		}
		return auditKeyMaterial{key: []byte(c.AuditKey), rekey: c.AuditRekey}, nil
	}
	path := filepath.Join(c.DataDir, AuditKeyFile)
	tok, err := credential.Load(path)
	if err == nil {
		return auditKeyMaterial{key: []byte(tok), rekey: c.AuditRekey}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return auditKeyMaterial{}, fmt.Errorf("audit key: %w", err)
	}
	pending := path + ".new"
	if tok, err = credential.LoadOrCreate(pending); err != nil {
		return auditKeyMaterial{}, fmt.Errorf("audit key: %w", err)
	}
	return auditKeyMaterial{key: []byte(tok), rekey: true, pending: pending}, nil
}

// rekeyAudit migrates the audit chain of s to key, then puts a new key
// file in place.
func rekeyAudit(ctx context.Context, logger *slog.Logger, s store.Store, key auditKeyMaterial) error {
	rk, ok := s.(store.AuditRekeyer)
	if !ok {
		return fmt.Errorf("audit key: store %T cannot migrate its audit chain", s)
	}
	res, err := rk.RekeyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if res.Rekeyed {
		attrs := []any{"events", res.Events, "previous_chain_ok", res.Previous.OK}
		if !res.Previous.OK {
			logger.Error("the unkeyed audit chain was broken before it was keyed; the break is recorded in the audit.rekey event",
				append(attrs, "first_broken_seq", res.Previous.FirstBrokenSeq, "reason", res.Previous.Reason)...)
		} else {
			logger.Info("audit chain keyed with the audit key", attrs...)
		}
	}
	if key.pending != "" {
		final := strings.TrimSuffix(key.pending, ".new")
		if err := os.Rename(key.pending, final); err != nil {
			// Another process sharing the data directory got there first.
			if _, serr := os.Stat(final); !errors.Is(err, fs.ErrNotExist) || serr != nil {
				return fmt.Errorf("audit key: %w", err)
			}
		}
	}
	return nil
}

// Server builds the db server over st. Its watches (WatchEnvironment) end
// when stop is closed, so that a shutdown need not wait for them.
func (c *DBConfig) Server(logger *slog.Logger, st store.Store, stop <-chan struct{}) (*server.Server, error) {
	v, err := c.verifier(logger, dbv1connect.DBServiceName)
	if err != nil {
		return nil, err
	}
	opts, err := rpc.HandlerOptions(c.rpcOptions(logger, rpc.WithVerifier(v), rpc.WithReadMaxBytes(c.readMaxBytes()))...)
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
	st, err := c.OpenStore(ctx, logger)
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
