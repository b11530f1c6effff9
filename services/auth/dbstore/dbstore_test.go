package dbstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/auth/dbstore"
	"github.com/dot-do/platform/services/auth/storetest"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/sqlite"
)

// TestKeysOnSQLite runs the auth KeyStore contract against the adapter over
// the real SQLite store.
func TestKeysOnSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.KeyStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dotdo.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return dbstore.NewKeys(s)
	})
}

// TestKeysOnPostgres runs the same contract over PostgreSQL; it skips, saying
// so, when PostgreSQL is not reachable.
func TestKeysOnPostgres(t *testing.T) {
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T) auth.KeyStore {
		return dbstore.NewKeys(pgtest.Open(t))
	})
}
