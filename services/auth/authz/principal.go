package authz

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

// Principal is the identity of an authenticated API key.
type Principal struct {
	// KeyID is the public id of the key.
	KeyID string
	// Name is the human-readable key name.
	Name string
	// Role is the key's role.
	Role store.Role
	// Environments limits the key to these environments; empty means all.
	// Treat it as read-only.
	Environments []string
	// ExpiresAt is when the key stops working; zero when it never does.
	ExpiresAt time.Time
}

// PrincipalOf returns the principal of the key record k.
func PrincipalOf(k store.APIKey) Principal {
	return Principal{KeyID: k.KeyID, Name: k.Name, Role: k.Role, Environments: slices.Clone(k.Environments), ExpiresAt: k.ExpiresAt}
}

// Outlives reports whether a key expiring at expires (zero: never) would
// outlive p's key. A key never creates or extends a key that outlives it.
func (p Principal) Outlives(expires time.Time) bool {
	return !p.ExpiresAt.IsZero() && (expires.IsZero() || expires.After(p.ExpiresAt))
}

// OutlivesError is the error of a key that would create or extend a key
// beyond its own expiry; its kind is errkind.Permission.
func (p Principal) OutlivesError(expires time.Time, now time.Time) error {
	want := "no expiry"
	if !expires.IsZero() {
		want = "expiry " + expires.UTC().Format(time.RFC3339)
	}
	left := p.ExpiresAt.Sub(now).Truncate(time.Second)
	return errkind.Errorf(errkind.Permission,
		"key %q expires at %s and cannot make a key that outlives it (%s asked): give it a ttl of at most %s, or use a key without expiry",
		p.KeyID, p.ExpiresAt.UTC().Format(time.RFC3339), want, max(left, 0))
}

// String returns a short description without any secret, e.g.
// `key "abc" (deployer; staging)`.
func (p Principal) String() string {
	scope := "all environments"
	if len(p.Environments) > 0 {
		scope = strings.Join(p.Environments, ",")
	}
	return fmt.Sprintf("key %q (%s; %s)", p.KeyID, p.Role, scope)
}

// LogValue implements slog.LogValuer.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_id", p.KeyID),
		slog.String("role", string(p.Role)),
		slog.Any("environments", p.Environments),
	)
}

// Clone returns p with its own Environments slice.
func (p Principal) Clone() Principal {
	p.Environments = slices.Clone(p.Environments)
	return p
}

// Has reports whether p's role grants perm, whatever the environment.
func (p Principal) Has(perm Permission) bool { return Grants(p.Role, perm) }

// AllowsEnvironment reports whether the key's environment scope includes env.
// An unrestricted key allows every environment, including "" (meaning "all
// environments / not environment-specific"); a restricted key never allows "".
func (p Principal) AllowsEnvironment(env string) bool {
	if len(p.Environments) == 0 {
		return true
	}
	return env != "" && slices.Contains(p.Environments, env)
}

// Covers reports whether p's environment scope includes all of envs, where an
// empty envs means "all environments". A key manager may only manage keys it
// covers, so a staging-only admin can not mint or revoke production keys.
func (p Principal) Covers(envs []string) bool {
	if len(p.Environments) == 0 {
		return true
	}
	if len(envs) == 0 {
		return false
	}
	for _, e := range envs {
		if !slices.Contains(p.Environments, e) {
			return false
		}
	}
	return true
}

// Check returns nil if p may use permission perm on environment env, and a
// *PermissionError (kind errkind.Permission) otherwise. For permissions
// that are not environment-scoped, env is ignored; callers pass "". For
// scoped permissions, env "" means "across all environments" and is allowed
// only for unrestricted keys.
func (p Principal) Check(perm Permission, env string) error {
	if !perm.Valid() || !p.Has(perm) {
		return &PermissionError{KeyID: p.KeyID, Role: p.Role, Permission: perm}
	}
	if perm.EnvironmentScoped() && !p.AllowsEnvironment(env) {
		return &PermissionError{KeyID: p.KeyID, Role: p.Role, Permission: perm, Environment: env, EnvironmentDenied: true}
	}
	return nil
}

// PermissionError describes why an authenticated key was denied. Its kind
// is errkind.Permission. Its message names the key id, the missing
// permission and, when the environment is the reason, the environment, e.g.
//
//	key "abc" lacks permission "deployments.create" on environment "production"
type PermissionError struct {
	// KeyID is the id of the denied key (never the secret).
	KeyID string
	// Role is the key's role.
	Role store.Role
	// Permission is the permission that was required.
	Permission Permission
	// Environment is the environment that was requested; set only when the
	// role has the permission but the key's environment scope excludes it.
	Environment string
	// EnvironmentDenied reports that the environment scope, not the role, is
	// the reason for the denial.
	EnvironmentDenied bool
}

// Error implements error.
func (e *PermissionError) Error() string {
	switch {
	case !e.Permission.Valid():
		return fmt.Sprintf("key %q lacks unknown permission %q", e.KeyID, string(e.Permission))
	case !e.EnvironmentDenied:
		return fmt.Sprintf("key %q lacks permission %q (role %q)", e.KeyID, string(e.Permission), string(e.Role))
	case e.Environment == "":
		return fmt.Sprintf("key %q lacks permission %q on all environments (the key is limited to specific environments; name one)", e.KeyID, string(e.Permission))
	default:
		return fmt.Sprintf("key %q lacks permission %q on environment %q", e.KeyID, string(e.Permission), e.Environment)
	}
}

// Unwrap returns errkind.Permission.
func (e *PermissionError) Unwrap() error { return errkind.Permission }
