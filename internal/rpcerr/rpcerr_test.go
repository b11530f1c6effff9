package rpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/rpcerr"
)

func TestToConnect(t *testing.T) {
	dial := connect.NewError(connect.CodeUnavailable, errors.New("dial tcp 127.0.0.1:8082: connect: connection refused"))
	for _, c := range []struct {
		name     string
		err      error
		code     connect.Code
		msg      string // the message must contain this
		mustHide string // and must not contain this
	}{
		{"domain", fmt.Errorf("deployment d1: %w", errkind.NotFound), connect.CodeNotFound, "deployment d1", ""},
		{"sentinel", errkind.New(errkind.Unauthenticated, "invalid or missing API key"), connect.CodeUnauthenticated, "invalid or missing API key", ""},
		{"handler's own", connect.NewError(connect.CodeFailedPrecondition, errors.New("nothing live")), connect.CodeFailedPrecondition, "nothing live", ""},
		{"downstream refusal", rpcerr.FromConnect("auth", connect.NewError(connect.CodePermissionDenied, errors.New("key lacks deployments.create"))), connect.CodePermissionDenied, "deployments.create", ""},
		{"downstream given another kind", errkind.Errorf(errkind.Precondition, "version 3 never went live: %w",
			rpcerr.FromConnect("db", connect.NewError(connect.CodeNotFound, errors.New("no live deployment")))), connect.CodeFailedPrecondition, "never went live", ""},
		{"downstream unreachable", rpcerr.FromConnect("db", dial), connect.CodeUnavailable, "unavailable", "127.0.0.1"},
		{"downstream fault", fmt.Errorf("db: %w", connect.NewError(connect.CodeInternal, errors.New("sql: no rows in /var/lib"))), connect.CodeInternal, "internal error", "sql"},
		{"unmapped", errors.New("disk full at /srv/x"), connect.CodeInternal, "internal error", "/srv"},
		{"internal kind", errkind.Errorf(errkind.Internal, "backend refused token for account %s", "acc-1"), connect.CodeInternal, "internal error", "acc-1"},
		{"context", fmt.Errorf("wait: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "wait", ""},
		{"our credential refused downstream", rpcerr.FromConnect("db", connect.NewError(connect.CodeUnauthenticated, credential.ErrRejected)), connect.CodeInternal, "internal error", "credential"},
		{"a procedure our credential does not grant", rpcerr.FromConnect("db", connect.NewError(connect.CodePermissionDenied, credential.ErrNotGranted)), connect.CodeInternal, "internal error", "credential"},
		{"an interceptor's own refusal", connect.NewError(connect.CodePermissionDenied, credential.ErrNotGranted), connect.CodePermissionDenied, credential.ErrNotGranted.Error(), "permission_denied:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := rpcerr.ToConnect(c.err)
			var cerr *connect.Error
			if !errors.As(got, &cerr) || cerr.Code() != c.code {
				t.Fatalf("ToConnect = %v, want code %v", got, c.code)
			}
			if !strings.Contains(cerr.Message(), c.msg) || (c.mustHide != "" && strings.Contains(cerr.Message(), c.mustHide)) {
				t.Fatalf("message %q: want it to contain %q and not %q", cerr.Message(), c.msg, c.mustHide)
			}
		})
	}
}

// TestFromConnect: an error from another service gets the kind of its
// code and keeps its Connect error.
func TestFromConnect(t *testing.T) {
	down := connect.NewError(connect.CodeAborted, errors.New("lease held by replica-2"))
	err := rpcerr.FromConnect("db", down)
	var cerr *connect.Error
	if errkind.Of(err) != errkind.Conflict || !errors.As(err, &cerr) || cerr != down {
		t.Fatalf("FromConnect = %v (kind %v)", err, errkind.Of(err))
	}
	if got := errkind.Of(rpcerr.FromConnect("db", connect.NewError(connect.CodeUnknown, errors.New("?")))); got != errkind.Other {
		t.Fatalf("Unknown became kind %v", got)
	}
	refused := rpcerr.FromConnect("db", connect.NewError(connect.CodeUnauthenticated, credential.ErrRejected))
	if errkind.Of(refused) != errkind.Internal {
		t.Fatalf("our refused credential is kind %v, want internal", errkind.Of(refused))
	}
	if rpcerr.FromConnect("db", nil) != nil {
		t.Fatal("nil error wrapped")
	}
}

// TestRoundTrip: every kind survives a trip through the wire: a server
// maps it to a code, the client maps the code back to the same kind.
func TestRoundTrip(t *testing.T) {
	for _, k := range errkind.Kinds() {
		code, ok := rpcerr.Code(fmt.Errorf("x: %w", k))
		if !ok {
			t.Fatalf("kind %v has no code", k)
		}
		back := rpcerr.FromConnect("svc", connect.NewError(code, errors.New("x")))
		if got := errkind.Of(back); got != k {
			t.Errorf("kind %v -> %v -> kind %v", k, code, got)
		}
	}
}
