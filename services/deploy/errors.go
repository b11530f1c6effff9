package deploy

import (
	"errors"
	"fmt"

	"github.com/dot-do/platform/services/db/store"
)

// Sentinel errors of the deploy domain. The handler maps them to Connect
// codes through internal/rpcerr (see the init function in handler.go); their
// messages reach clients, so they never hold a secret. Errors of the auth,
// store and backend packages pass through wrapped and keep their own
// mapping.
var (
	// ErrInvalidArgument means a request field is invalid; the error is a
	// *FieldError naming the field. Maps to InvalidArgument.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTooLarge means the worker is over the size limit; the error is a
	// *FieldError naming the field. Maps to ResourceExhausted.
	ErrTooLarge = errors.New("too large")
	// ErrFailedPrecondition means the request is valid but the state does
	// not allow it, for example a rollback to a version that never went
	// live. Maps to FailedPrecondition.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrDeployFailed means a deployment was recorded and failed; the
	// error is a *DeploymentError. It maps to the code of its cause when
	// the cause has one (a script rejected by the backend is
	// InvalidArgument, an unreachable backend Unavailable), else Aborted.
	ErrDeployFailed = errors.New("deployment failed")
	// ErrAuditUnavailable means an audit event could not be written, so the
	// action was refused (fail closed) or its success cannot be reported.
	// Maps to Unavailable.
	ErrAuditUnavailable = errors.New("audit log unavailable")
	// ErrOutcomeUnknown means an upload may or may not have reached the
	// namespace and the namespace could not be asked; the deployment stays
	// pending until the next deploy of the service or Reconcile resolves
	// it. Maps to Unavailable.
	ErrOutcomeUnknown = errors.New("upload outcome unknown")
	// ErrLeaseLost means this process lost the deploy lease while it was
	// deploying (its renewal failed). Maps to Aborted.
	ErrLeaseLost = errors.New("deploy lease lost")
)

// FieldError is an invalid request field. It wraps ErrInvalidArgument or
// ErrTooLarge.
type FieldError struct {
	// Field is the field's path as in the protos, for example "environment"
	// or "modules[2].name".
	Field string
	// Reason says what is wrong.
	Reason string
	// Kind is ErrInvalidArgument or ErrTooLarge.
	Kind error
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns Kind.
func (e *FieldError) Unwrap() error { return e.Kind }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrInvalidArgument}
}

// DeploymentError is a deployment that was recorded and failed (or, with
// ErrOutcomeUnknown or ErrAuditUnavailable, whose outcome is not settled).
// It wraps ErrDeployFailed and its cause.
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

// Unwrap returns the cause and ErrDeployFailed, in that order, so that a
// code of the cause wins.
func (e *DeploymentError) Unwrap() []error { return []error{e.Err, ErrDeployFailed} }
