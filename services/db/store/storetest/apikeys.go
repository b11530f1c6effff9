package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

func secretHash(i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "secret %d", i))
	return h[:]
}

func newKey(id string, role store.Role) store.APIKey {
	return store.APIKey{KeyID: id, Name: "key " + id, Role: role, SecretHash: secretHash(len(id)), CreatedBy: "key_admin"}
}

// noSecret fails if s shows the secret hash in any usual encoding.
func noSecret(t *testing.T, s string, secret []byte) {
	t.Helper()
	for _, enc := range []string{hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), string(secret), fmt.Sprintf("%d", secret)} {
		if strings.Contains(s, enc) {
			t.Fatalf("secret hash leaked: %s", s)
		}
	}
}

func testAPIKeys(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))

	k := newKey("key_deployer", store.RoleDeployer)
	k.Environments = []string{"prod", "staging", "prod"}
	k.ExpiresAt = epoch.Add(24 * time.Hour)
	k.RevokedAt, k.ReplacedBy = epoch, "ignored" // ignored on create
	created := must[store.APIKey](t)(s.CreateAPIKey(ctx, k))
	want := store.APIKey{KeyID: k.KeyID, Name: k.Name, Role: store.RoleDeployer, Environments: []string{"prod", "staging"},
		SecretHash: k.SecretHash, CreatedAt: epoch, CreatedBy: "key_admin", ExpiresAt: epoch.Add(24 * time.Hour)}
	wantEqual(t, created, want)
	wantEqual(t, must[store.APIKey](t)(s.GetAPIKey(ctx, k.KeyID)), want)
	if !created.Active(epoch) || created.Active(epoch.Add(24*time.Hour)) || !created.AllowsEnvironment("staging") || created.AllowsEnvironment("dev") {
		t.Fatal("Active/AllowsEnvironment disagree with the record")
	}
	noSecret(t, fmt.Sprintf("%v %+v %#v %s", created, created, created, created), created.SecretHash)

	_, err := s.CreateAPIKey(ctx, newKey("key_deployer", store.RoleViewer))
	wantErr(t, err, errkind.Exists)
	noSecret(t, err.Error(), created.SecretHash)
	_, err = s.GetAPIKey(ctx, "key_missing")
	wantErr(t, err, errkind.NotFound)

	for name, f := range map[string]func(*store.APIKey){
		"no id":         func(k *store.APIKey) { k.KeyID = "" },
		"id with space": func(k *store.APIKey) { k.KeyID = "key x" },
		"role":          func(k *store.APIKey) { k.Role = "root" },
		"short hash":    func(k *store.APIKey) { k.SecretHash = k.SecretHash[:31] },
		"no creator":    func(k *store.APIKey) { k.CreatedBy = "" },
		"empty env":     func(k *store.APIKey) { k.Environments = []string{""} },
	} {
		bad := newKey("key_bad", store.RoleViewer)
		f(&bad)
		_, err := s.CreateAPIKey(ctx, bad)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantErr(t, err, errkind.Invalid)
		noSecret(t, err.Error(), bad.SecretHash)
	}

	clk.Advance(time.Second)
	viewer := must[store.APIKey](t)(s.CreateAPIKey(ctx, newKey("key_viewer", store.RoleViewer)))
	wantEqual(t, must[[]store.APIKey](t)(s.ListAPIKeys(ctx, false)), []store.APIKey{created, viewer})

	// Touch moves LastUsedAt forward only.
	t1 := epoch.Add(time.Hour)
	if err := s.TouchAPIKey(ctx, viewer.KeyID, t1); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAPIKey(ctx, viewer.KeyID, t1.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := must[store.APIKey](t)(s.GetAPIKey(ctx, viewer.KeyID)); !got.LastUsedAt.Equal(t1) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, t1)
	}
	wantErr(t, s.TouchAPIKey(ctx, "key_missing", t1), errkind.NotFound)

	// Expiry can be set and cleared.
	exp := must[store.APIKey](t)(s.SetAPIKeyExpiry(ctx, viewer.KeyID, t1))
	if !exp.ExpiresAt.Equal(t1) || !bytes.Equal(exp.SecretHash, viewer.SecretHash) {
		t.Fatalf("after SetAPIKeyExpiry: %v", exp)
	}
	if exp = must[store.APIKey](t)(s.SetAPIKeyExpiry(ctx, viewer.KeyID, time.Time{})); !exp.ExpiresAt.IsZero() {
		t.Fatalf("expiry not cleared: %v", exp)
	}
	_, err = s.SetAPIKeyExpiry(ctx, "key_missing", t1)
	wantErr(t, err, errkind.NotFound)

	// Revocation.
	revoked := must[store.APIKey](t)(s.RevokeAPIKey(ctx, viewer.KeyID, time.Time{}))
	if !revoked.RevokedAt.Equal(clk.Now()) || revoked.Active(clk.Now()) {
		t.Fatalf("revoked key: %v", revoked)
	}
	// Revoking again succeeds and keeps the first revocation.
	clk.Advance(time.Minute)
	wantEqual(t, must[store.APIKey](t)(s.RevokeAPIKey(ctx, viewer.KeyID, time.Time{})), revoked)
	_, err = s.RevokeAPIKey(ctx, "key_missing", time.Time{})
	wantErr(t, err, errkind.NotFound)
	_, err = s.SetAPIKeyExpiry(ctx, viewer.KeyID, t1)
	wantErr(t, err, errkind.Precondition)
	wantEqual(t, must[[]store.APIKey](t)(s.ListAPIKeys(ctx, false)), []store.APIKey{created})
	wantEqual(t, must[[]store.APIKey](t)(s.ListAPIKeys(ctx, true)), []store.APIKey{created, revoked})
}

func testAPIKeyRotation(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))
	old := must[store.APIKey](t)(s.CreateAPIKey(ctx, newKey("key_old", store.RoleDeployer)))
	grace := epoch.Add(time.Hour)
	gotOld, gotNew, err := s.RotateAPIKey(ctx, old.KeyID, newKey("key_new", store.RoleDeployer), grace)
	if err != nil {
		t.Fatal(err)
	}
	if gotOld.ReplacedBy != "key_new" || !gotOld.ExpiresAt.Equal(grace) || gotNew.KeyID != "key_new" {
		t.Fatalf("rotation: old %v new %v", gotOld, gotNew)
	}
	wantEqual(t, must[store.APIKey](t)(s.GetAPIKey(ctx, old.KeyID)), gotOld)
	wantEqual(t, must[store.APIKey](t)(s.GetAPIKey(ctx, "key_new")), gotNew)
	_, _, err = s.RotateAPIKey(ctx, old.KeyID, newKey("key_newer", store.RoleDeployer), grace)
	wantErr(t, err, errkind.Precondition)

	// A failed rotation changes nothing.
	other := must[store.APIKey](t)(s.CreateAPIKey(ctx, newKey("key_other", store.RoleViewer)))
	_, _, err = s.RotateAPIKey(ctx, other.KeyID, newKey("key_new", store.RoleViewer), grace)
	wantErr(t, err, errkind.Exists)
	wantEqual(t, must[store.APIKey](t)(s.GetAPIKey(ctx, other.KeyID)), other)
	_, _, err = s.RotateAPIKey(ctx, "key_missing", newKey("key_x", store.RoleViewer), grace)
	wantErr(t, err, errkind.NotFound)
	_, err = s.GetAPIKey(ctx, "key_x")
	wantErr(t, err, errkind.NotFound) // the new key of a failed rotation is not stored

	// An earlier existing expiry is kept; a zero grace expires the key now.
	must[store.APIKey](t)(s.SetAPIKeyExpiry(ctx, other.KeyID, epoch.Add(time.Minute)))
	o, _, err := s.RotateAPIKey(ctx, other.KeyID, newKey("key_other2", store.RoleViewer), grace)
	if err != nil || !o.ExpiresAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("rotation with earlier expiry: %v, %v", o, err)
	}
	third := must[store.APIKey](t)(s.CreateAPIKey(ctx, newKey("key_third", store.RoleViewer)))
	o, _, err = s.RotateAPIKey(ctx, third.KeyID, newKey("key_third2", store.RoleViewer), time.Time{})
	if err != nil || !o.ExpiresAt.Equal(clk.Now()) {
		t.Fatalf("rotation without grace: %v, %v", o, err)
	}
}

func testBootstrap(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	// Non-admin keys do not count.
	must[store.APIKey](t)(s.CreateAPIKey(ctx, newKey("key_viewer", store.RoleViewer)))
	k := newKey("key_boot", "")
	k.CreatedBy = "someone"
	boot := must[store.APIKey](t)(s.CreateBootstrapAPIKey(ctx, k))
	if boot.Role != store.RoleAdmin || boot.CreatedBy != store.BootstrapCreator {
		t.Fatalf("bootstrap key: %v", boot)
	}
	_, err := s.CreateBootstrapAPIKey(ctx, newKey("key_boot2", store.RoleAdmin))
	wantErr(t, err, errkind.Exists)
	// Revoking every admin re-opens bootstrap.
	must[store.APIKey](t)(s.RevokeAPIKey(ctx, boot.KeyID, time.Time{}))
	must[store.APIKey](t)(s.CreateBootstrapAPIKey(ctx, newKey("key_boot2", store.RoleAdmin)))
	// So does nothing else: a regular admin key blocks it too.
	_, err = s.CreateBootstrapAPIKey(ctx, newKey("key_boot3", store.RoleAdmin))
	wantErr(t, err, errkind.Exists)
	_, err = s.CreateBootstrapAPIKey(ctx, newKey("key_boot4", store.RoleViewer))
	wantErr(t, err, errkind.Invalid)
}

func testConcurrentBootstrap(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	procs := []store.Store{h, h.Reopen(t)}
	const n = 16
	errs := make([]error, n)
	parallel(n, func(i int) {
		_, errs[i] = procs[i%2].CreateBootstrapAPIKey(t.Context(), newKey(fmt.Sprint("key_boot", i), store.RoleAdmin))
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errkind.Exists):
			t.Fatal(err)
		}
	}
	keys := must[[]store.APIKey](t)(h.ListAPIKeys(t.Context(), true))
	if won != 1 || len(keys) != 1 {
		t.Fatalf("%d concurrent bootstraps succeeded, %d keys stored", won, len(keys))
	}
}

// testAPIKeyContract checks what the auth service relies on beyond the
// round trips: records are not aliased, bootstrap counts every active
// admin (restricted or expiring), rotations of one key are exclusive, and
// lists are ordered by creation time, then id.
func testAPIKeyContract(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))

	t.Run("NoAliasing", func(t *testing.T) {
		k := newKey("key_alias", store.RoleViewer)
		k.Environments = []string{"staging"}
		must[store.APIKey](t)(s.CreateAPIKey(ctx, k))
		k.Environments[0] = "mutated"
		k.SecretHash[0] ^= 0xff
		got := must[store.APIKey](t)(s.GetAPIKey(ctx, k.KeyID))
		if got.Environments[0] != "staging" || bytes.Equal(got.SecretHash, k.SecretHash) {
			t.Fatal("the store kept the caller's slices")
		}
		got.Environments[0] = "mutated"
		if again := must[store.APIKey](t)(s.GetAPIKey(ctx, k.KeyID)); again.Environments[0] != "staging" {
			t.Fatal("the store returned its own slices")
		}
	})

	t.Run("BootstrapCountsEveryActiveAdmin", func(t *testing.T) {
		s := open(t)
		restricted := newKey("key_restricted_admin", store.RoleAdmin)
		restricted.Environments = []string{"staging"}
		restricted.CreatedAt = epoch
		must[store.APIKey](t)(s.CreateAPIKey(ctx, restricted))
		boot := newKey("key_boot", store.RoleAdmin)
		boot.CreatedAt = epoch
		_, err := s.CreateBootstrapAPIKey(ctx, boot)
		wantErr(t, err, errkind.Exists)

		// An admin that expires blocks bootstrap until it has expired.
		must[store.APIKey](t)(s.RevokeAPIKey(ctx, restricted.KeyID, epoch))
		expiring := newKey("key_expiring_admin", store.RoleAdmin)
		expiring.CreatedAt, expiring.ExpiresAt = epoch, epoch.Add(time.Hour)
		must[store.APIKey](t)(s.CreateAPIKey(ctx, expiring))
		early := newKey("key_boot_early", store.RoleAdmin)
		early.CreatedAt = epoch.Add(59 * time.Minute)
		_, err = s.CreateBootstrapAPIKey(ctx, early)
		wantErr(t, err, errkind.Exists)
		late := newKey("key_boot_late", store.RoleAdmin)
		late.CreatedAt = epoch.Add(time.Hour)
		must[store.APIKey](t)(s.CreateBootstrapAPIKey(ctx, late))
	})

	t.Run("ConcurrentRotationsOfOneKey", func(t *testing.T) {
		old := must[store.APIKey](t)(s.CreateAPIKey(ctx, newKey("key_rotated", store.RoleDeployer)))
		const n = 8
		errs := make([]error, n)
		parallel(n, func(i int) {
			_, _, errs[i] = s.RotateAPIKey(ctx, old.KeyID, newKey(fmt.Sprint("key_rotation_", i), store.RoleDeployer), epoch.Add(time.Hour))
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, errkind.Precondition):
				t.Fatalf("concurrent rotation: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent rotations of one key succeeded, want 1", won)
		}
	})

	t.Run("ListOrder", func(t *testing.T) {
		s := open(t)
		var want []string
		for _, id := range []string{"key_b", "key_a", "key_c"} {
			k := newKey(id, store.RoleViewer)
			k.CreatedAt = epoch
			must[store.APIKey](t)(s.CreateAPIKey(ctx, k))
		}
		first := newKey("key_z", store.RoleViewer)
		first.CreatedAt = epoch.Add(-time.Second)
		must[store.APIKey](t)(s.CreateAPIKey(ctx, first))
		want = []string{"key_z", "key_a", "key_b", "key_c"}
		var got []string
		for _, k := range must[[]store.APIKey](t)(s.ListAPIKeys(ctx, true)) {
			got = append(got, k.KeyID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ListAPIKeys order = %v, want %v", got, want)
		}
	})
}
