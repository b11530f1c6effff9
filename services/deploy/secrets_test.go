package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// wantField checks that err is an invalid-argument *deploy.FieldError
// naming field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var fe *deploy.FieldError
	if !errors.Is(err, errkind.Invalid) || !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("%s: got %v, want an invalid %s", what, err, field)
	}
}

// TestSecrets: put, list and delete through a Memory backend with their
// permissions and validation; the value reaches the backend only, never
// the audit log or an error.
func TestSecrets(t *testing.T) {
	f := newRoutesFixture(t)
	ctx := context.Background()
	const marker = "zz-secret-marker-4711"
	put := func(token, service, env, name, value string) (deploy.SecretInfo, bool, error) {
		return f.svc.PutSecret(ctx, caller(token), deploy.SecretInput{Service: service, Environment: env, Name: name, Value: value})
	}
	// Before the first deploy there is nothing to put a secret on.
	if _, _, err := put(f.keys.Deployer, "api", "production", "TOKEN", marker); !errors.Is(err, errkind.Precondition) || !strings.Contains(err.Error(), "deploy it first") {
		t.Fatalf("put before deploy = %v", err)
	}
	if _, err := f.svc.Deploy(ctx, caller(f.keys.Deployer), deploy.DeployInput{Service: "api", Environment: "production", Script: script("v1")}); err != nil {
		t.Fatal(err)
	}
	info, created, err := put(f.keys.Deployer, "api", "production", "TOKEN", marker)
	if err != nil || !created || info.Name != "TOKEN" || info.UpdatedAt.IsZero() {
		t.Fatalf("put = %+v, %v, %v", info, created, err)
	}
	if v, ok := f.mem.SecretValue("dotdo-production", "api", "TOKEN"); !ok || v != marker {
		t.Fatalf("backend holds %q, %v", v, ok)
	}
	if _, created, err := put(f.keys.Admin, "api", "production", "TOKEN", marker+"2"); err != nil || created {
		t.Fatalf("second put = %v, %v", created, err)
	}
	// A redeploy keeps it.
	if _, err := f.svc.Deploy(ctx, caller(f.keys.Deployer), deploy.DeployInput{Service: "api", Environment: "production", Script: script("v2")}); err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.ListSecrets(ctx, caller(f.keys.Viewer), "api", "production")
	if err != nil || len(list) != 1 || list[0].Name != "TOKEN" || list[0].UpdatedAt.IsZero() {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if list, err := f.svc.ListSecrets(ctx, caller(f.keys.Viewer), "never-deployed", "production"); err != nil || len(list) != 0 {
		t.Fatalf("list of an unknown worker = %+v, %v", list, err)
	}

	// Permissions: a viewer reads only; a staging key stays in staging.
	if _, _, err := put(f.keys.Viewer, "api", "production", "TOKEN", marker); !errors.Is(err, errkind.Permission) {
		t.Fatalf("viewer put = %v", err)
	}
	if err := f.svc.DeleteSecret(ctx, caller(f.keys.Viewer), "api", "production", "TOKEN"); !errors.Is(err, errkind.Permission) {
		t.Fatalf("viewer delete = %v", err)
	}
	if _, _, err := put(f.keys.StagingDeployer, "api", "production", "TOKEN", marker); !errors.Is(err, errkind.Permission) {
		t.Fatalf("staging deployer put on production = %v", err)
	}

	// Validation names the field and never quotes the value.
	for _, name := range []string{"", "1ABC", "A-B", "A.B", "ÄB", strings.Repeat("A", deploy.MaxSecretNameLen+1), deploy.ReservedBindingPrefix + "_NS"} {
		_, _, err := put(f.keys.Deployer, "api", "production", name, marker)
		wantField(t, fmt.Sprintf("name %q", name), err, "name")
	}
	_, _, err = put(f.keys.Deployer, "api", "production", "EMPTY", "")
	wantField(t, "empty value", err, "value")
	_, _, err = put(f.keys.Deployer, "api", "production", "BIG", strings.Repeat("x", deploy.MaxSecretBytes+1))
	wantField(t, "big value", err, "value")
	if _, _, err := put(f.keys.Deployer, "api", "production", "MAX_$1", strings.Repeat("x", deploy.MaxSecretBytes)); err != nil {
		t.Fatalf("5 KiB value: %v", err)
	}
	_, _, err = put(f.keys.Deployer, "API", "production", "TOKEN", marker)
	wantField(t, "bad service", err, "service")
	_, _, err = put(f.keys.Deployer, "api", "nowhere", "TOKEN", marker)
	wantField(t, "bad environment", err, "environment")

	// Delete, then it is gone; a second delete is NotFound.
	if err := f.svc.DeleteSecret(ctx, caller(f.keys.Deployer), "api", "production", "TOKEN"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.mem.SecretValue("dotdo-production", "api", "TOKEN"); ok {
		t.Fatal("deleted secret still in the backend")
	}
	if err := f.svc.DeleteSecret(ctx, caller(f.keys.Deployer), "api", "production", "TOKEN"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("second delete = %v", err)
	}

	// Audited by name, never by value.
	puts := auditActions(t, f.rec, deploy.ActionSecretPut)
	dels := auditActions(t, f.rec, deploy.ActionSecretDelete)
	if len(puts) != 6 || len(dels) != 2 {
		t.Fatalf("%d put and %d delete events, want 6 and 2", len(puts), len(dels))
	}
	for _, e := range append(puts, dels...) {
		if e.Detail["name"] == "" || !strings.HasPrefix(e.Resource, "secret/production/api/") {
			t.Errorf("event %+v does not name the secret", e)
		}
		if strings.Contains(fmt.Sprint(e), marker) {
			t.Errorf("event %+v holds the value", e)
		}
	}
	if puts[0].Outcome != deploy.OutcomeSuccess || puts[1].Outcome != deploy.OutcomeStarted || puts[0].Actor == "" {
		t.Errorf("newest put events = %+v", puts[:2])
	}
}

// TestSecretsNeedABackendThatKeepsThem: a backend without per-script
// secrets refuses them as a precondition.
func TestSecretsNeedABackendThatKeepsThem(t *testing.T) {
	a, keys := deploytest.Auth(t)
	svc, err := deploy.New(deploy.Config{}, a, deploytest.Store(t), noSecrets{backend.NewMemory("dotdo-production")}, deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.PutSecret(context.Background(), caller(keys.Deployer), deploy.SecretInput{Service: "api", Environment: "production", Name: "A", Value: "v"})
	if !errors.Is(err, deploy.ErrNoSecrets) || !errors.Is(err, errkind.Precondition) {
		t.Fatalf("put = %v", err)
	}
}

// noSecrets hides the Secrets methods of a backend.
type noSecrets struct{ backend.Backend }

// TestSecretsHandler runs SecretService through Connect, gRPC and
// gRPC-Web clients: codes, and messages that name the field.
func TestSecretsHandler(t *testing.T) {
	f := newRoutesFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Deploy(ctx, caller(f.keys.Deployer), deploy.DeployInput{Service: "api", Environment: "production", Script: script("v1")}); err != nil {
		t.Fatal(err)
	}
	opts, err := rpc.HandlerOptions(rpc.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("deploy", server.WithLogger(testsupport.QuietLogger()))
	srv.Register(deployv1connect.NewSecretServiceHandler(deploy.NewSecretsHandler(f.svc), opts...))
	url := testsupport.Serve(t, srv)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			client := func(token string) deployv1connect.SecretServiceClient {
				return deployv1connect.NewSecretServiceClient(rpc.HTTPClient(), url, append([]connect.ClientOption{bearer(token)}, p.opts...)...)
			}
			deployer, viewer := client(f.keys.Deployer), client(f.keys.Viewer)
			name := "K_" + p.name
			put := func(c deployv1connect.SecretServiceClient, service, name, value string) (*connect.Response[deployv1.PutSecretResponse], error) {
				return c.PutSecret(ctx, connect.NewRequest(&deployv1.PutSecretRequest{Service: service, Environment: "production", Name: name, Value: value}))
			}
			res, err := put(deployer, "api", name, "v-"+p.name)
			if err != nil || !res.Msg.GetCreated() || res.Msg.GetSecret().GetName() != name || res.Msg.GetSecret().GetUpdatedAt() == nil {
				t.Fatalf("PutSecret = %v, %v", res, err)
			}
			list, err := viewer.ListSecrets(ctx, connect.NewRequest(&deployv1.ListSecretsRequest{Service: "api", Environment: "production"}))
			if err != nil || !slices.ContainsFunc(list.Msg.GetSecrets(), func(s *deployv1.Secret) bool { return s.GetName() == name && s.GetUpdatedAt() != nil }) {
				t.Fatalf("ListSecrets = %v, %v", list, err)
			}
			_, err = put(viewer, "api", name, "x")
			wantCode(t, err, connect.CodePermissionDenied, "secrets.write")
			_, err = put(deployer, "api", "1X", "x")
			wantCode(t, err, connect.CodeInvalidArgument, "name")
			_, err = put(deployer, "api", name, "")
			wantCode(t, err, connect.CodeInvalidArgument, "value")
			_, err = put(deployer, "api", name, strings.Repeat("x", deploy.MaxSecretBytes+1))
			wantCode(t, err, connect.CodeInvalidArgument, "value")
			_, err = put(deployer, "nothing-here", name, "x")
			wantCode(t, err, connect.CodeFailedPrecondition, "deploy it first")
			del := func() error {
				_, err := deployer.DeleteSecret(ctx, connect.NewRequest(&deployv1.DeleteSecretRequest{Service: "api", Environment: "production", Name: name}))
				return err
			}
			if err := del(); err != nil {
				t.Fatalf("DeleteSecret: %v", err)
			}
			wantCode(t, del(), connect.CodeNotFound, name)
		})
	}
}
