// Package sqlite is the SQLite implementation of store.Store, on the pure-Go
// modernc.org/sqlite driver.
//
// The database is one file in WAL mode. Writes go through a single
// connection whose transactions begin with BEGIN IMMEDIATE, so writers in
// this process queue in Go and writers in other processes wait on the
// database lock (busy_timeout) instead of failing with SQLITE_BUSY; reads
// use a separate pool of read-only connections and never block on writers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// BusyTimeout is how long a writer waits for another process's write
// transaction before failing with SQLITE_BUSY.
const BusyTimeout = 30 * time.Second

// DB is a store.Store backed by a SQLite file.
type DB struct {
	*sqlstore.Engine
	path string
}

var _ store.Store = (*DB)(nil)

// Open opens (creating it and its directory if needed) the SQLite database
// at path, a plain file path such as ".dotdo/dotdo.db", and applies the
// pending migrations.
func Open(ctx context.Context, path string, opts ...store.Option) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: %q is not a plain file path: %w", path, errkind.Invalid)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
		}
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	o := store.BuildOptions(opts...)
	busy := fmt.Sprint(BusyTimeout.Milliseconds())
	writer, err := sql.Open("sqlite", path+"?_txlock=immediate&_busy_timeout="+busy+
		"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	reader, err := sql.Open("sqlite", path+"?_busy_timeout="+busy+"&_foreign_keys=1&_query_only=1")
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	d := &driver{writer: writer, reader: reader}
	ms, err := sqlstore.LoadMigrations(migrationFS, "migrations")
	if err == nil {
		err = sqlstore.Migrate(ctx, d, ms, o.Now)
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	return &DB{Engine: sqlstore.New(d, o), path: path}, nil
}

// privateFiles creates the database file with mode 0600 before SQLite
// opens it, so that SQLite, which gives its WAL and shared-memory files the
// mode of the database file, creates those 0600 too; and it takes group
// and other permissions off the files an earlier version created 0644.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("sqlite: make %s private: %w", p, err)
			}
		}
	}
	return nil
}

// Path returns the file path of the database.
func (db *DB) Path() string { return db.path }

// driver implements sqlstore.Driver with database/sql.
type driver struct {
	writer *sql.DB // one connection, BEGIN IMMEDIATE
	reader *sql.DB // read-only connections
}

// Reader implements sqlstore.Driver.
func (d *driver) Reader() sqlstore.Queryer { return queryer{d.reader} }

// InTx implements sqlstore.Driver.
func (d *driver) InTx(ctx context.Context, fn func(tx sqlstore.Queryer) error) (err error) {
	tx, err := d.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(queryer{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// LockTx is a no-op: a BEGIN IMMEDIATE transaction already excludes every
// other writer, in this process and in others.
func (d *driver) LockTx(context.Context, sqlstore.Queryer, string) error { return nil }

// Dialect implements sqlstore.Driver.
func (d *driver) Dialect() sqlstore.Dialect { return sqlstore.Dialect{Name: "sqlite"} }

// Close implements sqlstore.Driver.
func (d *driver) Close() error {
	return errors.Join(d.reader.Close(), d.writer.Close())
}

// conn is what *sql.DB and *sql.Tx have in common.
type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type queryer struct{ c conn }

// Exec implements sqlstore.Queryer.
func (q queryer) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.c.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query implements sqlstore.Queryer.
func (q queryer) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.c.QueryContext(ctx, query, args...)
}

// QueryRow implements sqlstore.Queryer.
func (q queryer) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return row{q.c.QueryRowContext(ctx, query, args...)}
}

type row struct{ r *sql.Row }

// Scan implements sqlstore.Row, translating the driver's "no rows" error.
func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}
