// Package rpcerr maps the domain errors of every service to Connect codes,
// in this one place. Handlers return domain errors; the interceptor from
// NewInterceptor turns them into Connect errors on the way out.
//
// The message of a mapped error reaches the client, so domain errors must
// leak nothing (no secrets, no SQL). An error that maps to no code is an
// internal fault: the client sees only "internal error" and the request's
// trace, and the full error goes to the log.
package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/store"
)

// mapping lists each sentinel error with its code. The first match wins, so
// more specific errors come first.
var mapping = []struct {
	err  error
	code connect.Code
}{
	{auth.ErrUnauthenticated, connect.CodeUnauthenticated},
	{auth.ErrPermissionDenied, connect.CodePermissionDenied},
	{auth.ErrThrottled, connect.CodeResourceExhausted},
	{auth.ErrNotFound, connect.CodeNotFound},
	{auth.ErrAlreadyExists, connect.CodeAlreadyExists},
	{auth.ErrInvalidArgument, connect.CodeInvalidArgument},
	{auth.ErrFailedPrecondition, connect.CodeFailedPrecondition},
	{store.ErrNotFound, connect.CodeNotFound},
	{store.ErrAlreadyExists, connect.CodeAlreadyExists},
	{store.ErrFailedPrecondition, connect.CodeFailedPrecondition},
	{store.ErrLeaseHeld, connect.CodeAborted},
	{store.ErrCorrupt, connect.CodeDataLoss},
	{store.ErrInvalidArgument, connect.CodeInvalidArgument},
	{context.Canceled, connect.CodeCanceled},
	{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
}

// Register adds sentinel errors of another domain package to the mapping.
// It is meant for package init functions of services whose packages
// rpcerr cannot import.
func Register(err error, code connect.Code) {
	mapping = append(mapping, struct {
		err  error
		code connect.Code
	}{err, code})
}

// Code returns the Connect code for err, and false when err maps to none
// (an internal fault).
func Code(err error) (connect.Code, bool) {
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		return cerr.Code(), true
	}
	for _, m := range mapping {
		if errors.Is(err, m.err) {
			return m.code, true
		}
	}
	return connect.CodeInternal, false
}

// FromDownstream wraps err, returned by a call to another service (what
// names it), with the first of sentinels that this package maps to err's
// code, so that callers test the error with errors.Is as they would in
// process. The Connect error stays in the chain; an error whose code no
// sentinel has is only wrapped.
func FromDownstream(what string, err error, sentinels ...error) error {
	if err == nil {
		return nil
	}
	code := connect.CodeOf(err)
	for _, s := range sentinels {
		if c, ok := Code(s); ok && c == code {
			return fmt.Errorf("%s: %w: %w", what, s, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ToConnect turns err into a Connect error. A Connect error returned as
// it is passes through unchanged; one wrapped inside err comes from a
// downstream call (another service, or the dial to it) and passes on its
// code and message, except for faults (Unavailable, Internal, Unknown,
// DataLoss, and an internal service refusing this one's credential), whose
// message would describe the platform's insides (an internal address, a
// stack of wrappers) and is replaced by a generic one.
// A mapped domain error keeps its message; anything else becomes "internal
// error".
func ToConnect(err error) error {
	if err == nil {
		return nil
	}
	cerr := toConnect(err)
	var d detailed
	if errors.As(err, &d) {
		for _, msg := range d.details {
			if detail, derr := connect.NewErrorDetail(msg); derr == nil {
				cerr.AddDetail(detail)
			}
		}
	}
	return cerr
}

func toConnect(err error) *connect.Error {
	if hidden := hide(err); hidden != nil {
		return hidden
	}
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		return cerr
	}
	code, ok := Code(err)
	if !ok {
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(code, err)
}

// WithDetails attaches protobuf messages to err, which ToConnect sends as
// the Connect error's details (for example the deployment a failed deploy
// recorded).
func WithDetails(err error, details ...proto.Message) error {
	return detailed{error: err, details: details}
}

type detailed struct {
	error
	details []proto.Message
}

func (d detailed) Unwrap() error { return d.error }

// fault reports whether code means the server failed, as opposed to the
// caller's request being refused.
func fault(code connect.Code) bool {
	switch code {
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeUnavailable, connect.CodeDataLoss, connect.CodeAborted:
		return true
	}
	return false
}

// hide returns the generic error for a downstream fault wrapped in err, or
// nil.
func hide(err error) *connect.Error {
	var cerr *connect.Error
	if _, outer := err.(*connect.Error); outer || !errors.As(err, &cerr) {
		return nil
	}
	switch cerr.Code() {
	case connect.CodeUnauthenticated:
		// Our own credential refused by an internal service is a fault of
		// the platform's configuration, not the caller's key.
		if cerr.Message() == credential.ErrRejected.Error() {
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}
	case connect.CodeUnavailable:
		return connect.NewError(connect.CodeUnavailable, errors.New("a service this request needs is unavailable; try again"))
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss:
		return connect.NewError(cerr.Code(), errors.New("internal error"))
	}
	return nil
}

// Interceptor maps handler errors with ToConnect and logs internal faults.
type Interceptor struct {
	logger *slog.Logger
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns an interceptor that maps the errors of handlers and
// logs every internal fault on logger, with the procedure.
func NewInterceptor(logger *slog.Logger) *Interceptor { return &Interceptor{logger: logger} }

func (i *Interceptor) mapErr(ctx context.Context, procedure string, err error) error {
	if err == nil {
		return nil
	}
	if code, ok := Code(err); !ok || fault(code) || hide(err) != nil {
		i.logger.ErrorContext(ctx, "request failed", "procedure", procedure, "code", code.String(), "err", err.Error())
	}
	return ToConnect(err)
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if req.Spec().IsClient {
			return res, err
		}
		return res, i.mapErr(ctx, req.Spec().Procedure, err)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return i.mapErr(ctx, conn.Spec().Procedure, next(ctx, conn))
	}
}
