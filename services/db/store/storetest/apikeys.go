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

	"github.com/dot-do/platform/services/db/store"
)

func secretHash(i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "secret %d", i))
	return h[:]
}

func newKey(id string, role store.Role) store.ApiKey {
	return store.ApiKey{KeyID: id, Name: "key " + id, Role: role, SecretHash: secretHash(len(id)), CreatedBy: "key_admin"}
}

// noSecret fails if s shows the secret hash in any usual encoding.
func noSecret(t *testing.T, s string, secret []byte) {
	t.Helper()
	for _, enc := range []string{hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), string(secret), fmt.Sprint(secret)} {
		if strings.Contains(s, enc) {
			t.Fatalf("secret hash leaked: %s", s)
		}
	}
}

func testApiKeys(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))

	k := newKey("key_deployer", store.RoleDeployer)
	k.Environments = []string{"prod", "staging", "prod"}
	k.ExpiresAt = epoch.Add(24 * time.Hour)
	k.RevokedAt, k.ReplacedBy = epoch, "ignored" // ignored on create
	created := must[store.ApiKey](t)(s.CreateApiKey(ctx, k))
	want := store.ApiKey{KeyID: k.KeyID, Name: k.Name, Role: store.RoleDeployer, Environments: []string{"prod", "staging"},
		SecretHash: k.SecretHash, CreatedAt: epoch, CreatedBy: "key_admin", ExpiresAt: epoch.Add(24 * time.Hour)}
	wantEqual(t, created, want)
	wantEqual(t, must[store.ApiKey](t)(s.GetApiKey(ctx, k.KeyID)), want)
	if !created.Active(epoch) || created.Active(epoch.Add(24*time.Hour)) || !created.AllowsEnvironment("staging") || created.AllowsEnvironment("dev") {
		t.Fatal("Active/AllowsEnvironment disagree with the record")
	}
	noSecret(t, fmt.Sprintf("%v %+v %#v %s", created, created, created, created), created.SecretHash)

	_, err := s.CreateApiKey(ctx, newKey("key_deployer", store.RoleViewer))
	wantErr(t, err, store.ErrAlreadyExists)
	noSecret(t, err.Error(), created.SecretHash)
	_, err = s.GetApiKey(ctx, "key_missing")
	wantErr(t, err, store.ErrNotFound)

	for name, f := range map[string]func(*store.ApiKey){
		"no id":         func(k *store.ApiKey) { k.KeyID = "" },
		"id with space": func(k *store.ApiKey) { k.KeyID = "key x" },
		"role":          func(k *store.ApiKey) { k.Role = "root" },
		"short hash":    func(k *store.ApiKey) { k.SecretHash = k.SecretHash[:31] },
		"no creator":    func(k *store.ApiKey) { k.CreatedBy = "" },
		"empty env":     func(k *store.ApiKey) { k.Environments = []string{""} },
	} {
		bad := newKey("key_bad", store.RoleViewer)
		f(&bad)
		_, err := s.CreateApiKey(ctx, bad)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		wantErr(t, err, store.ErrInvalidArgument)
		noSecret(t, err.Error(), bad.SecretHash)
	}

	clk.Advance(time.Second)
	viewer := must[store.ApiKey](t)(s.CreateApiKey(ctx, newKey("key_viewer", store.RoleViewer)))
	wantEqual(t, must[[]store.ApiKey](t)(s.ListApiKeys(ctx, false)), []store.ApiKey{created, viewer})

	// Touch moves LastUsedAt forward only.
	t1 := epoch.Add(time.Hour)
	if err := s.TouchApiKey(ctx, viewer.KeyID, t1); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchApiKey(ctx, viewer.KeyID, t1.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := must[store.ApiKey](t)(s.GetApiKey(ctx, viewer.KeyID)); !got.LastUsedAt.Equal(t1) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, t1)
	}
	wantErr(t, s.TouchApiKey(ctx, "key_missing", t1), store.ErrNotFound)

	// Expiry can be set and cleared.
	exp := must[store.ApiKey](t)(s.SetApiKeyExpiry(ctx, viewer.KeyID, t1))
	if !exp.ExpiresAt.Equal(t1) || !bytes.Equal(exp.SecretHash, viewer.SecretHash) {
		t.Fatalf("after SetApiKeyExpiry: %v", exp)
	}
	if exp = must[store.ApiKey](t)(s.SetApiKeyExpiry(ctx, viewer.KeyID, time.Time{})); !exp.ExpiresAt.IsZero() {
		t.Fatalf("expiry not cleared: %v", exp)
	}
	_, err = s.SetApiKeyExpiry(ctx, "key_missing", t1)
	wantErr(t, err, store.ErrNotFound)

	// Revocation.
	revoked := must[store.ApiKey](t)(s.RevokeApiKey(ctx, viewer.KeyID, time.Time{}))
	if !revoked.RevokedAt.Equal(clk.Now()) || revoked.Active(clk.Now()) {
		t.Fatalf("revoked key: %v", revoked)
	}
	_, err = s.RevokeApiKey(ctx, viewer.KeyID, time.Time{})
	wantErr(t, err, store.ErrFailedPrecondition)
	_, err = s.RevokeApiKey(ctx, "key_missing", time.Time{})
	wantErr(t, err, store.ErrNotFound)
	_, err = s.SetApiKeyExpiry(ctx, viewer.KeyID, t1)
	wantErr(t, err, store.ErrFailedPrecondition)
	wantEqual(t, must[[]store.ApiKey](t)(s.ListApiKeys(ctx, false)), []store.ApiKey{created})
	wantEqual(t, must[[]store.ApiKey](t)(s.ListApiKeys(ctx, true)), []store.ApiKey{created, revoked})
}

func testApiKeyRotation(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))
	old := must[store.ApiKey](t)(s.CreateApiKey(ctx, newKey("key_old", store.RoleDeployer)))
	grace := epoch.Add(time.Hour)
	gotOld, gotNew, err := s.RotateApiKey(ctx, old.KeyID, newKey("key_new", store.RoleDeployer), grace)
	if err != nil {
		t.Fatal(err)
	}
	if gotOld.ReplacedBy != "key_new" || !gotOld.ExpiresAt.Equal(grace) || gotNew.KeyID != "key_new" {
		t.Fatalf("rotation: old %v new %v", gotOld, gotNew)
	}
	wantEqual(t, must[store.ApiKey](t)(s.GetApiKey(ctx, old.KeyID)), gotOld)
	wantEqual(t, must[store.ApiKey](t)(s.GetApiKey(ctx, "key_new")), gotNew)
	_, _, err = s.RotateApiKey(ctx, old.KeyID, newKey("key_newer", store.RoleDeployer), grace)
	wantErr(t, err, store.ErrFailedPrecondition)

	// A failed rotation changes nothing.
	other := must[store.ApiKey](t)(s.CreateApiKey(ctx, newKey("key_other", store.RoleViewer)))
	_, _, err = s.RotateApiKey(ctx, other.KeyID, newKey("key_new", store.RoleViewer), grace)
	wantErr(t, err, store.ErrAlreadyExists)
	wantEqual(t, must[store.ApiKey](t)(s.GetApiKey(ctx, other.KeyID)), other)
	_, _, err = s.RotateApiKey(ctx, "key_missing", newKey("key_x", store.RoleViewer), grace)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetApiKey(ctx, "key_x")
	wantErr(t, err, store.ErrNotFound) // the new key of a failed rotation is not stored

	// An earlier existing expiry is kept; a zero grace expires the key now.
	must[store.ApiKey](t)(s.SetApiKeyExpiry(ctx, other.KeyID, epoch.Add(time.Minute)))
	o, _, err := s.RotateApiKey(ctx, other.KeyID, newKey("key_other2", store.RoleViewer), grace)
	if err != nil || !o.ExpiresAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("rotation with earlier expiry: %v, %v", o, err)
	}
	third := must[store.ApiKey](t)(s.CreateApiKey(ctx, newKey("key_third", store.RoleViewer)))
	o, _, err = s.RotateApiKey(ctx, third.KeyID, newKey("key_third2", store.RoleViewer), time.Time{})
	if err != nil || !o.ExpiresAt.Equal(clk.Now()) {
		t.Fatalf("rotation without grace: %v, %v", o, err)
	}
}

func testBootstrap(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	// Non-admin keys do not count.
	must[store.ApiKey](t)(s.CreateApiKey(ctx, newKey("key_viewer", store.RoleViewer)))
	k := newKey("key_boot", "")
	k.CreatedBy = "someone"
	boot := must[store.ApiKey](t)(s.CreateBootstrapApiKey(ctx, k))
	if boot.Role != store.RoleAdmin || boot.CreatedBy != store.BootstrapCreator {
		t.Fatalf("bootstrap key: %v", boot)
	}
	_, err := s.CreateBootstrapApiKey(ctx, newKey("key_boot2", store.RoleAdmin))
	wantErr(t, err, store.ErrAlreadyExists)
	// Revoking every admin re-opens bootstrap.
	must[store.ApiKey](t)(s.RevokeApiKey(ctx, boot.KeyID, time.Time{}))
	must[store.ApiKey](t)(s.CreateBootstrapApiKey(ctx, newKey("key_boot2", store.RoleAdmin)))
	// So does nothing else: a regular admin key blocks it too.
	_, err = s.CreateBootstrapApiKey(ctx, newKey("key_boot3", store.RoleAdmin))
	wantErr(t, err, store.ErrAlreadyExists)
	_, err = s.CreateBootstrapApiKey(ctx, newKey("key_boot4", store.RoleViewer))
	wantErr(t, err, store.ErrInvalidArgument)
}

func testConcurrentBootstrap(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	procs := []store.Store{h, h.Reopen(t)}
	const n = 16
	errs := make([]error, n)
	parallel(n, func(i int) {
		_, errs[i] = procs[i%2].CreateBootstrapApiKey(t.Context(), newKey(fmt.Sprint("key_boot", i), store.RoleAdmin))
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Fatal(err)
		}
	}
	keys := must[[]store.ApiKey](t)(h.ListApiKeys(t.Context(), true))
	if won != 1 || len(keys) != 1 {
		t.Fatalf("%d concurrent bootstraps succeeded, %d keys stored", won, len(keys))
	}
}
