package store

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Role is what an API key may do.
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

// BootstrapCreator is the CreatedBy of the key made by CreateBootstrapApiKey.
const BootstrapCreator = "bootstrap"

// MaxEnvironments bounds ApiKey.Environments.
const MaxEnvironments = 64

// ApiKey is the stored record of an API key. The secret itself is never
// stored, only its SHA-256; String and GoString omit it so the record can be
// logged.
type ApiKey struct {
	// KeyID is the public, unique id of the key.
	KeyID string
	Name  string
	Role  Role
	// Environments the key may act on; empty means all.
	Environments []string
	// SecretHash is the 32-byte SHA-256 of the secret.
	SecretHash []byte
	CreatedAt  time.Time
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
func (k ApiKey) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// AllowsEnvironment reports whether k may act on env.
func (k ApiKey) AllowsEnvironment(env string) bool {
	return len(k.Environments) == 0 || slices.Contains(k.Environments, env)
}

// String describes k without its secret hash.
func (k ApiKey) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ApiKey{KeyID:%q Name:%q Role:%s Environments:%q CreatedBy:%q CreatedAt:%s",
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
func (k ApiKey) GoString() string { return k.String() }

// Normalize validates k for creation and returns it with CreatedAt
// defaulted to now, a copied SecretHash and Environments, and RevokedAt,
// LastUsedAt and ReplacedBy cleared. Errors wrap ErrInvalidArgument and
// never include the secret hash.
func (k ApiKey) Normalize(now time.Time) (ApiKey, error) {
	if err := checkName("key id", k.KeyID, true); err != nil {
		return k, err
	}
	if strings.ContainsFunc(k.KeyID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return k, fmt.Errorf("key id contains spaces or control characters: %w", ErrInvalidArgument)
	}
	if err := checkName("key name", k.Name, false); err != nil {
		return k, err
	}
	if !k.Role.Valid() {
		return k, fmt.Errorf("role %q is not admin, deployer or viewer: %w", k.Role, ErrInvalidArgument)
	}
	if len(k.SecretHash) != sha256.Size {
		return k, fmt.Errorf("secret hash is %d bytes, want %d: %w", len(k.SecretHash), sha256.Size, ErrInvalidArgument)
	}
	if err := checkName("created by", k.CreatedBy, true); err != nil {
		return k, err
	}
	if len(k.Environments) > MaxEnvironments {
		return k, fmt.Errorf("%d environments, more than %d: %w", len(k.Environments), MaxEnvironments, ErrInvalidArgument)
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
