// Package rpcerr is the RPC edge of the platform's errors: it maps the
// kinds of package errkind to Connect codes, in this one table, both ways.
// Handlers return domain errors, and the interceptor from NewInterceptor
// turns them into Connect errors on the way out (ToConnect); clients of
// another service turn the Connect errors they get back into errors of the
// same kinds (FromConnect), so callers test errors.Is(err, errkind.NotFound)
// whether the service they called is in process or remote.
//
// The message of a mapped error reaches the client, so domain errors must
// leak nothing (no secrets, no SQL). An error of no kind, or of kind
// Internal, is an internal fault: the client sees only "internal error",
// and the full error goes to the log.
package rpcerr

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/errkind"
)

// codes is the one table of kinds and Connect codes. Every kind but Other
// has one code; FromConnect reads it backwards.
var codes = map[errkind.Kind]connect.Code{
	errkind.Invalid:         connect.CodeInvalidArgument,
	errkind.NotFound:        connect.CodeNotFound,
	errkind.Exists:          connect.CodeAlreadyExists,
	errkind.Precondition:    connect.CodeFailedPrecondition,
	errkind.Permission:      connect.CodePermissionDenied,
	errkind.Unauthenticated: connect.CodeUnauthenticated,
	errkind.Exhausted:       connect.CodeResourceExhausted,
	errkind.Conflict:        connect.CodeAborted,
	errkind.Unavailable:     connect.CodeUnavailable,
	errkind.Corrupt:         connect.CodeDataLoss,
	errkind.Internal:        connect.CodeInternal,
}

// kinds is codes inverted, plus the codes no kind produces.
var kinds = func() map[connect.Code]errkind.Kind {
	m := map[connect.Code]errkind.Kind{
		connect.CodeOutOfRange:    errkind.Invalid,
		connect.CodeUnimplemented: errkind.Internal,
	}
	for k, c := range codes {
		m[c] = k
	}
	return m
}()

// Code returns the Connect code of err: its own when it is a Connect
// error, else that of its kind, else Canceled or DeadlineExceeded for a
// context error. The second result is false when err maps to no code (an
// internal fault: CodeInternal).
func Code(err error) (connect.Code, bool) {
	var cerr *connect.Error
	if errors.As(err, &cerr) {
		return cerr.Code(), true
	}
	if c, ok := codes[errkind.Of(err)]; ok {
		return c, true
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled, true
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded, true
	}
	return connect.CodeInternal, false
}

// kindCode is Code for an error whose kind, when it has one, wins over the
// code of a Connect error it wraps (a domain layer that gave a downstream
// error a kind of its own).
func kindCode(err error) (connect.Code, bool) {
	if c, ok := codes[errkind.Of(err)]; ok {
		return c, true
	}
	return Code(err)
}

// KindOf returns the kind that code stands for (Other for Unknown,
// Canceled and DeadlineExceeded, which are no kind of the domain's).
func KindOf(code connect.Code) errkind.Kind { return kinds[code] }

// FromConnect turns err, returned by a call to another service (what names
// it), into an error of the kind of its code, so that callers test it with
// errors.Is(err, errkind.X) as they would in process. The Connect error
// stays in the chain, so its code and message can pass on to this
// service's own caller (see ToConnect). Our own internal credential
// refused downstream is a fault of the platform's configuration, never the
// caller's: it becomes Internal, not Unauthenticated.
func FromConnect(what string, err error) error {
	if err == nil {
		return nil
	}
	code := connect.CodeOf(err)
	k := KindOf(code)
	var cerr *connect.Error
	if errors.As(err, &cerr) && ((code == connect.CodeUnauthenticated && cerr.Message() == credential.ErrRejected.Error()) ||
		(code == connect.CodePermissionDenied && cerr.Message() == credential.ErrNotGranted.Error())) {
		k = errkind.Internal
	}
	return errkind.Errorf(k, "%s: %w", what, err)
}

// ToConnect turns err into a Connect error. A Connect error returned as it
// is passes through unchanged; one wrapped inside err comes from a
// downstream call (another service, or the dial to it) and passes on its
// code and message, except for faults (Unavailable, Internal, Unknown,
// DataLoss, and an internal service refusing this one's credential), whose
// message would describe the platform's insides (an internal address, a
// stack of wrappers) and is replaced by a generic one.
// An error of a kind keeps its message and gets the kind's code; an error
// of kind Internal or of no kind becomes "internal error".
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
	if cerr, ok := err.(*connect.Error); ok {
		// Returned as it is (an interceptor's refusal): unchanged.
		return cerr
	}
	if hidden := hide(err); hidden != nil {
		return hidden
	}
	var cerr *connect.Error
	if errors.As(err, &cerr) && errkind.Of(err) == KindOf(cerr.Code()) {
		// A downstream error passed on as it came: its code and message.
		return cerr
	}
	code, ok := kindCode(err)
	if !ok || code == connect.CodeInternal {
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
	case connect.CodePermissionDenied:
		// So is a procedure our credential does not grant.
		if cerr.Message() == credential.ErrNotGranted.Error() {
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
