package credential_test

import (
	"context"
	"errors"
	"testing"

	"connectrpc.com/connect"

	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/credential"
)

// TestDefaultPolicy pins who may call what: the table the internal
// services enforce.
func TestDefaultPolicy(t *testing.T) {
	p := credential.DefaultPolicy()
	for _, tc := range []struct {
		caller    credential.Caller
		procedure string
		want      bool
	}{
		{credential.Dispatcher, dbv1connect.DBServiceWatchEnvironmentProcedure, true},
		{credential.Dispatcher, dbv1connect.DBServiceListDeploymentsProcedure, false},
		{credential.Deploy, dbv1connect.DBServicePutRouteTableProcedure, true},
		{credential.Deploy, dbv1connect.DBServiceWatchEnvironmentProcedure, false},
		{credential.Dispatcher, dbv1connect.DBServiceCreateApiKeyProcedure, false},
		{credential.Dispatcher, dbv1connect.DBServiceGetScriptBlobProcedure, false},
		{credential.Dispatcher, authv1connect.AuthServiceAuthenticateProcedure, false},
		{credential.Deploy, dbv1connect.DBServiceBeginDeploymentProcedure, true},
		{credential.Deploy, dbv1connect.DBServiceCreateApiKeyProcedure, false},
		{credential.Deploy, authv1connect.AuthServiceCreateApiKeyProcedure, true},
		{credential.Deploy, authv1connect.AuthServiceBootstrapAdminKeyProcedure, false},
		{credential.Auth, dbv1connect.DBServiceCreateApiKeyProcedure, true},
		{credential.Auth, dbv1connect.DBServiceBeginDeploymentProcedure, false},
		{credential.Bootstrap, authv1connect.AuthServiceBootstrapAdminKeyProcedure, true},
		{credential.Bootstrap, authv1connect.AuthServiceCreateApiKeyProcedure, false},
	} {
		got := false
		for _, proc := range p.Procedures(tc.caller) {
			got = got || proc == tc.procedure
		}
		if got != tc.want {
			t.Errorf("%s may call %s: %v, want %v", tc.caller, tc.procedure, got, tc.want)
		}
	}
	if got := p.CallersOf(dbv1connect.DBServiceName); len(got) != 3 {
		t.Errorf("callers of db: %v, want auth, deploy, dispatcher", got)
	}
	if got := p.CallersOf(authv1connect.AuthServiceName); len(got) != 2 {
		t.Errorf("callers of auth: %v, want bootstrap, deploy", got)
	}
}

// TestVerifier: unknown credentials are Unauthenticated, ungranted
// procedures and requests PermissionDenied.
func TestVerifier(t *testing.T) {
	tokens := map[credential.Caller]string{credential.Dispatcher: "disp-" + credential.Generate(), credential.Deploy: "dep-" + credential.Generate()}
	// The default policy, with the dispatcher also allowed to list live
	// deployments, and only those (a grant with Allow).
	policy := credential.DefaultPolicy()
	policy[credential.Dispatcher] = append(policy[credential.Dispatcher], credential.Grant{
		Procedure: dbv1connect.DBServiceListDeploymentsProcedure,
		Allow: func(req any) error {
			if r, ok := req.(*dbv1.ListDeploymentsRequest); !ok || r.GetStatus() != dbv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE {
				return errors.New("only live deployments")
			}
			return nil
		},
	})
	v := credential.NewVerifier(policy, tokens, nil)
	live := &dbv1.ListDeploymentsRequest{Status: dbv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE}
	for _, tc := range []struct {
		name, tok string
		req       connect.AnyRequest
		code      connect.Code // 0: allowed
	}{
		{"no credential", "", requestFor(dbv1connect.DBServiceListDeploymentsProcedure, live), connect.CodeUnauthenticated},
		{"wrong credential", "nope", requestFor(dbv1connect.DBServiceListDeploymentsProcedure, live), connect.CodeUnauthenticated},
		{"dispatcher lists live", tokens[credential.Dispatcher], requestFor(dbv1connect.DBServiceListDeploymentsProcedure, live), 0},
		{"dispatcher lists all", tokens[credential.Dispatcher], requestFor(dbv1connect.DBServiceListDeploymentsProcedure, &dbv1.ListDeploymentsRequest{}), connect.CodePermissionDenied},
		{"dispatcher mints a key", tokens[credential.Dispatcher], requestFor(dbv1connect.DBServiceCreateApiKeyProcedure, &dbv1.CreateApiKeyRequest{}), connect.CodePermissionDenied},
		{"deploy lists all", tokens[credential.Deploy], requestFor(dbv1connect.DBServiceListDeploymentsProcedure, &dbv1.ListDeploymentsRequest{}), 0},
		{"deploy mints a key", tokens[credential.Deploy], requestFor(dbv1connect.DBServiceCreateApiKeyProcedure, &dbv1.CreateApiKeyRequest{}), connect.CodePermissionDenied},
	} {
		if tc.tok != "" {
			tc.req.Header().Set(credential.Header, tc.tok)
		}
		var caller credential.Caller
		_, err := v.WrapUnary(func(ctx context.Context, _ connect.AnyRequest) (connect.AnyResponse, error) {
			caller, _ = credential.CallerOf(ctx)
			return nil, nil
		})(context.Background(), tc.req)
		switch {
		case tc.code == 0 && (err != nil || caller == ""):
			t.Errorf("%s: %v (caller %q), want allowed", tc.name, err, caller)
		case tc.code != 0 && connect.CodeOf(err) != tc.code:
			t.Errorf("%s: %v, want code %v", tc.name, err, tc.code)
		}
	}
}

// requestFor is a handler's request for procedure carrying msg.
func requestFor[T any](procedure string, msg *T) connect.AnyRequest {
	return &specRequest[T]{Request: connect.NewRequest(msg), spec: connect.Spec{Procedure: procedure}}
}

type specRequest[T any] struct {
	*connect.Request[T]
	spec connect.Spec
}

func (r *specRequest[T]) Spec() connect.Spec { return r.spec }
