package auth

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// KeyRecord is the stored form of an API key. It never contains the secret,
// only its hash. Time fields use the zero time for "unset".
type KeyRecord struct {
	// KeyID is the public key id (primary key; 12 base62 characters).
	KeyID string
	// Name is a human-readable label, e.g. "ci-staging".
	Name string
	// Role is the key's role.
	Role Role
	// Environments limits the key to these environments (sorted, unique);
	// empty means all environments.
	Environments []string
	// SecretHash is apikey.HashSecretPeppered(pepper, secret). Service
	// methods strip it (nil) from records they return.
	SecretHash []byte
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// CreatedBy is the key id of the creator, or "bootstrap".
	CreatedBy string
	// ExpiresAt is when the key stops working; zero = never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked; zero = not revoked.
	RevokedAt time.Time
	// LastUsedAt is the last successful authentication, updated at most
	// about once per minute; zero = never used.
	LastUsedAt time.Time
	// ReplacedBy is the id of the key that replaced this one by rotation.
	ReplacedBy string
}

// Active reports whether the key may authenticate at time now: not revoked
// and not expired (a key is expired from ExpiresAt on).
func (r KeyRecord) Active(now time.Time) bool {
	return r.RevokedAt.IsZero() && (r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt))
}

// Clone returns a deep copy of r (slices are not shared).
func (r KeyRecord) Clone() KeyRecord {
	r.Environments = slices.Clone(r.Environments)
	r.SecretHash = slices.Clone(r.SecretHash)
	return r
}

// LogValue implements slog.LogValuer; the secret hash is omitted.
func (r KeyRecord) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key_id", r.KeyID),
		slog.String("name", r.Name),
		slog.String("role", string(r.Role)),
		slog.Any("environments", r.Environments),
	)
}

// withoutHash returns a copy of r that is safe to hand to callers.
func (r KeyRecord) withoutHash() KeyRecord {
	r = r.Clone()
	r.SecretHash = nil
	return r
}

// KeyStore persists API key records. The platform implements it over the DB
// service; MemStore is the in-process implementation. Use
// storetest.Run to check an implementation against this contract.
//
// Implementations must be safe for concurrent use, must not retain or mutate
// the slices of records passed in, and must return records whose slices the
// caller may keep. "Not found" errors must satisfy errors.Is(err,
// ErrNotFound), "already exists" errors errors.Is(err, ErrAlreadyExists).
type KeyStore interface {
	// CreateKey inserts a new record. It fails with ErrAlreadyExists if the
	// key id is taken.
	CreateKey(ctx context.Context, rec KeyRecord) error

	// CreateBootstrapKey inserts rec (an admin key) only if no active admin
	// key exists at rec.CreatedAt (not revoked, ExpiresAt zero or after
	// rec.CreatedAt); otherwise it fails with ErrAlreadyExists. Check and
	// insert must be atomic (one transaction / conditional insert), so that
	// two concurrent bootstraps can not both succeed.
	CreateBootstrapKey(ctx context.Context, rec KeyRecord) error

	// GetKey returns the record for keyID, or ErrNotFound. It is the only
	// store call on the authentication hot path (cache misses).
	GetKey(ctx context.Context, keyID string) (KeyRecord, error)

	// ListKeys returns all records ordered by CreatedAt then KeyID. Revoked
	// keys are included only if includeRevoked; expired keys are always
	// included.
	ListKeys(ctx context.Context, includeRevoked bool) ([]KeyRecord, error)

	// RevokeKey sets RevokedAt to at, or ErrNotFound. Revoking a revoked
	// key succeeds and keeps the original RevokedAt.
	RevokeKey(ctx context.Context, keyID string, at time.Time) error

	// SetKeyExpiry sets ExpiresAt to at (zero clears it), or ErrNotFound.
	SetKeyExpiry(ctx context.Context, keyID string, at time.Time) error

	// TouchKey sets LastUsedAt to at if that is later than the stored
	// value, or ErrNotFound. Called at most about once a minute per key.
	TouchKey(ctx context.Context, keyID string, at time.Time) error

	// ReplaceKey atomically inserts replacement and sets the old key's
	// ExpiresAt to oldExpiresAt and ReplacedBy to replacement.KeyID. It
	// fails with ErrNotFound if the old key does not exist, with
	// ErrFailedPrecondition if it is revoked or already replaced (so two
	// concurrent rotations can not both succeed), and with ErrAlreadyExists
	// if replacement.KeyID is taken. On failure nothing changes.
	ReplaceKey(ctx context.Context, oldKeyID string, replacement KeyRecord, oldExpiresAt time.Time) error
}

// Audit actions recorded by the Service.
const (
	// ActionAuthenticate is a failed authentication (Outcome denied) or a
	// client entering cool-down (Outcome throttled).
	ActionAuthenticate = "auth.authenticate"
	// ActionAuthorize is a permission denial of an authenticated key.
	ActionAuthorize = "auth.authorize"
	// ActionKeyCreate is a key creation.
	ActionKeyCreate = "keys.create"
	// ActionKeyBootstrap is the creation of the bootstrap admin key.
	ActionKeyBootstrap = "keys.bootstrap"
	// ActionKeyRevoke is a key revocation.
	ActionKeyRevoke = "keys.revoke"
	// ActionKeyRotate is a key rotation (KeyID is the old key; Reason names
	// the new one).
	ActionKeyRotate = "keys.rotate"
	// ActionKeySetExpiry is a change of a key's expiry.
	ActionKeySetExpiry = "keys.set_expiry"
)

// Audit outcomes.
const (
	// OutcomeSuccess marks a completed key-management operation.
	OutcomeSuccess = "success"
	// OutcomeDenied marks a failed authentication or authorization.
	OutcomeDenied = "denied"
	// OutcomeThrottled marks a client being put into cool-down.
	OutcomeThrottled = "throttled"
)

// Event is an audit record emitted by the Service. It never contains a token,
// a secret or a secret hash.
type Event struct {
	// Time is when the event happened (the Service clock).
	Time time.Time
	// Action is one of the Action* constants.
	Action string
	// Outcome is one of the Outcome* constants.
	Outcome string
	// KeyID is the key concerned, if known (the key id parsed from a
	// well-formed token, or the managed key). Empty for missing or
	// malformed tokens.
	KeyID string
	// Actor is the key id of the principal that performed a key-management
	// operation ("bootstrap" for Bootstrap); empty for authentication events.
	Actor string
	// Client is the caller-supplied client identifier (remote IP).
	Client string
	// Reason is an internal explanation, e.g. "expired" or "unknown key id".
	// It is for operators only and must never be returned to API callers.
	Reason string
}

// AuditSink receives audit events. The platform implements it over the DB
// service. Record is called synchronously (with a context that is not
// canceled when the request is, but has a timeout); errors are logged and
// otherwise ignored, so a failing sink never turns a denial into a success or
// vice versa. Implementations must be safe for concurrent use.
type AuditSink interface {
	Record(ctx context.Context, ev Event) error
}

// AuditSinkFunc adapts a function to AuditSink.
type AuditSinkFunc func(ctx context.Context, ev Event) error

// Record calls f(ctx, ev).
func (f AuditSinkFunc) Record(ctx context.Context, ev Event) error { return f(ctx, ev) }
