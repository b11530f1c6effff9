package rpcerr_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpcerr"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/store"
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
		{"domain", fmt.Errorf("deployment d1: %w", store.ErrNotFound), connect.CodeNotFound, "deployment d1", ""},
		{"auth", auth.ErrUnauthenticated, connect.CodeUnauthenticated, "invalid or missing API key", ""},
		{"handler's own", connect.NewError(connect.CodeFailedPrecondition, errors.New("nothing live")), connect.CodeFailedPrecondition, "nothing live", ""},
		{"downstream refusal", fmt.Errorf("auth: %w", connect.NewError(connect.CodePermissionDenied, errors.New("key lacks deployments.create"))), connect.CodePermissionDenied, "deployments.create", ""},
		{"downstream unreachable", fmt.Errorf("db: %w", dial), connect.CodeUnavailable, "unavailable", "127.0.0.1"},
		{"downstream fault", fmt.Errorf("db: %w", connect.NewError(connect.CodeInternal, errors.New("sql: no rows in /var/lib"))), connect.CodeInternal, "internal error", "sql"},
		{"unmapped", errors.New("disk full at /srv/x"), connect.CodeInternal, "internal error", "/srv"},
		{"our credential refused downstream", fmt.Errorf("db: %w", connect.NewError(connect.CodeUnauthenticated, credential.ErrRejected)), connect.CodeInternal, "internal error", "credential"},
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

// TestFromDownstream: an error from another service gains the sentinel of
// its code and keeps its Connect error.
func TestFromDownstream(t *testing.T) {
	down := connect.NewError(connect.CodeAborted, errors.New("lease held by replica-2"))
	err := rpcerr.FromDownstream("db", down, store.ErrNotFound, store.ErrLeaseHeld)
	var cerr *connect.Error
	if !errors.Is(err, store.ErrLeaseHeld) || errors.Is(err, store.ErrNotFound) || !errors.As(err, &cerr) || cerr != down {
		t.Fatalf("FromDownstream = %v", err)
	}
	other := rpcerr.FromDownstream("db", connect.NewError(connect.CodeUnavailable, errors.New("down")), store.ErrNotFound)
	if errors.Is(other, store.ErrNotFound) || connect.CodeOf(other) != connect.CodeUnavailable {
		t.Fatalf("unmapped code: %v", other)
	}
	if rpcerr.FromDownstream("db", nil) != nil {
		t.Fatal("nil error wrapped")
	}
}
