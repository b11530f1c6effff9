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
// Every error returned by a Store that the caller can act on has a kind of
// package errkind (NotFound, Exists, Precondition, Conflict for a lease held
// by another holder, Corrupt, Invalid), so the RPC edge maps it to a status
// code in one place and callers test it with errors.Is(err, errkind.X),
// in process or through the remote client alike. Any other error is an
// infrastructure failure (database unreachable, context cancelled, ...).
// Error messages never contain secret material.
package store
