// Package db holds the benchmarks of the persistence store
// (services/db/store) on SQLite and PostgreSQL:
//
//	go test ./bench/db -run '^$' -bench . -benchtime 2000x
//
// The PostgreSQL half uses $DOTDO_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), in a throw-away
// schema, and is skipped when the server is unreachable.
package db
