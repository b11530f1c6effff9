package store

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dot-do/platform/internal/errkind"
)

// Role is what an API key may do; package authz (of the auth service)
// holds the permissions each role grants.
type Role string

// API key roles.
const (
	RoleAdmin    Role = "admin"
	RoleDeployer Role = "deployer"
	RoleViewer   Role = "viewer"
)

// Valid reports whether r is a defined role.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleDeployer || r == RoleViewer
}

// String returns the role name.
func (r Role) String() string { return string(r) }

// BootstrapCreator is the CreatedBy of the key made by CreateBootstrapAPIKey.
const BootstrapCreator = "bootstrap"

// ActionAPIKeyStored is the action of the audit event a store appends, in
// the same transaction, for every key it stores: created, bootstrapped or
// made by a rotation. Its actor is the key's CreatedBy, its resource
// "api_key/<key id>", and its detail says which operation ("op": create,
// bootstrap, rotate), the key's role, environments and expiry.
const ActionAPIKeyStored = "apikey.stored"

// MaxEnvironments bounds APIKey.Environments.
const MaxEnvironments = 64

// APIKey is the record of an API key: the one key model of the platform,
// stored by this package and managed by the auth service. The secret itself
// is never stored, only its hash; String, GoString and LogValue omit even
// that, so the record can be logged.
type APIKey struct {
	// KeyID is the public, unique id of the key.
	KeyID string
	// Name is a human-readable label, e.g. "ci-staging".
	Name string
	// Role is the key's role.
	Role Role
	// Environments the key may act on (unique); empty means all.
	Environments []string
	// SecretHash is the 32-byte SHA-256 of the secret (HMAC-SHA-256 when
	// the auth service has a pepper). Records the auth service hands out
	// have none (WithoutHash).
	SecretHash []byte
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// CreatedBy is the key id of the creator or BootstrapCreator.
	CreatedBy string
	// ExpiresAt, RevokedAt and LastUsedAt are zero when unset.
	ExpiresAt  time.Time
	RevokedAt  time.Time
	LastUsedAt time.Time
	// ReplacedBy is the key id that replaced this one on rotation.
	ReplacedBy string
}

// Active reports whether k is neither revoked nor expired at now.
func (k APIKey) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// AllowsEnvironment reports whether k may act on env.
func (k APIKey) AllowsEnvironment(env string) bool {
	return len(k.Environments) == 0 || slices.Contains(k.Environments, env)
}

// Clone returns a deep copy of k (slices are not shared).
func (k APIKey) Clone() APIKey {
	k.Environments = slices.Clone(k.Environments)
	k.SecretHash = slices.Clone(k.SecretHash)
	return k
}

// WithoutHash returns a copy of k without its secret hash, safe to hand to
// a caller outside the auth service.
func (k APIKey) WithoutHash() APIKey {
	k = k.Clone()
	k.SecretHash = nil
	return k
}

// LogValue implements slog.LogValuer; the secret hash is omitted.
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_id", k.KeyID),
		slog.String("name", k.Name),
		slog.String("role", string(k.Role)),
		slog.Any("environments", k.Environments),
	)
}

// String describes k without its secret hash.
func (k APIKey) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "APIKey{KeyID:%q Name:%q Role:%s Environments:%q CreatedBy:%q CreatedAt:%s",
		k.KeyID, k.Name, k.Role, k.Environments, k.CreatedBy, k.CreatedAt.Format(time.RFC3339))
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"ExpiresAt", k.ExpiresAt}, {"RevokedAt", k.RevokedAt}, {"LastUsedAt", k.LastUsedAt}} {
		if !t.v.IsZero() {
			fmt.Fprintf(&b, " %s:%s", t.name, t.v.Format(time.RFC3339))
		}
	}
	if k.ReplacedBy != "" {
		fmt.Fprintf(&b, " ReplacedBy:%q", k.ReplacedBy)
	}
	b.WriteString(" SecretHash:[redacted]}")
	return b.String()
}

// GoString is String, so %#v does not print the secret hash either.
func (k APIKey) GoString() string { return k.String() }

// Normalize validates k for creation and returns it with CreatedAt
// defaulted to now, a copied SecretHash and Environments, and RevokedAt,
// LastUsedAt and ReplacedBy cleared. Errors wrap errkind.Invalid and
// never include the secret hash.
func (k APIKey) Normalize(now time.Time) (APIKey, error) {
	if err := checkName("key id", k.KeyID, true); err != nil {
		return k, err
	}
	if strings.ContainsFunc(k.KeyID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return k, fmt.Errorf("key id contains spaces or control characters: %w", errkind.Invalid)
	}
	if err := checkName("key name", k.Name, false); err != nil {
		return k, err
	}
	if !k.Role.Valid() {
		return k, fmt.Errorf("role %q is not admin, deployer or viewer: %w", k.Role, errkind.Invalid)
	}
	if len(k.SecretHash) != sha256.Size {
		return k, fmt.Errorf("secret hash is %d bytes, want %d: %w", len(k.SecretHash), sha256.Size, errkind.Invalid)
	}
	if err := checkName("created by", k.CreatedBy, true); err != nil {
		return k, err
	}
	if len(k.Environments) > MaxEnvironments {
		return k, fmt.Errorf("%d environments, more than %d: %w", len(k.Environments), MaxEnvironments, errkind.Invalid)
	}
	var envs []string
	for _, e := range k.Environments {
		if err := checkName("environment", e, true); err != nil {
			return k, err
		}
		if !slices.Contains(envs, e) {
			envs = append(envs, e)
		}
	}
	k.Environments = envs
	k.SecretHash = slices.Clone(k.SecretHash)
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	k.CreatedAt = Timestamp(k.CreatedAt)
	k.ExpiresAt = Timestamp(k.ExpiresAt)
	k.RevokedAt, k.LastUsedAt, k.ReplacedBy = time.Time{}, time.Time{}, ""
	return k, nil
}
