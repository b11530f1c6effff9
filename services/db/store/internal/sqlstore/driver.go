// Package sqlstore is the engine shared by the SQLite and PostgreSQL
// backends: every query, transition rule and integrity check lives here
// once. A backend supplies a Driver (connections, transactions, locking and
// the few dialect differences) and its migrations.
//
// Queries are written with '?' placeholders; the PostgreSQL driver rewrites
// them with Rebind. Times are stored as BIGINT Unix microseconds (UTC),
// structured fields (tags, metadata, detail, environments) as JSON text.
package sqlstore

import (
	"context"
	"errors"
)

// ErrNoRows is returned by Row.Scan when the query matched no row. Drivers
// translate their own "no rows" errors into it.
var ErrNoRows = errors.New("sqlstore: no rows")

// Queryer runs statements on a connection pool or inside a transaction.
type Queryer interface {
	// Exec runs a statement and returns the number of affected rows.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query returning rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query returning at most one row.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows iterates over a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Row is a single-row result; Scan returns ErrNoRows when there is none.
type Row interface {
	Scan(dest ...any) error
}

// Dialect holds the SQL fragments that differ between backends.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// ForUpdate is appended to SELECTs that must lock the selected rows for
	// the rest of the transaction (" FOR UPDATE" on PostgreSQL, "" on
	// SQLite, whose write transactions are exclusive anyway).
	ForUpdate string
	// NotifyChannel is the LISTEN/NOTIFY channel that announces committed
	// changes to every process sharing the database (PostgreSQL), or ""
	// when the backend has none and changes are announced in process
	// (SQLite).
	NotifyChannel string
}

// Driver is what a backend provides to the engine.
type Driver interface {
	// Reader returns the Queryer used for reads outside transactions.
	Reader() Queryer
	// InTx runs fn in a write transaction and commits it when fn returns
	// nil, rolling back otherwise. Write transactions must see the latest
	// committed data when their statements run (READ COMMITTED on
	// PostgreSQL, BEGIN IMMEDIATE on SQLite).
	InTx(ctx context.Context, fn func(tx Queryer) error) error
	// LockTx takes an exclusive lock called key that is held until tx ends
	// (an advisory transaction lock on PostgreSQL; nothing on SQLite, where
	// a write transaction already excludes every other writer).
	LockTx(ctx context.Context, tx Queryer, key string) error
	// Dialect returns the SQL fragments of this backend.
	Dialect() Dialect
	// Close closes the connections.
	Close() error
}
