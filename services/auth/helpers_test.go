package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStore wraps a Store, counting calls and optionally failing them,
// and records the audit events appended to it.
type countingStore struct {
	Store
	gets, touches, lists atomic.Int64
	getErr, touchErr     atomic.Pointer[error]
	sink                 *recordingSink
}

func (c *countingStore) GetAPIKey(ctx context.Context, id string) (store.APIKey, error) {
	c.gets.Add(1)
	if e := c.getErr.Load(); e != nil {
		return store.APIKey{}, *e
	}
	return c.Store.GetAPIKey(ctx, id)
}

func (c *countingStore) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	c.touches.Add(1)
	if e := c.touchErr.Load(); e != nil {
		return *e
	}
	return c.Store.TouchAPIKey(ctx, id, at)
}

func (c *countingStore) ListAPIKeys(ctx context.Context, includeRevoked bool) ([]store.APIKey, error) {
	c.lists.Add(1)
	return c.Store.ListAPIKeys(ctx, includeRevoked)
}

func (c *countingStore) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if err := c.sink.record(e); err != nil {
		return store.AuditEvent{}, err
	}
	return c.Store.AppendAudit(ctx, e)
}

// recordingSink collects the audit events the Service appends, as Events.
type recordingSink struct {
	mu     sync.Mutex
	events []Event
	err    error
}

// record keeps e, read back into the Event the Service made of it.
func (s *recordingSink) record(e store.AuditEvent) error {
	ev := Event{Time: e.Time, Action: e.Action, Outcome: e.Outcome, KeyID: strings.TrimPrefix(e.Resource, "api_key/"),
		Client: e.Detail["client"], Reason: e.Detail["reason"]}
	if e.Actor != ev.KeyID && e.Actor != "anonymous" {
		ev.Actor = e.Actor
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ev)
	return s.err
}

func (s *recordingSink) all() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

func (s *recordingSink) reset() {
	s.mu.Lock()
	s.events = nil
	s.mu.Unlock()
}

func (s *recordingSink) with(action, outcome string) []Event {
	var out []Event
	for _, e := range s.all() {
		if e.Action == action && e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

// harness bundles a Service with its fakes.
type harness struct {
	t     *testing.T
	svc   *Service
	store *countingStore
	// shared is the store under the counting wrapper: what another
	// replica reads and writes, uncounted.
	shared Store
	sink   *recordingSink
	clock  *fakeClock
	admin  authz.Principal
	// adminToken is the bootstrap admin's token.
	adminToken string
	// secrets collects every token and secret minted, to check for leaks.
	secrets []string
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	h := &harness{t: t, sink: &recordingSink{}, clock: newFakeClock()}
	h.shared = sqlitetest.Open(t, store.WithClock(h.clock.Now))
	h.store = &countingStore{Store: h.shared, sink: h.sink}
	all := append([]Option{WithClock(h.clock.Now), WithLogger(testsupport.QuietLogger())}, opts...)
	h.svc = New(h.store, all...)
	key, _, err := h.svc.Bootstrap(context.Background(), "root")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	h.remember(key)
	h.adminToken = key.Token
	h.admin = h.mustAuth(key.Token)
	return h
}

func (h *harness) remember(k apikey.Key) {
	h.secrets = append(h.secrets, k.Token, k.Secret)
}

func (h *harness) mustAuth(token string) authz.Principal {
	h.t.Helper()
	p, err := h.svc.Authenticate(context.Background(), token, "test-client")
	if err != nil {
		h.t.Fatalf("Authenticate: %v", err)
	}
	return p
}

// create mints a key as the bootstrap admin.
func (h *harness) create(name string, role store.Role, envs []string, ttl time.Duration) (apikey.Key, store.APIKey) {
	h.t.Helper()
	k, rec, err := h.svc.CreateKey(context.Background(), h.admin, name, role, envs, ttl)
	if err != nil {
		h.t.Fatalf("CreateKey(%s, %s, %v): %v", name, role, envs, err)
	}
	h.remember(k)
	return k, rec
}

// assertNoLeak fails if any minted token or secret appears in s.
func (h *harness) assertNoLeak(what, s string) {
	h.t.Helper()
	for _, sec := range h.secrets {
		if sec != "" && strings.Contains(s, sec) {
			h.t.Fatalf("%s leaks a secret: %q", what, s)
		}
	}
}

func wantUnauthenticated(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnauthenticated) || err.Error() != "invalid or missing API key" {
		t.Fatalf("err = %v, want exactly ErrUnauthenticated", err)
	}
}
