package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

var ctx = context.Background()

func TestAuthenticateFailuresAreIndistinguishable(t *testing.T) {
	h := newHarness(t, WithThrottle(ThrottleConfig{MaxFailures: 0}))
	valid, _ := h.create("valid", store.RoleDeployer, nil, 0)
	expired, _ := h.create("expired", store.RoleDeployer, nil, time.Minute)
	revoked, revokedRec := h.create("revoked", store.RoleDeployer, nil, 0)
	if _, err := h.svc.RevokeKey(ctx, h.admin, revokedRec.KeyID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	unknown := apikey.Generate()
	wrongSecret, _ := apikey.FromParts(valid.ID, unknown.Secret)
	badSum := []byte(valid.Token)
	badSum[len(badSum)-1] ^= 1

	cases := map[string]string{
		"missing":       "",
		"malformed":     "not-a-key",
		"wrong prefix":  "ghp_" + valid.Token[4:],
		"bad checksum":  string(badSum),
		"bearer prefix": "Bearer " + valid.Token,
		"unknown":       unknown.Token,
		"wrong secret":  wrongSecret.Token,
		"expired":       expired.Token,
		"revoked":       revoked.Token,
	}
	h.secrets = append(h.secrets, unknown.Token, unknown.Secret, wrongSecret.Token)
	h.sink.reset()
	for name, tok := range cases {
		p, err := h.svc.Authenticate(ctx, tok, "203.0.113.7")
		wantUnauthenticated(t, err)
		if p.KeyID != "" {
			t.Errorf("%s: principal returned on failure", name)
		}
		_, err = h.svc.Authorize(ctx, tok, authz.PermDeploymentsRead, "", "203.0.113.7")
		wantUnauthenticated(t, err)
	}
	// The audit log, and only the audit log, tells the reasons apart.
	reasons := map[string]bool{}
	for _, ev := range h.sink.with(ActionAuthenticate, OutcomeDenied) {
		reasons[strings.Fields(ev.Reason)[0]] = true
		if ev.Client != "203.0.113.7" {
			t.Errorf("event client = %q", ev.Client)
		}
	}
	for _, want := range []string{"missing", "malformed", "unknown", "secret", "expired", "revoked"} {
		if !reasons[want] {
			t.Errorf("no audit reason starting with %q in %v", want, reasons)
		}
	}
	if _, err := h.svc.Authenticate(ctx, valid.Token, "x"); err != nil {
		t.Fatalf("valid key rejected: %v", err)
	}
}

func TestMalformedTokensNeverReachTheStore(t *testing.T) {
	h := newHarness(t)
	valid, _ := h.create("valid", store.RoleViewer, nil, 0)
	before := h.store.gets.Load()
	bad := []byte(valid.Token)
	bad[30] ^= 1 // checksum no longer matches
	for i, tok := range []string{"", "x", valid.Token[:67], valid.Token + "x", string(bad), strings.ToUpper(valid.Token), "dotdo_" + strings.Repeat("a", 62)} {
		_, err := h.svc.Authenticate(ctx, tok, fmt.Sprintf("client-%d", i))
		wantUnauthenticated(t, err)
	}
	if got := h.store.gets.Load() - before; got != 0 {
		t.Fatalf("malformed tokens caused %d store lookups", got)
	}
}

func TestThrottleBlocksAndRecovers(t *testing.T) {
	h := newHarness(t, WithThrottle(ThrottleConfig{MaxFailures: 3, Window: time.Minute, Cooldown: 2 * time.Minute}))
	valid, _ := h.create("valid", store.RoleDeployer, nil, 0)
	attacker, bystander := "198.51.100.1", "198.51.100.2"
	guess := apikey.Generate().Token

	// A success does not reset the failure history.
	for i := range 3 {
		if i == 1 {
			if _, err := h.svc.Authenticate(ctx, valid.Token, attacker); err != nil {
				t.Fatal(err)
			}
		}
		_, err := h.svc.Authenticate(ctx, guess, attacker)
		wantUnauthenticated(t, err)
		h.clock.Advance(time.Second)
	}
	gets := h.store.gets.Load()
	for _, tok := range []string{guess, valid.Token, "garbage"} {
		_, err := h.svc.Authorize(ctx, tok, authz.PermDeploymentsRead, "", attacker)
		var te *ThrottleError
		if !errors.Is(err, ErrThrottled) || !errors.As(err, &te) {
			t.Fatalf("blocked client got %v, want ErrThrottled", err)
		}
		if te.RetryAfter != 2*time.Minute-time.Second {
			t.Fatalf("RetryAfter = %v, want 1m59s", te.RetryAfter)
		}
	}
	if h.store.gets.Load() != gets {
		t.Fatal("throttled attempts reached the store")
	}
	if n := len(h.sink.with(ActionAuthenticate, OutcomeThrottled)); n != 1 {
		t.Fatalf("%d throttled audit events, want 1", n)
	}
	// Other clients are unaffected.
	if _, err := h.svc.Authenticate(ctx, valid.Token, bystander); err != nil {
		t.Fatalf("bystander: %v", err)
	}
	// Still blocked just before the cool-down ends, free after it.
	h.clock.Advance(2*time.Minute - time.Second - time.Millisecond)
	if _, err := h.svc.Authenticate(ctx, valid.Token, attacker); !errors.Is(err, ErrThrottled) {
		t.Fatalf("before cool-down end: %v", err)
	}
	h.clock.Advance(time.Millisecond)
	if _, err := h.svc.Authenticate(ctx, valid.Token, attacker); err != nil {
		t.Fatalf("after cool-down: %v", err)
	}
	// Failures spread wider than the window never block.
	for range 10 {
		_, err := h.svc.Authenticate(ctx, guess, attacker)
		wantUnauthenticated(t, err)
		h.clock.Advance(31 * time.Second)
	}
	// A burst does again.
	for range 3 {
		_, _ = h.svc.Authenticate(ctx, guess, attacker)
	}
	if _, err := h.svc.Authenticate(ctx, valid.Token, attacker); !errors.Is(err, ErrThrottled) {
		t.Fatalf("second burst: %v", err)
	}
}

func TestThrottleMemoryIsBounded(t *testing.T) {
	h := newHarness(t, WithThrottle(ThrottleConfig{MaxFailures: 2, MaxClients: 50}))
	for i := range 1000 {
		_, _ = h.svc.Authenticate(ctx, "bad", fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := h.svc.limiter.tracked(); n != 50 {
		t.Fatalf("tracking %d clients, want 50", n)
	}
}

func TestStoreErrorsAreNotAuthFailures(t *testing.T) {
	h := newHarness(t, WithThrottle(ThrottleConfig{MaxFailures: 1}), WithCacheTTL(0))
	valid, _ := h.create("valid", store.RoleViewer, nil, 0)
	boom := errors.New("db unavailable")
	h.store.getErr.Store(&boom)
	for range 3 {
		_, err := h.svc.Authenticate(ctx, valid.Token, "c")
		if !errors.Is(err, boom) || errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("store failure surfaced as %v", err)
		}
		h.assertNoLeak("store error", err.Error())
	}
	h.store.getErr.Store(nil)
	if _, err := h.svc.Authenticate(ctx, valid.Token, "c"); err != nil {
		t.Fatalf("store errors counted against the throttle: %v", err)
	}
}

func TestCacheHitAvoidsStore(t *testing.T) {
	h := newHarness(t) // DefaultCacheTTL
	k, _ := h.create("ci", store.RoleDeployer, []string{"staging"}, 0)
	before := h.store.gets.Load()
	for range 100 {
		if _, err := h.svc.Authorize(ctx, k.Token, authz.PermDeploymentsCreate, "staging", "c"); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.store.gets.Load() - before; got != 1 {
		t.Fatalf("%d store lookups for 100 calls, want 1", got)
	}
	h.clock.Advance(DefaultCacheTTL)
	h.mustAuth(k.Token)
	if got := h.store.gets.Load() - before; got != 2 {
		t.Fatalf("%d store lookups after TTL, want 2", got)
	}
	// Cached principals are copies.
	p := h.mustAuth(k.Token)
	p.Environments[0] = "production"
	if _, err := h.svc.Authorize(ctx, k.Token, authz.PermDeploymentsCreate, "production", "c"); !errors.Is(err, errkind.Permission) {
		t.Fatal("mutating a returned authz.Principal changed the cached one")
	}
}

func TestCacheDisabled(t *testing.T) {
	h := newHarness(t, WithCacheTTL(0))
	k, _ := h.create("ci", store.RoleViewer, nil, 0)
	before := h.store.gets.Load()
	for range 5 {
		h.mustAuth(k.Token)
	}
	if got := h.store.gets.Load() - before; got != 5 {
		t.Fatalf("%d lookups, want 5", got)
	}
}

func TestCacheIsBounded(t *testing.T) {
	h := newHarness(t, WithCacheSize(4))
	var keys []apikey.Key
	for i := range 10 {
		k, _ := h.create(fmt.Sprint("k", i), store.RoleViewer, nil, 0)
		keys = append(keys, k)
		h.mustAuth(k.Token)
	}
	if n := h.svc.cache.len(); n != 4 {
		t.Fatalf("cache holds %d entries, want 4", n)
	}
	if n := len(h.svc.cache.byKey); n != 4 {
		t.Fatalf("cache index holds %d entries, want 4", n)
	}
	before := h.store.gets.Load()
	h.mustAuth(keys[9].Token) // most recent: hit
	h.mustAuth(keys[0].Token) // evicted: miss
	if got := h.store.gets.Load() - before; got != 1 {
		t.Fatalf("%d lookups, want 1", got)
	}
}

func TestCacheNeverOutlivesKeyExpiry(t *testing.T) {
	h := newHarness(t, WithCacheTTL(time.Hour))
	k, _ := h.create("short", store.RoleViewer, nil, 3*time.Second)
	h.mustAuth(k.Token)
	h.clock.Advance(3 * time.Second)
	_, err := h.svc.Authenticate(ctx, k.Token, "c")
	wantUnauthenticated(t, err)
}

func TestRevocationThroughServiceIsImmediate(t *testing.T) {
	h := newHarness(t, WithCacheTTL(time.Hour))
	k, rec := h.create("ci", store.RoleDeployer, nil, 0)
	h.mustAuth(k.Token) // now cached
	got, err := h.svc.RevokeKey(ctx, h.admin, rec.KeyID)
	if err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("RevokeKey = %+v, %v", got, err)
	}
	_, err = h.svc.Authorize(ctx, k.Token, authz.PermDeploymentsRead, "", "c")
	wantUnauthenticated(t, err)
	// Idempotent, keeps the first time.
	h.clock.Advance(time.Minute)
	again, err := h.svc.RevokeKey(ctx, h.admin, rec.KeyID)
	if err != nil || !again.RevokedAt.Equal(got.RevokedAt) {
		t.Fatalf("second RevokeKey = %+v, %v", again, err)
	}
	if n := len(h.sink.with(ActionKeyRevoke, OutcomeSuccess)); n != 1 {
		t.Fatalf("%d revoke audit events, want 1", n)
	}
}

func TestRevocationElsewhereWithinTTL(t *testing.T) {
	h := newHarness(t, WithCacheTTL(10*time.Second))
	k, rec := h.create("ci", store.RoleDeployer, nil, 0)
	h.mustAuth(k.Token)
	// Another replica revokes the key directly in the shared store.
	if _, err := h.shared.RevokeAPIKey(ctx, rec.KeyID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10*time.Second - time.Nanosecond)
	h.mustAuth(k.Token) // stale but within the documented bound
	h.clock.Advance(time.Nanosecond)
	_, err := h.svc.Authenticate(ctx, k.Token, "c")
	wantUnauthenticated(t, err)

	// Invalidate applies an external change at once.
	k2, rec2 := h.create("ci2", store.RoleDeployer, nil, 0)
	h.mustAuth(k2.Token)
	if _, err := h.shared.RevokeAPIKey(ctx, rec2.KeyID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.svc.Invalidate(rec2.KeyID)
	_, err = h.svc.Authenticate(ctx, k2.Token, "c")
	wantUnauthenticated(t, err)
}

func TestRotationGrace(t *testing.T) {
	h := newHarness(t, WithCacheTTL(time.Hour))
	old, oldRec := h.create("ci", store.RoleDeployer, []string{"staging"}, 30*24*time.Hour)
	h.mustAuth(old.Token) // cached
	h.clock.Advance(time.Hour)
	rotatedAt := h.clock.Now()
	nk, newRec, prev, err := h.svc.RotateKey(ctx, h.admin, oldRec.KeyID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.remember(nk)
	if newRec.Name != "ci" || newRec.Role != store.RoleDeployer || len(newRec.Environments) != 1 || newRec.Environments[0] != "staging" ||
		newRec.CreatedBy != h.admin.KeyID || newRec.SecretHash != nil || !newRec.ExpiresAt.Equal(rotatedAt.Add(30*24*time.Hour)) {
		t.Fatalf("new record = %+v", newRec)
	}
	oldNow, _ := h.shared.GetAPIKey(ctx, oldRec.KeyID)
	if oldNow.ReplacedBy != newRec.KeyID || !oldNow.ExpiresAt.Equal(rotatedAt.Add(time.Hour)) {
		t.Fatalf("old record = %+v", oldNow)
	}
	// The previous record returned is the old key as stored, without hash.
	oldNow.SecretHash = nil
	if !reflect.DeepEqual(prev, oldNow) {
		t.Fatalf("previous = %+v, stored = %+v", prev, oldNow)
	}
	// Both work during the grace period.
	h.clock.Advance(time.Hour - time.Second)
	for _, tok := range []string{old.Token, nk.Token} {
		if _, err := h.svc.Authorize(ctx, tok, authz.PermDeploymentsCreate, "staging", "c"); err != nil {
			t.Fatalf("during grace: %v", err)
		}
	}
	// The old one stops exactly when the grace period ends, despite the cache.
	h.clock.Advance(time.Second)
	_, err = h.svc.Authorize(ctx, old.Token, authz.PermDeploymentsCreate, "staging", "c")
	wantUnauthenticated(t, err)
	if _, err := h.svc.Authorize(ctx, nk.Token, authz.PermDeploymentsCreate, "staging", "c"); err != nil {
		t.Fatalf("new key after grace: %v", err)
	}
	// A rotated key can not be rotated again.
	if _, _, _, err := h.svc.RotateKey(ctx, h.admin, oldRec.KeyID, 0); !errors.Is(err, errkind.Precondition) {
		t.Fatalf("second rotation = %v, want errkind.Precondition", err)
	}
	if _, _, _, err := h.svc.RotateKey(ctx, h.admin, newRec.KeyID, -time.Second); !errors.Is(err, errkind.Invalid) {
		t.Fatalf("negative grace = %v", err)
	}
}

func TestRotationDefaults(t *testing.T) {
	h := newHarness(t)
	_, rec := h.create("forever", store.RoleViewer, nil, 0)
	nk, newRec, _, err := h.svc.RotateKey(ctx, h.admin, rec.KeyID, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.remember(nk)
	old, _ := h.shared.GetAPIKey(ctx, rec.KeyID)
	if !old.ExpiresAt.Equal(h.clock.Now().Add(DefaultRotationGrace)) || !newRec.ExpiresAt.IsZero() {
		t.Fatalf("old expires %v, new expires %v", old.ExpiresAt, newRec.ExpiresAt)
	}
	// An earlier existing expiry is kept; a configured default applies.
	h2 := newHarness(t, WithRotationGrace(time.Hour))
	_, short := h2.create("short", store.RoleViewer, nil, time.Minute)
	if _, _, _, err := h2.svc.RotateKey(ctx, h2.admin, short.KeyID, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := h2.shared.GetAPIKey(ctx, short.KeyID)
	if !got.ExpiresAt.Equal(short.ExpiresAt) {
		t.Fatalf("rotation extended expiry from %v to %v", short.ExpiresAt, got.ExpiresAt)
	}
	_, long := h2.create("long", store.RoleViewer, nil, 0)
	if _, _, _, err := h2.svc.RotateKey(ctx, h2.admin, long.KeyID, 0); err != nil {
		t.Fatal(err)
	}
	got, _ = h2.shared.GetAPIKey(ctx, long.KeyID)
	if !got.ExpiresAt.Equal(h2.clock.Now().Add(time.Hour)) {
		t.Fatalf("WithRotationGrace ignored: %v", got.ExpiresAt)
	}
	// Revoked and expired keys can not be rotated.
	_, _ = h2.svc.RevokeKey(ctx, h2.admin, long.KeyID)
	h2.clock.Advance(time.Minute)
	for _, id := range []string{long.KeyID, short.KeyID} {
		if _, _, _, err := h2.svc.RotateKey(ctx, h2.admin, id, 0); !errors.Is(err, errkind.Precondition) {
			t.Fatalf("RotateKey(%s) = %v, want errkind.Precondition", id, err)
		}
	}
}

func TestBootstrap(t *testing.T) {
	h := newHarness(t) // bootstraps once
	if h.admin.Role != store.RoleAdmin || len(h.admin.Environments) != 0 || h.admin.Name != "root" {
		t.Fatalf("bootstrap principal = %+v", h.admin)
	}
	_, _, err := h.svc.Bootstrap(ctx, "again")
	if !errors.Is(err, errkind.Exists) {
		t.Fatalf("second Bootstrap = %v, want errkind.Exists", err)
	}
	if n := len(h.sink.with(ActionKeyBootstrap, OutcomeDenied)); n != 1 {
		t.Fatalf("%d refused-bootstrap audit events, want 1", n)
	}
	// Non-admin keys do not block bootstrap, and a restricted admin does.
	h2 := newHarness(t)
	_, _ = h2.svc.RevokeKey(ctx, h2.admin, h2.admin.KeyID)
	k, rec, err := h2.svc.Bootstrap(ctx, "")
	if err != nil || rec.Name != DefaultBootstrapName || rec.CreatedBy != store.BootstrapCreator || rec.SecretHash != nil {
		t.Fatalf("Bootstrap after revoking all admins = %+v, %v", rec, err)
	}
	h2.remember(k)
	if _, err := h2.svc.Authorize(ctx, k.Token, authz.PermKeysManage, "", "c"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h2.svc.Bootstrap(ctx, "\x00bad"); !errors.Is(err, errkind.Invalid) {
		t.Fatalf("bad name = %v", err)
	}
}

func TestBootstrapConcurrent(t *testing.T) {
	svc := New(sqlitetest.Open(t))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if _, _, err := svc.Bootstrap(ctx, ""); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, errkind.Exists) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d bootstraps succeeded", ok)
	}
}

func TestCreateKeyValidation(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("x", MaxNameLen+1)
	cases := []struct {
		name string
		role store.Role
		envs []string
		ttl  time.Duration
	}{
		{"", store.RoleViewer, nil, 0},
		{long, store.RoleViewer, nil, 0},
		{" padded", store.RoleViewer, nil, 0},
		{"tab\tname", store.RoleViewer, nil, 0},
		{"bad\xffutf8", store.RoleViewer, nil, 0},
		{"ok", store.Role("root"), nil, 0},
		{"ok", store.RoleViewer, []string{"Prod"}, 0},
		{"ok", store.RoleViewer, []string{""}, 0},
		{"ok", store.RoleViewer, []string{"-x"}, 0},
		{"ok", store.RoleViewer, []string{strings.Repeat("a", MaxEnvironmentLen+1)}, 0},
		{"ok", store.RoleViewer, nil, -time.Second},
	}
	for _, c := range cases {
		if _, _, err := h.svc.CreateKey(ctx, h.admin, c.name, c.role, c.envs, c.ttl); !errors.Is(err, errkind.Invalid) {
			t.Errorf("CreateKey(%q, %q, %q, %v) = %v, want errkind.Invalid", c.name, c.role, c.envs, c.ttl, err)
		}
	}
	k, rec, err := h.svc.CreateKey(ctx, h.admin, "CI – staging ✓", store.RoleDeployer, []string{"staging", "qa", "staging"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.remember(k)
	if fmt.Sprint(rec.Environments) != "[qa staging]" || rec.SecretHash != nil || !rec.ExpiresAt.Equal(h.clock.Now().Add(time.Hour)) ||
		rec.CreatedBy != h.admin.KeyID || rec.KeyID != k.ID {
		t.Fatalf("record = %+v", rec)
	}
	stored, _ := h.shared.GetAPIKey(ctx, rec.KeyID)
	if !apikey.VerifySecret(k.Secret, stored.SecretHash, nil) {
		t.Fatal("stored hash does not verify")
	}
	for _, id := range []string{"", "short", k.Token} {
		_, err := h.svc.GetKey(ctx, h.admin, id)
		if !errors.Is(err, errkind.Invalid) {
			t.Fatalf("GetKey(malformed id) = %v, want errkind.Invalid", err)
		}
		h.assertNoLeak("GetKey error", err.Error())
	}
	if _, err := h.svc.RevokeKey(ctx, h.admin, apikey.Generate().ID); !errors.Is(err, errkind.NotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want errkind.NotFound", err)
	}
}

func TestSetKeyExpiry(t *testing.T) {
	h := newHarness(t, WithCacheTTL(time.Hour))
	k, rec := h.create("ci", store.RoleViewer, nil, 0)
	h.mustAuth(k.Token)
	got, err := h.svc.SetKeyExpiry(ctx, h.admin, rec.KeyID, h.clock.Now())
	if err != nil || !got.ExpiresAt.Equal(h.clock.Now()) {
		t.Fatalf("SetKeyExpiry = %+v, %v", got, err)
	}
	_, err = h.svc.Authenticate(ctx, k.Token, "c")
	wantUnauthenticated(t, err)
	if _, err := h.svc.SetKeyExpiry(ctx, h.admin, rec.KeyID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.mustAuth(k.Token)
	_, _ = h.svc.RevokeKey(ctx, h.admin, rec.KeyID)
	if _, err := h.svc.SetKeyExpiry(ctx, h.admin, rec.KeyID, time.Time{}); !errors.Is(err, errkind.Precondition) {
		t.Fatalf("SetKeyExpiry(revoked) = %v", err)
	}
}

func TestLastUsedIsThrottled(t *testing.T) {
	h := newHarness(t, WithCacheTTL(0))
	k, rec := h.create("ci", store.RoleViewer, nil, 0)
	before := h.store.touches.Load()
	for range 20 {
		h.mustAuth(k.Token)
		h.clock.Advance(time.Second)
	}
	if got := h.store.touches.Load() - before; got != 1 {
		t.Fatalf("%d TouchKey calls in 20 s, want 1", got)
	}
	stored, _ := h.shared.GetAPIKey(ctx, rec.KeyID)
	if stored.LastUsedAt.IsZero() {
		t.Fatal("LastUsedAt not set")
	}
	h.clock.Advance(DefaultTouchInterval)
	h.mustAuth(k.Token)
	if got := h.store.touches.Load() - before; got != 2 {
		t.Fatalf("%d TouchKey calls, want 2", got)
	}
	// Touch failures are best-effort.
	boom := errors.New("db down")
	h.store.touchErr.Store(&boom)
	h.clock.Advance(DefaultTouchInterval)
	h.mustAuth(k.Token)
}

func TestAuditLogNeverSeesSecrets(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHarness(t, WithLogger(logger), WithThrottle(ThrottleConfig{MaxFailures: 3}))
	h.sink.err = errors.New("sink down") // exercise the logging path too
	k, rec := h.create("ci", store.RoleDeployer, []string{"staging"}, time.Minute)
	wrong, _ := apikey.FromParts(k.ID, apikey.Generate().Secret)
	h.secrets = append(h.secrets, wrong.Token, wrong.Secret)
	var errs []error
	collect := func(_ authz.Principal, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	collect(h.svc.Authenticate(ctx, wrong.Token, "c1"))
	collect(h.svc.Authenticate(ctx, k.Token[:40], "c1"))
	collect(h.svc.Authorize(ctx, k.Token, authz.PermDeploymentsCreate, "production", "c2"))
	collect(h.svc.Authenticate(ctx, k.Token+" ", "c1"))
	collect(h.svc.Authenticate(ctx, k.Token, "c1")) // throttled
	nk, _, _, err := h.svc.RotateKey(ctx, h.admin, rec.KeyID, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.remember(nk)
	h.clock.Advance(time.Hour)
	collect(h.svc.Authenticate(ctx, k.Token, "c3"))
	if len(errs) != 6 {
		t.Fatalf("got %d errors, want 6", len(errs))
	}
	evs := h.sink.all()
	if len(evs) < 8 {
		t.Fatalf("only %d audit events", len(evs))
	}
	for _, ev := range evs {
		h.assertNoLeak("audit event", fmt.Sprintf("%+v", ev))
		if ev.Time.IsZero() || ev.Action == "" || ev.Outcome == "" {
			t.Errorf("incomplete event %+v", ev)
		}
	}
	for _, err := range errs {
		h.assertNoLeak("error", err.Error())
	}
	h.assertNoLeak("log", logs.String())
	if !strings.Contains(logs.String(), "audit log failed") {
		t.Fatal("audit log failure not logged")
	}
	for _, v := range []any{h.admin, rec, nk} {
		h.assertNoLeak("formatting", fmt.Sprintf("%v %+v %s", v, v, v))
	}
}

func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, WithCacheTTL(time.Second), WithCacheSize(8))
	var toks []string
	var ids []string
	for i := range 16 {
		k, rec := h.create(fmt.Sprint("k", i), store.RoleDeployer, nil, 0)
		toks = append(toks, k.Token)
		ids = append(ids, rec.KeyID)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 400 {
				tok := toks[(g*7+i)%len(toks)]
				_, _ = h.svc.Authorize(ctx, tok, authz.PermDeploymentsCreate, "staging", fmt.Sprint("c", g))
				_, _ = h.svc.Authenticate(ctx, "bad", fmt.Sprint("x", i%20))
				if i%50 == 0 {
					h.clock.Advance(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Go(func() {
		for _, id := range ids[:8] {
			if _, err := h.svc.RevokeKey(ctx, h.admin, id); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for i, tok := range toks {
		_, err := h.svc.Authenticate(ctx, tok, "final")
		if (i < 8) != (err != nil) {
			t.Fatalf("key %d after concurrent revocations: %v", i, err)
		}
	}
}
