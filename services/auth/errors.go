package auth

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (test with errors.Is), except storage and audit failures, which are
// passed through wrapped and should map to Internal/Unavailable.
//
// Suggested Connect mapping:
//
//	ErrUnauthenticated    -> CodeUnauthenticated
//	ErrPermissionDenied   -> CodePermissionDenied
//	ErrThrottled          -> CodeResourceExhausted (see ThrottleError.RetryAfter)
//	ErrNotFound           -> CodeNotFound
//	ErrAlreadyExists      -> CodeAlreadyExists
//	ErrInvalidArgument    -> CodeInvalidArgument
//	ErrFailedPrecondition -> CodeFailedPrecondition
//	anything else         -> CodeInternal / CodeUnavailable
var (
	// ErrUnauthenticated is returned, unwrapped and with this exact message,
	// for a missing, malformed, unknown, expired or revoked API key. The
	// specific reason is sent only to the AuditSink.
	ErrUnauthenticated = errors.New("invalid or missing API key")

	// ErrPermissionDenied is wrapped by *PermissionError when an
	// authenticated key lacks a permission or environment.
	ErrPermissionDenied = errors.New("permission denied")

	// ErrThrottled is wrapped by *ThrottleError when a client has made too
	// many failed authentication attempts and is cooling down.
	ErrThrottled = errors.New("too many failed authentication attempts; try again later")

	// ErrNotFound means the requested key does not exist. KeyStore
	// implementations return it (possibly wrapped) from GetKey and friends.
	ErrNotFound = errors.New("not found")

	// ErrAlreadyExists means a key id is taken, or (from Bootstrap /
	// CreateBootstrapKey) that an active admin key already exists.
	ErrAlreadyExists = errors.New("already exists")

	// ErrInvalidArgument means a request parameter (name, role,
	// environment, duration, key id) is invalid.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrFailedPrecondition means the key is not in a state that allows the
	// operation, e.g. rotating a revoked, expired or already rotated key.
	ErrFailedPrecondition = errors.New("failed precondition")
)

// PermissionError describes why an authenticated key was denied. It wraps
// ErrPermissionDenied. Its message names the key id, the missing permission
// and, when the environment is the reason, the environment, e.g.
//
//	key "abc" lacks permission "deployments.create" on environment "production"
type PermissionError struct {
	// KeyID is the id of the denied key (never the secret).
	KeyID string
	// Role is the key's role.
	Role Role
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

// Unwrap returns ErrPermissionDenied.
func (e *PermissionError) Unwrap() error { return ErrPermissionDenied }

// ThrottleError is returned while a client is cooling down after too many
// failed attempts. It wraps ErrThrottled; its message is ErrThrottled's.
type ThrottleError struct {
	// RetryAfter is how long until the client may try again (suitable for a
	// Retry-After header), rounded up to whole seconds.
	RetryAfter time.Duration
}

// Error implements error.
func (e *ThrottleError) Error() string { return ErrThrottled.Error() }

// Unwrap returns ErrThrottled.
func (e *ThrottleError) Unwrap() error { return ErrThrottled }

// invalidArg returns an error wrapping ErrInvalidArgument.
func invalidArg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}
