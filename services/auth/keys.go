package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
)

// Key management. Every method except Bootstrap takes the acting Principal,
// which must come from Authenticate/Authorize; the method re-checks that it
// holds keys.manage (defense in depth) and that its environment scope covers
// the keys concerned (Principal.Covers), so an environment-restricted admin
// can only see and manage keys limited to a subset of its environments.
// Returned records never carry SecretHash. New tokens are returned once, as an
// apikey.Key (which redacts itself when printed; read Key.Token to show it).

const (
	// MaxNameLen is the maximum length of a key name in characters.
	MaxNameLen = 100
	// MaxEnvironmentLen is the maximum length of an environment name.
	MaxEnvironmentLen = 63
	// DefaultBootstrapName is the name used by Bootstrap when none is given.
	DefaultBootstrapName = "bootstrap-admin"
	// maxIDAttempts bounds retries on (astronomically unlikely) id
	// collisions. Bootstrap does not retry: there, "already exists" means an
	// active admin exists.
	maxIDAttempts = 3
)

// CreateKey creates a key for creator with the given name (1-100 printable
// characters), role, environment scope (nil or empty = all environments;
// names are 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter
// or digit; duplicates are removed) and lifetime (0 = never expires). It
// returns the new key, whose Token must be shown to the user exactly once,
// and its record.
//
// Errors: *authz.PermissionError if creator lacks keys.manage, lacks a
// permission of role, or does not cover environments; errkind.Invalid for
// bad parameters; store errors wrapped.
func (s *Service) CreateKey(ctx context.Context, creator authz.Principal, name string, role store.Role, environments []string, ttl time.Duration) (apikey.Key, store.APIKey, error) {
	if err := s.checkManager(creator); err != nil {
		return apikey.Key{}, store.APIKey{}, err
	}
	name, err := validateName(name)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, err
	}
	if !role.Valid() {
		return apikey.Key{}, store.APIKey{}, invalidArg("unknown role %q (want one of admin, deployer, viewer)", role)
	}
	envs, err := NormalizeEnvironments(environments)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, err
	}
	if ttl < 0 {
		return apikey.Key{}, store.APIKey{}, invalidArg("ttl must not be negative")
	}
	for _, perm := range authz.Permissions(role) {
		if !creator.Has(perm) {
			return apikey.Key{}, store.APIKey{}, &authz.PermissionError{KeyID: creator.KeyID, Role: creator.Role, Permission: perm}
		}
	}
	if !creator.Covers(envs) {
		return apikey.Key{}, store.APIKey{}, scopeError(creator, envs)
	}

	now := s.now()
	var expires time.Time
	if ttl > 0 {
		expires = now.Add(ttl)
	}
	key, rec, err := s.insert(maxIDAttempts, func(rec store.APIKey) (store.APIKey, error) { return s.store.CreateAPIKey(ctx, rec) },
		store.APIKey{Name: name, Role: role, Environments: envs, CreatedAt: now, CreatedBy: creator.KeyID, ExpiresAt: expires})
	if err != nil {
		return apikey.Key{}, store.APIKey{}, fmt.Errorf("auth: create key: %w", err)
	}
	s.audit(ctx, Event{
		Time: now, Action: ActionKeyCreate, Outcome: OutcomeSuccess, KeyID: rec.KeyID, Actor: creator.KeyID,
		Reason: fmt.Sprintf("name=%q role=%s environments=%s expires=%s", name, role, envString(envs), timeString(expires)),
	})
	return key, rec.WithoutHash(), nil
}

// Bootstrap creates the first admin key (unrestricted, no expiry, CreatedBy
// "bootstrap") named name (DefaultBootstrapName if empty). It fails with an
// error of kind errkind.Exists if an active admin key exists; the check is
// atomic in the store. Bootstrap needs no credentials, so expose it only to
// operators (e.g. a CLI with direct access), never as an unauthenticated
// network endpoint: if every admin key is revoked or expired it works again.
func (s *Service) Bootstrap(ctx context.Context, name string) (apikey.Key, store.APIKey, error) {
	if name == "" {
		name = DefaultBootstrapName
	}
	name, err := validateName(name)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, err
	}
	now := s.now()
	key, rec, err := s.insert(1, func(rec store.APIKey) (store.APIKey, error) { return s.store.CreateBootstrapAPIKey(ctx, rec) },
		store.APIKey{Name: name, Role: store.RoleAdmin, CreatedAt: now, CreatedBy: store.BootstrapCreator})
	if errors.Is(err, errkind.Exists) {
		s.audit(ctx, Event{Time: now, Action: ActionKeyBootstrap, Outcome: OutcomeDenied, Actor: store.BootstrapCreator,
			Reason: "an active admin key already exists"})
		return apikey.Key{}, store.APIKey{}, fmt.Errorf("auth: bootstrap refused, an active admin key already exists: %w", errkind.Exists)
	}
	if err != nil {
		return apikey.Key{}, store.APIKey{}, fmt.Errorf("auth: bootstrap: %w", err)
	}
	s.audit(ctx, Event{Time: now, Action: ActionKeyBootstrap, Outcome: OutcomeSuccess, KeyID: rec.KeyID, Actor: store.BootstrapCreator,
		Reason: fmt.Sprintf("name=%q role=admin", name)})
	return key, rec.WithoutHash(), nil
}

// GetKey returns the record of keyID. Errors: errkind.Invalid for a
// malformed id, errkind.NotFound, *authz.PermissionError if actor lacks
// keys.manage or does not cover the key's environments.
func (s *Service) GetKey(ctx context.Context, actor authz.Principal, keyID string) (store.APIKey, error) {
	rec, err := s.getManaged(ctx, actor, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	return rec.WithoutHash(), nil
}

// ListKeys returns the keys actor covers, ordered by creation time. Revoked
// keys are included only if includeRevoked; expired ones always are (check
// store.APIKey.Active).
func (s *Service) ListKeys(ctx context.Context, actor authz.Principal, includeRevoked bool) ([]store.APIKey, error) {
	if err := s.checkManager(actor); err != nil {
		return nil, err
	}
	recs, err := s.store.ListAPIKeys(ctx, includeRevoked)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	out := make([]store.APIKey, 0, len(recs))
	for _, r := range recs {
		if actor.Covers(r.Environments) {
			out = append(out, r.WithoutHash())
		}
	}
	return out, nil
}

// RevokeKey revokes keyID at once: its cache entry in this Service is dropped
// immediately (other Service instances notice within their cache TTL).
// Revoking a revoked key succeeds and keeps the original time. It returns the
// updated record. Errors as for GetKey.
func (s *Service) RevokeKey(ctx context.Context, actor authz.Principal, keyID string) (store.APIKey, error) {
	rec, err := s.getManaged(ctx, actor, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	// Drop the cache entry before and after the write: a concurrent
	// Authenticate that read the record before the write can not leave a
	// stale entry behind for longer than the write takes.
	s.Invalidate(keyID)
	now := s.now()
	if rec.RevokedAt.IsZero() {
		if rec, err = s.store.RevokeAPIKey(ctx, keyID, now); err != nil {
			return store.APIKey{}, s.storeErr("revoke", keyID, err)
		}
		s.audit(ctx, Event{Time: now, Action: ActionKeyRevoke, Outcome: OutcomeSuccess, KeyID: keyID, Actor: actor.KeyID})
	}
	s.Invalidate(keyID)
	return rec.WithoutHash(), nil
}

// SetKeyExpiry sets keyID to expire at at (zero = never; a past time expires
// it immediately) and drops its cache entry. It returns the updated record.
// Errors as for GetKey, plus errkind.Precondition for a revoked key.
func (s *Service) SetKeyExpiry(ctx context.Context, actor authz.Principal, keyID string, at time.Time) (store.APIKey, error) {
	rec, err := s.getManaged(ctx, actor, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	if !rec.RevokedAt.IsZero() {
		return store.APIKey{}, fmt.Errorf("auth: key %q is revoked: %w", keyID, errkind.Precondition)
	}
	s.Invalidate(keyID)
	rec, err = s.store.SetAPIKeyExpiry(ctx, keyID, at)
	if err != nil {
		return store.APIKey{}, s.storeErr("set expiry of", keyID, err)
	}
	s.Invalidate(keyID)
	s.audit(ctx, Event{Time: s.now(), Action: ActionKeySetExpiry, Outcome: OutcomeSuccess, KeyID: keyID, Actor: actor.KeyID,
		Reason: "expires=" + timeString(at)})
	return rec.WithoutHash(), nil
}

// RotateKey replaces keyID with a new key of the same name, role and
// environments, and returns the new key (its Token is shown once), its
// record, and the old key's record as the rotation left it.
// The old key keeps working for grace (0 = the configured default,
// DefaultRotationGrace unless WithRotationGrace; an earlier existing expiry is
// kept), after which it fails authentication; its record's ReplacedBy names
// the new key. The new key gets the old key's lifetime (ExpiresAt − CreatedAt)
// counted from now, or no expiry if the old key had none. Creation of the new
// key and the update of the old one are one atomic store operation.
//
// Errors as for GetKey, plus errkind.Invalid for a negative grace and
// errkind.Precondition if the key is revoked, expired or already rotated.
func (s *Service) RotateKey(ctx context.Context, actor authz.Principal, keyID string, grace time.Duration) (key apikey.Key, rec, previous store.APIKey, err error) {
	if grace < 0 {
		return apikey.Key{}, store.APIKey{}, store.APIKey{}, invalidArg("grace must not be negative")
	}
	if grace == 0 {
		grace = s.grace
	}
	old, err := s.getManaged(ctx, actor, keyID)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, store.APIKey{}, err
	}
	now := s.now()
	switch {
	case !old.RevokedAt.IsZero():
		return apikey.Key{}, store.APIKey{}, store.APIKey{}, fmt.Errorf("auth: key %q is revoked: %w", keyID, errkind.Precondition)
	case old.ReplacedBy != "":
		return apikey.Key{}, store.APIKey{}, store.APIKey{}, fmt.Errorf("auth: key %q was already rotated to %q; rotate that key instead: %w", keyID, old.ReplacedBy, errkind.Precondition)
	case !old.Active(now):
		return apikey.Key{}, store.APIKey{}, store.APIKey{}, fmt.Errorf("auth: key %q has expired: %w", keyID, errkind.Precondition)
	}
	oldExpires := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(oldExpires) {
		oldExpires = old.ExpiresAt
	}
	var newExpires time.Time
	if !old.ExpiresAt.IsZero() {
		if life := old.ExpiresAt.Sub(old.CreatedAt); life > 0 {
			newExpires = now.Add(life)
		}
	}
	s.Invalidate(keyID)
	key, rec, err = s.insert(maxIDAttempts, func(rec store.APIKey) (store.APIKey, error) {
		var created store.APIKey
		previous, created, err = s.store.RotateAPIKey(ctx, keyID, rec, oldExpires)
		return created, err
	}, store.APIKey{Name: old.Name, Role: old.Role, Environments: old.Environments, CreatedAt: now, CreatedBy: actor.KeyID, ExpiresAt: newExpires})
	s.Invalidate(keyID)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, store.APIKey{}, s.storeErr("rotate", keyID, err)
	}
	s.audit(ctx, Event{Time: now, Action: ActionKeyRotate, Outcome: OutcomeSuccess, KeyID: keyID, Actor: actor.KeyID,
		Reason: fmt.Sprintf("replaced by %s; old key expires=%s", rec.KeyID, timeString(previous.ExpiresAt))})
	return key, rec.WithoutHash(), previous.WithoutHash(), nil
}

// insert generates a key for tmpl, fills KeyID and SecretHash, and calls
// write, retrying with a fresh key up to attempts times if the id is taken.
// It returns the record as write stored it.
func (s *Service) insert(attempts int, write func(store.APIKey) (store.APIKey, error), tmpl store.APIKey) (apikey.Key, store.APIKey, error) {
	var err error
	for range attempts {
		key := apikey.Generate()
		rec := tmpl.Clone()
		rec.KeyID = key.ID
		rec.SecretHash = apikey.HashSecretPeppered(s.pepper, key.Secret)
		if rec, err = write(rec); err == nil {
			return key, rec, nil
		}
		if !errors.Is(err, errkind.Exists) {
			break
		}
	}
	return apikey.Key{}, store.APIKey{}, err
}

// checkManager verifies that actor holds keys.manage.
func (s *Service) checkManager(actor authz.Principal) error {
	return actor.Check(authz.PermKeysManage, "")
}

// getManaged loads keyID for a management operation by actor.
func (s *Service) getManaged(ctx context.Context, actor authz.Principal, keyID string) (store.APIKey, error) {
	if err := s.checkManager(actor); err != nil {
		return store.APIKey{}, err
	}
	if !apikey.ValidID(keyID) {
		// Never echo the input: callers sometimes paste a whole token.
		if strings.HasPrefix(keyID, apikey.Prefix) {
			return store.APIKey{}, invalidArg("malformed key id: pass the %d-character key id, not the token", apikey.IDLen)
		}
		return store.APIKey{}, invalidArg("malformed key id (want %d base62 characters)", apikey.IDLen)
	}
	rec, err := s.store.GetAPIKey(ctx, keyID)
	if err != nil {
		return store.APIKey{}, s.storeErr("get", keyID, err)
	}
	if !actor.Covers(rec.Environments) {
		return store.APIKey{}, scopeError(actor, rec.Environments)
	}
	return rec, nil
}

// scopeError reports that actor does not cover envs (empty = all).
func scopeError(actor authz.Principal, envs []string) error {
	missing := ""
	for _, e := range envs {
		if !slices.Contains(actor.Environments, e) {
			missing = e
			break
		}
	}
	return &authz.PermissionError{KeyID: actor.KeyID, Role: actor.Role, Permission: authz.PermKeysManage, Environment: missing, EnvironmentDenied: true}
}

// storeErr normalizes store errors of well-known kinds so that messages do
// not depend on the store implementation (in process or remote).
func (s *Service) storeErr(op, keyID string, err error) error {
	switch k := errkind.Of(err); k {
	case errkind.NotFound, errkind.Exists, errkind.Precondition:
		return fmt.Errorf("auth: %s key %q: %w", op, keyID, k)
	}
	return fmt.Errorf("auth: %s key %q: %w", op, keyID, err)
}

// validateName checks a key name and returns it unchanged.
func validateName(name string) (string, error) {
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxNameLen || !utf8.ValidString(name) {
		return "", invalidArg("key name must be 1 to %d characters of valid UTF-8", MaxNameLen)
	}
	if strings.TrimSpace(name) != name {
		return "", invalidArg("key name must not start or end with white space")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", invalidArg("key name must not contain control or non-printable characters")
		}
	}
	return name, nil
}

// NormalizeEnvironments validates environment names and returns them sorted
// and de-duplicated; nil or empty input yields nil ("all environments").
// A valid name is 1-63 characters of a-z, 0-9, '-' and '_' starting with a
// letter or digit. Errors are of kind errkind.Invalid.
func NormalizeEnvironments(envs []string) ([]string, error) {
	if len(envs) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(envs))
	for _, e := range envs {
		if len(e) > MaxEnvironmentLen {
			return nil, invalidArg("environment name longer than %d characters", MaxEnvironmentLen)
		}
		if !validEnvironment(e) {
			return nil, invalidArg("invalid environment name %q (want 1-%d characters of a-z, 0-9, '-', '_', starting with a letter or digit)", e, MaxEnvironmentLen)
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func validEnvironment(e string) bool {
	if len(e) == 0 || len(e) > MaxEnvironmentLen || e[0] == '-' || e[0] == '_' {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func envString(envs []string) string {
	if len(envs) == 0 {
		return "all"
	}
	return strings.Join(envs, ",")
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
