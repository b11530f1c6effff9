// Package store defines the persistence contract of the dotdo platform: the
// Store interface, its domain types and its sentinel errors.
//
// Two implementations exist, sharing one engine and differing only in what
// the SQL dialect forces:
//
//   - store/sqlite: a single SQLite file (modernc.org/sqlite, pure Go).
//   - store/postgres: a PostgreSQL database through a pgx v5 pool.
//
// Both are checked by the same conformance suite in store/storetest.
//
// Every error returned by a Store that the caller can act on wraps exactly
// one of the sentinel errors below (ErrNotFound, ErrAlreadyExists,
// ErrFailedPrecondition, ErrLeaseHeld, ErrCorrupt, ErrInvalidArgument), so an
// RPC layer can map them to status codes in one place with errors.Is. Any
// other error is an infrastructure failure (database unreachable, context
// cancelled, ...). Error messages never contain secret material.
package store
