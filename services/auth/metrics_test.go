package auth_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/telemetry/telemetrytest"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

// TestAttemptMetrics: every Authenticate and Authorize call served over
// Connect, behind the platform's interceptors, is counted once by the
// outcome of its domain error, on the provider the service was handed;
// every outcome's series exists from the start.
func TestAttemptMetrics(t *testing.T) {
	ctx := context.Background()
	rec := telemetrytest.NewRecorder()
	svc := auth.New(sqlitetest.Open(t), auth.WithLogger(testsupport.QuietLogger()),
		auth.WithThrottle(auth.ThrottleConfig{MaxFailures: 2}),
		auth.WithMeterProvider(rec))
	if got := attempts(t, rec); len(got) != 5 || got[auth.AttemptError] != 0 {
		t.Fatalf("before any call: %v, want the 5 outcomes at 0", got)
	}
	admin, _, err := svc.Bootstrap(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	viewer, _, err := svc.CreateKey(ctx, mustPrincipal(t, svc, admin.Token), "v", store.RoleViewer, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := rpc.HandlerOptions()
	if err != nil {
		t.Fatal(err)
	}
	_, h := authv1connect.NewAuthServiceHandler(auth.NewHandler(svc), opts...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := authv1connect.NewAuthServiceClient(srv.Client(), srv.URL)

	// wantCode checks the code each call gets; the metrics are checked
	// below. ok stands for no error.
	wantCode := func(what string, err error, want string) {
		t.Helper()
		got := "ok"
		if err != nil {
			got = connect.CodeOf(err).String()
		}
		if got != want {
			t.Errorf("%s: %s (%v), want %s", what, got, err, want)
		}
	}
	authenticate := func(key, want string) {
		t.Helper()
		_, err := client.Authenticate(ctx, connect.NewRequest(&authv1.AuthenticateRequest{ApiKey: key, Client: "10.0.0.1"}))
		wantCode("Authenticate", err, want)
	}
	authenticate(admin.Token, "ok")
	_, err = client.Authorize(ctx, connect.NewRequest(&authv1.AuthorizeRequest{ApiKey: viewer.Token, Permission: string(authz.PermKeysManage), Client: "10.0.0.1"}))
	wantCode("Authorize", err, "permission_denied")
	authenticate("dotdo_garbage", "unauthenticated")
	authenticate("dotdo_garbage", "unauthenticated")
	authenticate(admin.Token, "resource_exhausted") // the client is cooling down now
	// Refused, but not an Authenticate or Authorize call: not counted.
	_, err = client.ListApiKeys(ctx, connect.NewRequest(&authv1.ListApiKeysRequest{}))
	wantCode("ListApiKeys", err, "unauthenticated")

	want := map[auth.AttemptOutcome]int64{
		auth.AttemptSuccess: 1, auth.AttemptPermissionDenied: 1, auth.AttemptUnauthenticated: 2,
		auth.AttemptThrottled: 1, auth.AttemptError: 0,
	}
	got := attempts(t, rec)
	for o, n := range want {
		if got[o] != n {
			t.Errorf("%s{%s=%s} = %d, want %d (all: %v)", auth.MetricAttempts, auth.AttrOutcome, o, got[o], n, got)
		}
	}
}

func mustPrincipal(t *testing.T, svc *auth.Service, token string) authz.Principal {
	t.Helper()
	p, err := svc.Authenticate(context.Background(), token, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// attempts reads MetricAttempts by outcome, checking its scope.
func attempts(t *testing.T, rec *telemetrytest.Recorder) map[auth.AttemptOutcome]int64 {
	t.Helper()
	v := rec.Collect(t)
	if s := v.Scopes[auth.MetricAttempts]; s != auth.MeterName {
		t.Errorf("%s recorded on scope %q, want %q", auth.MetricAttempts, s, auth.MeterName)
	}
	out := map[auth.AttemptOutcome]int64{}
	for key, n := range v.Points {
		if o, ok := strings.CutPrefix(key, auth.MetricAttempts+" "+auth.AttrOutcome+"="); ok {
			out[auth.AttemptOutcome(o)] = n
		}
	}
	return out
}
