// Package postgres is the PostgreSQL implementation of store.Store, on a pgx
// v5 connection pool.
//
// Transactions run at READ COMMITTED. Writers that must not interleave are
// serialized by row locks (the version counter row of an environment and
// service, the audit chain head row) or by transaction-scoped advisory locks
// (migrations, admin key bootstrap), so several processes can share one
// database. The schema lives in the first schema of search_path, which a
// DSN can set (e.g. "...?search_path=dotdo").
//
// Changes that watchers care about (a deployment going live, a new route
// table) are announced with NOTIFY in the transaction that makes them, so
// every process sharing the database learns of them when they commit, and
// of no change that rolls back. DB.Subscribe starts a listener on a
// connection of its own (LISTEN); see listen.go.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is a store.Store backed by PostgreSQL.
type DB struct {
	*sqlstore.Engine
	pool    *pgxpool.Pool
	channel string
	l       listener
}

var (
	_ store.Store    = (*DB)(nil)
	_ store.Notifier = (*DB)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string; pool settings such as pool_max_conns are honoured),
// checks the connection and applies the pending migrations.
func Open(ctx context.Context, dsn string, opts ...store.Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, fmt.Errorf("postgres: invalid DSN: %w", errkind.Invalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	o := store.BuildOptions(opts...)
	// The notification channel is the schema's, so that stores in different
	// schemas of one database do not hear each other.
	var channel string
	if err := pool.QueryRow(ctx, `SELECT 'dotdo_' || md5(current_schema())`).Scan(&channel); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: read the current schema: %w", err)
	}
	d := &driver{pool: pool, channel: channel}
	ms, err := sqlstore.LoadMigrations(migrationFS, "migrations")
	if err == nil {
		err = sqlstore.Migrate(ctx, d, ms, o.Now)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return &DB{Engine: sqlstore.New(d, o), pool: pool, channel: channel}, nil
}

// Close stops the listener, if one runs, and closes the pool.
func (db *DB) Close() error {
	db.l.stop()
	return db.Engine.Close()
}

// Pool returns the underlying connection pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// driver implements sqlstore.Driver with pgx.
type driver struct {
	pool    *pgxpool.Pool
	channel string
}

// Reader implements sqlstore.Driver.
func (d *driver) Reader() sqlstore.Queryer { return queryer{d.pool} }

// InTx implements sqlstore.Driver.
func (d *driver) InTx(ctx context.Context, fn func(tx sqlstore.Queryer) error) (err error) {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(queryer{tx}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// LockTx takes a transaction-scoped advisory lock on key within the current
// schema, so stores in different schemas do not contend.
func (d *driver) LockTx(ctx context.Context, tx sqlstore.Queryer, key string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/dotdo/' || CAST(? AS TEXT), 0))`, key)
	return err
}

// Dialect implements sqlstore.Driver.
func (d *driver) Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{Name: "postgres", ForUpdate: " FOR UPDATE", NotifyChannel: d.channel}
}

// Close implements sqlstore.Driver.
func (d *driver) Close() error {
	d.pool.Close()
	return nil
}

// conn is what *pgxpool.Pool and pgx.Tx have in common.
type conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// queryer adapts pgx to sqlstore.Queryer, rewriting '?' placeholders.
type queryer struct{ c conn }

// Exec implements sqlstore.Queryer.
func (q queryer) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if len(args) > 0 {
		query = sqlstore.Rebind(query)
	}
	tag, err := q.c.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// Query implements sqlstore.Queryer.
func (q queryer) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.c.Query(ctx, sqlstore.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

// QueryRow implements sqlstore.Queryer.
func (q queryer) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return row{q.c.QueryRow(ctx, sqlstore.Rebind(query), args...)}
}

type pgRows struct{ pgx.Rows }

// Close implements sqlstore.Rows.
func (r pgRows) Close() error {
	r.Rows.Close()
	return nil
}

type row struct{ r pgx.Row }

// Scan implements sqlstore.Row, translating the driver's "no rows" error.
func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}
