// Package pgtest opens throw-away PostgreSQL stores for tests and
// benchmarks. Each store lives in a fresh schema with a random name, dropped
// when the test ends, so parallel runs and reruns never collide.
//
// The server is named by $DOTDO_TEST_DATABASE_URL (default DefaultDSN).
// When it is unreachable the test is skipped, not failed.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
	"github.com/dot-do/platform/services/db/store/postgres"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// EnvDSN is the environment variable naming the test server.
const EnvDSN = "DOTDO_TEST_DATABASE_URL"

// DefaultDSN is used when EnvDSN is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns the DSN of the test server.
func DSN() string {
	if v := os.Getenv(EnvDSN); v != "" {
		return v
	}
	return DefaultDSN
}

var (
	reachOnce sync.Once
	reachErr  error
)

// reachable checks the server once per process.
func reachable(dsn string) error {
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			reachErr = err
			return
		}
		reachErr = c.Ping(ctx)
		c.Close(ctx)
	})
	return reachErr
}

// redact hides the password of a URL DSN for messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "$" + EnvDSN
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && strings.HasPrefix(u.Scheme, "postgres") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// Harness is a PostgreSQL store in its own schema plus a raw connection
// pool on that schema.
type Harness struct {
	*postgres.DB
	dsn string
	raw *pgxpool.Pool
}

var _ storetest.Harness = (*Harness)(nil)

// Require skips tb, with a message naming the server, when the test server
// is unreachable. The check runs once per process.
func Require(tb testing.TB) {
	tb.Helper()
	dsn := DSN()
	if err := reachable(dsn); err != nil {
		what := "conformance suite"
		if _, ok := tb.(*testing.B); ok {
			what = "benchmarks"
		}
		tb.Skipf("PostgreSQL not reachable at %s (%v): skipping the PostgreSQL half of the %s", redact(dsn), err, what)
	}
}

// Open creates a schema with a random name, opens a store in it and returns
// it; the store is closed and the schema dropped when tb ends. It skips tb
// when the server is unreachable (see Require).
func Open(tb testing.TB, opts ...store.Option) *Harness {
	tb.Helper()
	Require(tb)
	dsn := DSN()
	ctx := context.Background()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "dotdo_test_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	h := &Harness{dsn: WithSearchPath(dsn, schema)}
	cfg, err := pgxpool.ParseConfig(h.dsn)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = 2
	if h.raw, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.raw.Close)
	h.DB = open(tb, h.dsn, opts...)
	return h
}

func open(tb testing.TB, dsn string, opts ...store.Option) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), dsn, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// ExecSQL implements storetest.Harness.
func (h *Harness) ExecSQL(ctx context.Context, query string, args ...any) (int64, error) {
	if len(args) > 0 {
		query = sqlstore.Rebind(query)
	}
	tag, err := h.raw.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// QueryInt64 implements storetest.Harness.
func (h *Harness) QueryInt64(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := h.raw.QueryRow(ctx, sqlstore.Rebind(query), args...).Scan(&n)
	return n, err
}

// Reopen implements storetest.Harness.
func (h *Harness) Reopen(tb testing.TB, opts ...store.Option) store.Store {
	tb.Helper()
	return open(tb, h.dsn, opts...)
}

// DSN returns the DSN of the harness's schema (it may contain credentials).
func (h *Harness) DSN() string { return h.dsn }

// String describes the harness without credentials.
func (h *Harness) String() string { return fmt.Sprintf("pgtest.Harness(%s)", redact(h.dsn)) }
