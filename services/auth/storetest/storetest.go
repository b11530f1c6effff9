// Package storetest is a conformance suite for auth.KeyStore
// implementations. Call Run from a test of the implementation:
//
//	func TestDBKeyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) auth.KeyStore { return newEmptyStore(t) })
//	}
//
// newStore must return an empty store for each call. Times used by the suite
// are whole seconds in UTC, so stores with microsecond precision pass.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/auth/apikey"
)

// Run runs the KeyStore contract tests as subtests of t.
func Run(t *testing.T, newStore func(t *testing.T) auth.KeyStore) {
	t.Helper()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(role auth.Role, createdAt time.Time, envs ...string) auth.KeyRecord {
		k := apikey.Generate()
		return auth.KeyRecord{
			KeyID: k.ID, Name: "key " + k.ID, Role: role, Environments: envs,
			SecretHash: apikey.HashSecret(k.Secret), CreatedAt: createdAt, CreatedBy: "creator",
		}
	}
	ctx := context.Background()

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		r := rec(auth.RoleDeployer, base, "production", "staging")
		r.ExpiresAt = base.Add(time.Hour)
		mustOK(t, s.CreateKey(ctx, r))
		got, err := s.GetKey(ctx, r.KeyID)
		mustOK(t, err)
		assertSame(t, got, r)
		if err := s.CreateKey(ctx, r); !errors.Is(err, auth.ErrAlreadyExists) {
			t.Fatalf("duplicate CreateKey = %v, want ErrAlreadyExists", err)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.GetKey(ctx, apikey.Generate().ID); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("GetKey(missing) = %v, want ErrNotFound", err)
		}
		id := apikey.Generate().ID
		for name, err := range map[string]error{
			"RevokeKey":    s.RevokeKey(ctx, id, base),
			"SetKeyExpiry": s.SetKeyExpiry(ctx, id, base),
			"TouchKey":     s.TouchKey(ctx, id, base),
			"ReplaceKey":   s.ReplaceKey(ctx, id, rec(auth.RoleViewer, base), base),
		} {
			if !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("%s(missing) = %v, want ErrNotFound", name, err)
			}
		}
	})

	t.Run("NoAliasing", func(t *testing.T) {
		s := newStore(t)
		r := rec(auth.RoleViewer, base, "staging")
		mustOK(t, s.CreateKey(ctx, r))
		r.Environments[0] = "mutated"
		r.SecretHash[0] ^= 0xff
		got, err := s.GetKey(ctx, r.KeyID)
		mustOK(t, err)
		if got.Environments[0] != "staging" || bytes.Equal(got.SecretHash, r.SecretHash) {
			t.Fatal("store retained the caller's slices")
		}
		got.Environments[0] = "mutated"
		again, err := s.GetKey(ctx, r.KeyID)
		mustOK(t, err)
		if again.Environments[0] != "staging" {
			t.Fatal("store returned its internal slices")
		}
	})

	t.Run("Bootstrap", func(t *testing.T) {
		s := newStore(t)
		mustOK(t, s.CreateKey(ctx, rec(auth.RoleDeployer, base)))
		first := rec(auth.RoleAdmin, base)
		mustOK(t, s.CreateBootstrapKey(ctx, first))
		if err := s.CreateBootstrapKey(ctx, rec(auth.RoleAdmin, base.Add(time.Second))); !errors.Is(err, auth.ErrAlreadyExists) {
			t.Fatalf("second bootstrap = %v, want ErrAlreadyExists", err)
		}
		// An environment-restricted admin is still an active admin.
		s2 := newStore(t)
		mustOK(t, s2.CreateKey(ctx, rec(auth.RoleAdmin, base, "staging")))
		if err := s2.CreateBootstrapKey(ctx, rec(auth.RoleAdmin, base)); !errors.Is(err, auth.ErrAlreadyExists) {
			t.Fatalf("bootstrap with restricted admin = %v, want ErrAlreadyExists", err)
		}
		// Revoked and expired admins do not count.
		mustOK(t, s.RevokeKey(ctx, first.KeyID, base.Add(time.Minute)))
		expiring := rec(auth.RoleAdmin, base.Add(2*time.Minute))
		expiring.ExpiresAt = base.Add(time.Hour)
		mustOK(t, s.CreateBootstrapKey(ctx, expiring))
		if err := s.CreateBootstrapKey(ctx, rec(auth.RoleAdmin, base.Add(59*time.Minute))); !errors.Is(err, auth.ErrAlreadyExists) {
			t.Fatalf("bootstrap before expiry = %v, want ErrAlreadyExists", err)
		}
		mustOK(t, s.CreateBootstrapKey(ctx, rec(auth.RoleAdmin, base.Add(time.Hour))))
	})

	t.Run("BootstrapConcurrent", func(t *testing.T) {
		s := newStore(t)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				err := s.CreateBootstrapKey(ctx, rec(auth.RoleAdmin, base))
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, auth.ErrAlreadyExists):
					t.Errorf("concurrent bootstrap: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d concurrent bootstraps succeeded, want 1", ok.Load())
		}
	})

	t.Run("ListKeys", func(t *testing.T) {
		s := newStore(t)
		a := rec(auth.RoleAdmin, base.Add(2*time.Second))
		b := rec(auth.RoleViewer, base)
		c := rec(auth.RoleDeployer, base.Add(time.Second))
		expired := rec(auth.RoleViewer, base.Add(3*time.Second))
		expired.ExpiresAt = base.Add(4 * time.Second)
		for _, r := range []auth.KeyRecord{a, b, c, expired} {
			mustOK(t, s.CreateKey(ctx, r))
		}
		mustOK(t, s.RevokeKey(ctx, c.KeyID, base.Add(time.Hour)))
		all, err := s.ListKeys(ctx, true)
		mustOK(t, err)
		assertIDs(t, all, b.KeyID, c.KeyID, a.KeyID, expired.KeyID)
		active, err := s.ListKeys(ctx, false)
		mustOK(t, err)
		assertIDs(t, active, b.KeyID, a.KeyID, expired.KeyID)
	})

	t.Run("RevokeKeepsFirstTime", func(t *testing.T) {
		s := newStore(t)
		r := rec(auth.RoleViewer, base)
		mustOK(t, s.CreateKey(ctx, r))
		mustOK(t, s.RevokeKey(ctx, r.KeyID, base.Add(time.Minute)))
		mustOK(t, s.RevokeKey(ctx, r.KeyID, base.Add(time.Hour)))
		got, err := s.GetKey(ctx, r.KeyID)
		mustOK(t, err)
		if !got.RevokedAt.Equal(base.Add(time.Minute)) {
			t.Fatalf("RevokedAt = %v, want %v", got.RevokedAt, base.Add(time.Minute))
		}
	})

	t.Run("SetKeyExpiry", func(t *testing.T) {
		s := newStore(t)
		r := rec(auth.RoleViewer, base)
		mustOK(t, s.CreateKey(ctx, r))
		mustOK(t, s.SetKeyExpiry(ctx, r.KeyID, base.Add(time.Hour)))
		got, _ := s.GetKey(ctx, r.KeyID)
		if !got.ExpiresAt.Equal(base.Add(time.Hour)) {
			t.Fatalf("ExpiresAt = %v", got.ExpiresAt)
		}
		mustOK(t, s.SetKeyExpiry(ctx, r.KeyID, time.Time{}))
		got, _ = s.GetKey(ctx, r.KeyID)
		if !got.ExpiresAt.IsZero() {
			t.Fatalf("ExpiresAt = %v after clearing", got.ExpiresAt)
		}
	})

	t.Run("TouchOnlyMovesForward", func(t *testing.T) {
		s := newStore(t)
		r := rec(auth.RoleViewer, base)
		mustOK(t, s.CreateKey(ctx, r))
		mustOK(t, s.TouchKey(ctx, r.KeyID, base.Add(time.Hour)))
		mustOK(t, s.TouchKey(ctx, r.KeyID, base.Add(time.Minute)))
		got, _ := s.GetKey(ctx, r.KeyID)
		if !got.LastUsedAt.Equal(base.Add(time.Hour)) {
			t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, base.Add(time.Hour))
		}
	})

	t.Run("ReplaceKey", func(t *testing.T) {
		s := newStore(t)
		old := rec(auth.RoleDeployer, base, "staging")
		mustOK(t, s.CreateKey(ctx, old))
		repl := rec(auth.RoleDeployer, base.Add(time.Minute), "staging")
		mustOK(t, s.ReplaceKey(ctx, old.KeyID, repl, base.Add(24*time.Hour)))
		gotOld, _ := s.GetKey(ctx, old.KeyID)
		if gotOld.ReplacedBy != repl.KeyID || !gotOld.ExpiresAt.Equal(base.Add(24*time.Hour)) {
			t.Fatalf("old after ReplaceKey: ReplacedBy=%q ExpiresAt=%v", gotOld.ReplacedBy, gotOld.ExpiresAt)
		}
		gotNew, err := s.GetKey(ctx, repl.KeyID)
		mustOK(t, err)
		assertSame(t, gotNew, repl)

		// Already replaced: refused, nothing inserted.
		again := rec(auth.RoleDeployer, base)
		if err := s.ReplaceKey(ctx, old.KeyID, again, base); !errors.Is(err, auth.ErrFailedPrecondition) {
			t.Fatalf("ReplaceKey(replaced) = %v, want ErrFailedPrecondition", err)
		}
		assertMissing(t, s, again.KeyID)

		// Revoked: refused, nothing inserted.
		revoked := rec(auth.RoleViewer, base)
		mustOK(t, s.CreateKey(ctx, revoked))
		mustOK(t, s.RevokeKey(ctx, revoked.KeyID, base))
		r2 := rec(auth.RoleViewer, base)
		if err := s.ReplaceKey(ctx, revoked.KeyID, r2, base); !errors.Is(err, auth.ErrFailedPrecondition) {
			t.Fatalf("ReplaceKey(revoked) = %v, want ErrFailedPrecondition", err)
		}
		assertMissing(t, s, r2.KeyID)

		// Replacement id taken: refused, old unchanged.
		fresh := rec(auth.RoleViewer, base)
		mustOK(t, s.CreateKey(ctx, fresh))
		if err := s.ReplaceKey(ctx, fresh.KeyID, gotNew, base); !errors.Is(err, auth.ErrAlreadyExists) {
			t.Fatalf("ReplaceKey(taken id) = %v, want ErrAlreadyExists", err)
		}
		gotFresh, _ := s.GetKey(ctx, fresh.KeyID)
		if gotFresh.ReplacedBy != "" || !gotFresh.ExpiresAt.IsZero() {
			t.Fatal("failed ReplaceKey modified the old key")
		}
	})

	t.Run("ReplaceKeyConcurrent", func(t *testing.T) {
		s := newStore(t)
		old := rec(auth.RoleDeployer, base)
		mustOK(t, s.CreateKey(ctx, old))
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				err := s.ReplaceKey(ctx, old.KeyID, rec(auth.RoleDeployer, base), base.Add(time.Hour))
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, auth.ErrFailedPrecondition):
					t.Errorf("concurrent ReplaceKey: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d concurrent rotations succeeded, want 1", ok.Load())
		}
		all, err := s.ListKeys(ctx, true)
		mustOK(t, err)
		if len(all) != 2 {
			t.Fatalf("%d keys after concurrent rotations, want 2", len(all))
		}
	})
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func assertSame(t *testing.T, got, want auth.KeyRecord) {
	t.Helper()
	if got.KeyID != want.KeyID || got.Name != want.Name || got.Role != want.Role ||
		!slices.Equal(got.Environments, want.Environments) || !bytes.Equal(got.SecretHash, want.SecretHash) ||
		!got.CreatedAt.Equal(want.CreatedAt) || got.CreatedBy != want.CreatedBy ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.RevokedAt.Equal(want.RevokedAt) ||
		!got.LastUsedAt.Equal(want.LastUsedAt) || got.ReplacedBy != want.ReplacedBy {
		t.Fatalf("record mismatch:\n got  %+v\n want %+v", got, want)
	}
}

func assertIDs(t *testing.T, recs []auth.KeyRecord, want ...string) {
	t.Helper()
	got := make([]string, len(recs))
	for i, r := range recs {
		got[i] = r.KeyID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListKeys ids = %v, want %v", got, want)
	}
}

func assertMissing(t *testing.T, s auth.KeyStore, id string) {
	t.Helper()
	if _, err := s.GetKey(context.Background(), id); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("key %q exists after a failed operation (err=%v)", id, err)
	}
}
