// Package sqlitetest opens throw-away SQLite stores for tests and
// benchmarks, with the raw database access storetest.Harness needs.
package sqlitetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// Harness is a SQLite store in a temporary directory plus a separate raw
// connection to its file.
type Harness struct {
	*sqlite.DB
	raw *sql.DB
}

var _ storetest.Harness = (*Harness)(nil)

// Open creates a store in a new file under tb.TempDir(); it is closed when
// tb ends.
func Open(tb testing.TB, opts ...store.Option) *Harness {
	tb.Helper()
	db := open(tb, filepath.Join(tb.TempDir(), "dotdo.db"), opts...)
	raw, err := sql.Open("sqlite", db.Path()+"?_busy_timeout=30000")
	if err != nil {
		tb.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	tb.Cleanup(func() { raw.Close() })
	return &Harness{DB: db, raw: raw}
}

func open(tb testing.TB, path string, opts ...store.Option) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// ExecSQL implements storetest.Harness.
func (h *Harness) ExecSQL(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := h.raw.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// QueryInt64 implements storetest.Harness.
func (h *Harness) QueryInt64(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := h.raw.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// Reopen implements storetest.Harness.
func (h *Harness) Reopen(tb testing.TB, opts ...store.Option) store.Store {
	tb.Helper()
	return open(tb, h.Path(), opts...)
}
