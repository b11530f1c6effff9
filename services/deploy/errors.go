package deploy

import (
	"fmt"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

// Errors of the deploy domain carry the kinds of package errkind, which the
// RPC edge maps to Connect codes (internal/rpcerr); their messages reach
// clients, so they never hold a secret. A request field that is wrong is a
// *FieldError (kind Invalid, or Exhausted when it is too large); a state
// that forbids the request is kind Precondition. The sentinels below are
// the cases this package's callers tell apart from others of their kind.
// Errors of the auth, store and backend packages pass through wrapped and
// keep their own kinds.
var (
	// ErrAuditUnavailable means an audit event could not be written, so the
	// action was refused (fail closed) or its success cannot be reported.
	ErrAuditUnavailable = errkind.New(errkind.Unavailable, "audit log unavailable")
	// ErrOutcomeUnknown means an upload may or may not have reached the
	// namespace and the namespace could not be asked; the deployment stays
	// pending until the next deploy of the service or Reconcile resolves
	// it.
	ErrOutcomeUnknown = errkind.New(errkind.Unavailable, "upload outcome unknown")
	// ErrLeaseLost means this process lost the deploy lease while it was
	// deploying (its renewal failed).
	ErrLeaseLost = errkind.New(errkind.Conflict, "deploy lease lost")
)

// FieldError is an invalid request field. Its kind is Kind: errkind.Invalid,
// or errkind.Exhausted for a field over a size limit.
type FieldError struct {
	// Field is the field's path as in the protos, for example "environment"
	// or "modules[2].name".
	Field string
	// Reason says what is wrong.
	Reason string
	// Kind is errkind.Invalid or errkind.Exhausted.
	Kind errkind.Kind
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns Kind.
func (e *FieldError) Unwrap() error { return e.Kind }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: errkind.Invalid}
}

// DeploymentError is a deployment that was recorded and failed (or, with
// ErrOutcomeUnknown or ErrAuditUnavailable, whose outcome is not settled).
// It wraps its cause, and its kind is the cause's (a script rejected by the
// backend is Invalid, an unreachable backend Unavailable), else Conflict:
// the deploy did not happen and may be tried again.
type DeploymentError struct {
	// Deployment is the deployment as recorded.
	Deployment store.Deployment
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *DeploymentError) Error() string {
	d := e.Deployment
	return fmt.Sprintf("deployment %s (version %d of %s in %s) is %s: %v", d.ID, d.Version, d.Service, d.Environment, d.Status, e.Err)
}

// Unwrap returns the cause and errkind.Conflict, in that order, so that a
// kind of the cause wins.
func (e *DeploymentError) Unwrap() []error { return []error{e.Err, errkind.Conflict} }
