package auth

import (
	"time"

	"github.com/dot-do/platform/internal/errkind"
)

// Errors of the auth service carry the kinds of package errkind; callers
// (in process or over the AuthService) test the kinds: an authentication
// failure is errkind.Unauthenticated, a denied permission
// errkind.Permission (an *authz.PermissionError), a client cooling down
// errkind.Exhausted (a *ThrottleError), a bad parameter errkind.Invalid, a
// missing key errkind.NotFound, a key whose state forbids the operation
// errkind.Precondition and a bootstrap refused because an admin exists
// errkind.Exists. Storage failures pass through wrapped.
var (
	// ErrUnauthenticated is returned, unwrapped and with this exact message,
	// for a missing, malformed, unknown, expired or revoked API key. The
	// specific reason goes only to the audit log.
	ErrUnauthenticated = errkind.New(errkind.Unauthenticated, "invalid or missing API key")

	// ErrThrottled is wrapped by *ThrottleError when a client has made too
	// many failed authentication attempts and is cooling down.
	ErrThrottled = errkind.New(errkind.Exhausted, "too many failed authentication attempts; try again later")
)

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

// invalidArg returns an error of kind errkind.Invalid.
func invalidArg(format string, args ...any) error {
	return errkind.Errorf(errkind.Invalid, format, args...)
}
