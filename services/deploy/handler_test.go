package deploy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// serve runs the deploy server as the platform wires it (Connect, gRPC,
// gRPC-Web and REST through vanguard) on a loopback port.
func serve(t *testing.T, f *fixture) string {
	t.Helper()
	opts, err := rpc.HandlerOptions(rpc.WithReadMaxBytes(f.svc.Config().ReadMaxBytes()), rpc.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("deploy", server.WithLogger(testsupport.QuietLogger()), server.WithREST(), server.WithMiddleware(deploy.RESTCompat))
	srv.Register(deployv1connect.NewDeployServiceHandler(deploy.NewHandler(f.svc), opts...))
	admin := deploy.NewAdmin(f.auth, deploytest.LocalKeyManager(f.auth), f.store, deploy.WithLogger(testsupport.QuietLogger()))
	srv.Register(deployv1connect.NewAdminServiceHandler(deploy.NewAdminHandler(admin), opts...))
	return testsupport.Serve(t, srv)
}

var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// bearer makes a client send token.
func bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}))
}

// wantCode fails t unless err is a Connect error with code and a message
// containing contains, and returns the error's details.
func wantCode(t *testing.T, err error, code connect.Code, contains string) []*connect.ErrorDetail {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != code || !strings.Contains(cerr.Message(), contains) {
		t.Fatalf("err = %v, want %v containing %q", err, code, contains)
	}
	return cerr.Details()
}

// TestHandler runs the Deploy API through Connect, gRPC and gRPC-Web
// clients.
func TestHandler(t *testing.T) {
	mem := backend.NewMemory()
	f := newFixture(t, withBackend(mem), withConfig(func(c *deploy.Config) {
		c.MaxScriptBytes = 64 << 10
		c.URLTemplate = "https://{service}.{environment}.example.com"
	}))
	url := serve(t, f)
	ctx := context.Background()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			client := func(token string) deployv1connect.DeployServiceClient {
				return deployv1connect.NewDeployServiceClient(rpc.HTTPClient(), url, append([]connect.ClientOption{bearer(token)}, p.opts...)...)
			}
			deployer := client(f.keys.Deployer)
			service := "svc-" + p.name
			res, err := deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{
				Service: service, Environment: "production", Script: script("v1"),
				Metadata: &deployv1.Metadata{Commit: "abc123", Branch: "main", Author: "github-actions", Labels: map[string]string{"pr": "7"}},
			}))
			if err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			d := res.Msg.GetDeployment()
			if d.GetStatus() != deployv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE || d.GetVersion() != 1 || d.GetKind() != deployv1.DeploymentKind_DEPLOYMENT_KIND_DEPLOY ||
				d.GetMetadata().GetCommit() != "abc123" || d.GetMetadata().GetLabels()["pr"] != "7" || d.GetActor().GetName() != "test-deployer" ||
				d.GetMainModule() != "index.js" || d.GetCreatedAt() == nil || d.GetFinishedAt() == nil ||
				res.Msg.GetUrl() != "https://"+service+".production.example.com" {
				t.Fatalf("Deploy response %v", res.Msg)
			}
			if _, err := deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{
				Service: service, Environment: "production",
				Modules: []*deployv1.Module{{Name: "main.js", Content: script("v2")}, {Name: "x.bin", Content: []byte{1}, Type: deployv1.ModuleType_MODULE_TYPE_TEXT}},
			})); err != nil {
				t.Fatalf("Deploy modules: %v", err)
			}
			rb, err := deployer.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{Service: service, Environment: "production", Reason: "bad"}))
			if err != nil || rb.Msg.GetDeployment().GetRestoredVersion() != 1 || rb.Msg.GetDeployment().GetKind() != deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK {
				t.Fatalf("Rollback: %v, %v", rb, err)
			}
			viewer := client(f.keys.Viewer)
			list, err := viewer.ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{Service: service, PageSize: 2}))
			if err != nil || len(list.Msg.GetDeployments()) != 2 || list.Msg.GetNextPageToken() == "" {
				t.Fatalf("ListDeployments: %v, %v", list, err)
			}
			list, err = viewer.ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{Service: service, PageToken: list.Msg.GetNextPageToken(), PageSize: 2}))
			if err != nil || len(list.Msg.GetDeployments()) != 1 || list.Msg.GetDeployments()[0].GetVersion() != 1 {
				t.Fatalf("ListDeployments page 2: %v, %v", list, err)
			}
			live, err := viewer.ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{Service: service, Status: deployv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE}))
			if err != nil || len(live.Msg.GetDeployments()) != 1 || live.Msg.GetDeployments()[0].GetVersion() != 3 {
				t.Fatalf("ListDeployments live: %v, %v", live, err)
			}
			got, err := viewer.GetDeployment(ctx, connect.NewRequest(&deployv1.GetDeploymentRequest{Id: d.GetId()}))
			if err != nil || got.Msg.GetDeployment().GetStatus() != deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUPERSEDED {
				t.Fatalf("GetDeployment: %v, %v", got, err)
			}
			info, err := viewer.GetServiceInfo(ctx, connect.NewRequest(&deployv1.GetServiceInfoRequest{}))
			if err != nil || info.Msg.GetName() != "dotdo-deploy" || info.Msg.GetBackend() != "memory" || len(info.Msg.GetEnvironments()) != 3 {
				t.Fatalf("GetServiceInfo: %v, %v", info, err)
			}
			health, err := viewer.Health(ctx, connect.NewRequest(&deployv1.HealthRequest{}))
			if err != nil || health.Msg.GetStatus() != "ok" || len(health.Msg.GetDependencies()) != 3 {
				t.Fatalf("Health: %v, %v", health, err)
			}
			nss, err := viewer.ListNamespaces(ctx, connect.NewRequest(&deployv1.ListNamespacesRequest{}))
			if err != nil || len(nss.Msg.GetNamespaces()) != 3 || !nss.Msg.GetNamespaces()[0].GetExists() {
				t.Fatalf("ListNamespaces: %v, %v", nss, err)
			}
			ens, err := client(f.keys.Admin).EnsureNamespaces(ctx, connect.NewRequest(&deployv1.EnsureNamespacesRequest{Environments: []string{"staging"}}))
			if err != nil || len(ens.Msg.GetNamespaces()) != 1 || len(ens.Msg.GetCreated()) != 0 {
				t.Fatalf("EnsureNamespaces: %v, %v", ens, err)
			}

			// Errors, mapped in one place.
			_, err = client("").Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "production", Script: script("x")}))
			wantCode(t, err, connect.CodeUnauthenticated, "API key")
			_, err = viewer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "production", Script: script("x")}))
			wantCode(t, err, connect.CodePermissionDenied, "deployments.create")
			_, err = deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "prod", Script: script("x")}))
			wantCode(t, err, connect.CodeInvalidArgument, "environment")
			_, err = deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "production", Script: script("x"),
				Tags: []string{"a", "b", "c", "d", "e", "f", "g"}})) // the platform adds two of Cloudflare's 8
			wantCode(t, err, connect.CodeInvalidArgument, "tags")
			_, err = deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "production", Script: make([]byte, 64<<10+1)}))
			wantCode(t, err, connect.CodeResourceExhausted, "script")
			_, err = deployer.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{Service: service, Environment: "production", Version: 42}))
			wantCode(t, err, connect.CodeNotFound, "version 42")
			_, err = deployer.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{Service: service, Environment: "production", Version: 3}))
			wantCode(t, err, connect.CodeFailedPrecondition, "live already")
			_, err = viewer.GetDeployment(ctx, connect.NewRequest(&deployv1.GetDeploymentRequest{Id: "dep_missing"}))
			wantCode(t, err, connect.CodeNotFound, "")

			// A failed deploy: the code of its cause, the deployment as
			// an error detail.
			mem.SetUploadHook(func(context.Context, string, backend.Script) error {
				return &backend.Error{Op: "upload", Status: 400, Sentinel: backend.ErrRejected, Message: "Uncaught SyntaxError"}
			})
			_, err = deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "production", Script: script("x")}))
			mem.SetUploadHook(nil)
			details := wantCode(t, err, connect.CodeInvalidArgument, "Uncaught SyntaxError")
			var failed *deployv1.Deployment
			for _, det := range details {
				if v, err := det.Value(); err == nil {
					failed, _ = v.(*deployv1.Deployment)
				}
			}
			if failed.GetStatus() != deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED || failed.GetVersion() != 4 || !strings.Contains(failed.GetError(), "SyntaxError") {
				t.Fatalf("error detail %v", failed)
			}
		})
	}
}

// TestAdminHandler runs AdminService through Connect and gRPC.
func TestAdminHandler(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	url := serve(t, f)
	ctx := context.Background()
	for _, p := range protocols[:2] {
		t.Run(p.name, func(t *testing.T) {
			admin := deployv1connect.NewAdminServiceClient(rpc.HTTPClient(), url, append([]connect.ClientOption{bearer(f.keys.Admin)}, p.opts...)...)
			created, err := admin.CreateApiKey(ctx, connect.NewRequest(&deployv1.CreateApiKeyRequest{Name: "ci-" + p.name, Role: authv1.Role_ROLE_DEPLOYER, Environments: []string{"staging"}}))
			if err != nil || created.Msg.GetSecret() == "" || created.Msg.GetApiKey().GetRole() != authv1.Role_ROLE_DEPLOYER {
				t.Fatalf("CreateAPIKey: %v, %v", created, err)
			}
			// The new key deploys to staging.
			if _, err := f.deploy(created.Msg.GetSecret(), "staging", "web", "x"); err != nil {
				t.Fatalf("deploy with the new key: %v", err)
			}
			keys, err := admin.ListApiKeys(ctx, connect.NewRequest(&deployv1.ListApiKeysRequest{}))
			if err != nil || len(keys.Msg.GetApiKeys()) < 5 {
				t.Fatalf("ListAPIKeys: %v, %v", keys, err)
			}
			rot, err := admin.RotateApiKey(ctx, connect.NewRequest(&deployv1.RotateApiKeyRequest{KeyId: created.Msg.GetApiKey().GetKeyId()}))
			if err != nil || rot.Msg.GetSecret() == "" || rot.Msg.GetPrevious().GetReplacedBy() != rot.Msg.GetApiKey().GetKeyId() || rot.Msg.GetPrevious().GetExpiresAt() == nil {
				t.Fatalf("RotateAPIKey: %v, %v", rot, err)
			}
			rev, err := admin.RevokeApiKey(ctx, connect.NewRequest(&deployv1.RevokeApiKeyRequest{KeyId: rot.Msg.GetApiKey().GetKeyId()}))
			if err != nil || rev.Msg.GetApiKey().GetRevokedAt() == nil {
				t.Fatalf("RevokeAPIKey: %v, %v", rev, err)
			}
			if _, err := f.deploy(rot.Msg.GetSecret(), "staging", "web", "x"); err == nil {
				t.Fatal("a revoked key deployed")
			}
			events, err := admin.ListAuditEvents(ctx, connect.NewRequest(&deployv1.ListAuditEventsRequest{Action: deploy.ActionKeyRotate}))
			if err != nil || len(events.Msg.GetEvents()) == 0 || events.Msg.GetEvents()[0].GetResource() != "apikey/"+created.Msg.GetApiKey().GetKeyId() {
				t.Fatalf("ListAuditEvents: %v, %v", events, err)
			}
			v, err := admin.VerifyAuditLog(ctx, connect.NewRequest(&deployv1.VerifyAuditLogRequest{}))
			if err != nil || !v.Msg.GetOk() || v.Msg.GetChecked() == 0 {
				t.Fatalf("VerifyAuditLog: %v, %v", v, err)
			}
			for _, tok := range []string{f.keys.Deployer, f.keys.Viewer} {
				other := deployv1connect.NewAdminServiceClient(rpc.HTTPClient(), url, append([]connect.ClientOption{bearer(tok)}, p.opts...)...)
				_, err := other.CreateApiKey(ctx, connect.NewRequest(&deployv1.CreateApiKeyRequest{Name: "x", Role: authv1.Role_ROLE_ADMIN}))
				wantCode(t, err, connect.CodePermissionDenied, "keys.manage")
				_, err = other.ListAuditEvents(ctx, connect.NewRequest(&deployv1.ListAuditEventsRequest{}))
				wantCode(t, err, connect.CodePermissionDenied, "audit.read")
			}
		})
	}
	var actions []string
	for _, a := range f.auditActions("admin.") {
		if !strings.HasPrefix(a, "admin.audit") {
			actions = append(actions, a)
		}
	}
	want := []string{"admin.keys.create success", "admin.keys.list success", "admin.keys.rotate success", "admin.keys.revoke success"}
	if len(actions) != 2*len(want) || strings.Join(actions[:4], ",") != strings.Join(want, ",") {
		t.Fatalf("admin audit %q", actions)
	}
}

// TestREST runs the original REST paths through vanguard.
func TestREST(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	url := serve(t, f)
	do := func(method, path, token, contentType, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %s: content type %q, body %s", method, path, ct, b)
		}
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
		return res.StatusCode, out
	}
	// The original body, as curl -d sends it (form content type).
	original := `{"service":"gateway","environment":"production","script":"` + base64.StdEncoding.EncodeToString(script("hello")) +
		`","metadata":{"commit":"abc123","branch":"main","author":"github-actions"}}`
	status, body := do("POST", "/deploy", f.keys.Deployer, "application/x-www-form-urlencoded", original)
	if status != http.StatusOK {
		t.Fatalf("POST /deploy = %d %v", status, body)
	}
	d := body["deployment"].(map[string]any)
	if d["status"] != "DEPLOYMENT_STATUS_LIVE" || d["service"] != "gateway" || d["version"] != "1" || d["metadata"].(map[string]any)["author"] != "github-actions" {
		t.Fatalf("POST /deploy deployment %v", d)
	}

	status, body = do("POST", "/deploy", "", "application/json", original)
	if status != http.StatusUnauthorized || body["code"] != float64(connect.CodeUnauthenticated) || body["message"] == "" {
		t.Fatalf("POST /deploy without a key = %d %v, want 401", status, body)
	}
	status, body = do("POST", "/deploy", f.keys.Viewer, "", original)
	if status != http.StatusForbidden || body["code"] != float64(connect.CodePermissionDenied) || !strings.Contains(body["message"].(string), "deployments.create") {
		t.Fatalf("POST /deploy as a viewer = %d %v, want 403", status, body)
	}
	status, body = do("POST", "/deploy", f.keys.Deployer, "", strings.Replace(original, "production", "prod", 1))
	if status != http.StatusBadRequest || !strings.Contains(body["message"].(string), "environment") {
		t.Fatalf("POST /deploy to an unknown environment = %d %v, want 400", status, body)
	}

	f.mustDeploy("production", "gateway", "v2")
	status, body = do("POST", "/rollback", f.keys.Deployer, "", `{"service":"gateway","environment":"production"}`)
	if status != http.StatusOK || body["deployment"].(map[string]any)["restoredVersion"] != "1" {
		t.Fatalf("POST /rollback = %d %v", status, body)
	}
	status, body = do("GET", "/deployments?service=gateway&page_size=2", f.keys.Viewer, "", "")
	if status != http.StatusOK || len(body["deployments"].([]any)) != 2 || body["nextPageToken"] == "" {
		t.Fatalf("GET /deployments = %d %v", status, body)
	}
	status, _ = do("GET", "/deployments", "", "", "")
	if status != http.StatusUnauthorized {
		t.Fatalf("GET /deployments without a key = %d", status)
	}
	status, body = do("GET", "/", f.keys.Viewer, "", "")
	if status != http.StatusOK || body["name"] != "dotdo-deploy" {
		t.Fatalf("GET / = %d %v", status, body)
	}
	status, body = do("GET", "/health", f.keys.Viewer, "", "")
	if status != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("GET /health = %d %v", status, body)
	}
	status, _ = do("GET", "/health", "", "", "")
	if status != http.StatusUnauthorized {
		t.Fatalf("GET /health without a key = %d", status)
	}
	// The audit log has the REST client's address.
	for _, e := range f.audit() {
		if e.Action == deploy.ActionDeploy && e.Detail["client"] != "127.0.0.1" {
			t.Fatalf("audit event client %q", e.Detail["client"])
		}
	}
}

// TestRESTSizeLimit sends workers at the default 10 MiB limit and just over
// it through REST: the first deploys, the second is refused naming the
// field (HTTP 429, ResourceExhausted), not cut off by a transport limit.
func TestRESTSizeLimit(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	url := serve(t, f)
	post := func(size int) (int, string) {
		code := append([]byte("export default {};\n//"), bytes.Repeat([]byte("x"), size-21)...)
		body := `{"service":"big","environment":"production","script":"` + base64.StdEncoding.EncodeToString(code) + `"}`
		req, _ := http.NewRequest(http.MethodPost, url+"/deploy", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.keys.Deployer)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := post(deploy.DefaultMaxScriptBytes); status != http.StatusOK {
		t.Fatalf("10 MiB: %d %.300s", status, body)
	}
	if status, body := post(deploy.DefaultMaxScriptBytes + 1); status != http.StatusTooManyRequests || !strings.Contains(body, "script: the worker is 10485761 bytes") {
		t.Fatalf("10 MiB + 1: %d %.300s", status, body)
	}
}
