// Package storetest is the conformance suite of store.Store: every backend
// runs the same tests through Run.
//
// Most tests only use the Store API. The ones that must reach around it
// (corrupting rows with raw SQL, opening a second handle on the same
// database as another process would, injecting a clock) need the store
// returned by open to implement Harness as well; they are skipped
// otherwise. Both in-tree backends provide a Harness (sqlite/sqlitetest,
// postgres/pgtest).
package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/services/db/store"
)

// Harness is a store under test plus raw access to the database behind it.
type Harness interface {
	store.Store
	// ExecSQL runs a statement directly on the database, bypassing the
	// store, and returns the number of affected rows. Placeholders are '?'.
	ExecSQL(ctx context.Context, query string, args ...any) (int64, error)
	// QueryInt64 runs a query returning a single integer, bypassing the
	// store. Placeholders are '?'.
	QueryInt64(ctx context.Context, query string, args ...any) (int64, error)
	// Reopen opens another, independent store on the same database, as a
	// second process would, with opts. It is closed when tb ends.
	Reopen(tb testing.TB, opts ...store.Option) store.Store
}

// Run runs the conformance suite against the stores returned by open. Each
// call of open must return a new, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, func(*testing.T) store.Store)
	}{
		{"Migrations", testMigrations},
		{"Versions", testVersions},
		{"DeploymentValidation", testDeploymentValidation},
		{"ConcurrentVersions", testConcurrentVersions},
		{"Transitions", testTransitions},
		{"Supersede", testSupersede},
		{"ConcurrentGoLive", testConcurrentGoLive},
		{"OneLiveConstraint", testOneLiveConstraint},
		{"Idempotency", testIdempotency},
		{"ConcurrentIdempotency", testConcurrentIdempotency},
		{"Rollback", testRollback},
		{"Pagination", testPagination},
		{"ListPending", testListPending},
		{"Leases", testLeases},
		{"LeaseContention", testLeaseContention},
		{"Blobs", testBlobs},
		{"AuditChain", testAuditChain},
		{"AuditList", testAuditList},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditTamper", testAuditTamper},
		{"AuditKeyed", testAuditKeyed},
		{"AuditRekey", testAuditRekey},
		{"AuditCheckpoint", testAuditCheckpoint},
		{"APIKeysAudited", testAPIKeysAudited},
		{"CompleteFence", testCompleteFence},
		{"APIKeys", testAPIKeys},
		{"APIKeyContract", testAPIKeyContract},
		{"APIKeyRotation", testAPIKeyRotation},
		{"Bootstrap", testBootstrap},
		{"ConcurrentBootstrap", testConcurrentBootstrap},
		{"RouteTables", testRouteTables},
		{"ConcurrentRouteTables", testConcurrentRouteTables},
		{"DispatchWorkers", testDispatchWorkers},
		{"Changes", testChanges},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// Clock is a manually advanced clock for store.WithClock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the current time of the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness returns s as a Harness or skips the test.
func harness(t *testing.T, s store.Store) Harness {
	t.Helper()
	h, ok := s.(Harness)
	if !ok {
		t.Skipf("store %T does not implement storetest.Harness: skipping a test that needs raw database access", s)
	}
	return h
}

// epoch is the start of the injected clocks.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func wantErrContaining(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(substr)) {
		t.Fatalf("got error %v, want an error mentioning %q", err, substr)
	}
}

// parallel runs fn(i) for i in [0, n) concurrently and waits.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testMigrations(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	n := must[int64](t)(h.QueryInt64(ctx, `SELECT COUNT(*) FROM schema_migrations`))
	if n < 1 {
		t.Fatalf("schema_migrations has %d rows", n)
	}
	// Several processes starting at once apply nothing twice.
	parallel(3, func(int) { h.Reopen(t) })
	if m := must[int64](t)(h.QueryInt64(ctx, `SELECT COUNT(*) FROM schema_migrations`)); m != n {
		t.Fatalf("schema_migrations went from %d to %d rows on reopen", n, m)
	}
}
