package boot

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/services/runtime"
)

// worker returns an ES module that answers with its label.
func worker(label string) []byte {
	return []byte(fmt.Sprintf(`export default { fetch(req) { return new Response(%q + " " + new URL(req.url).pathname) } }`, label))
}

// invoke calls version of script in namespace through the runtime's
// invocation endpoint, as the dispatcher does.
func (s *testStack) invoke(t *testing.T, namespace, script string, version int64) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s%s%s/%s/%d/hello", s.runtimeURL, runtime.InvokePrefix, namespace, script, version), nil)
	tok, err := (&Common{DataDir: s.dir}).InvokeToken()
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(runtime.InvokeTokenHeader, tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (s *testStack) client(key string) deployv1connect.DeployServiceClient {
	return deployv1connect.NewDeployServiceClient(rpc.HTTPClient(), s.apiURL, connect.WithInterceptors(bearer(key)))
}

func bearer(key string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	}
}

// TestDeployRollbackEndToEnd runs the deploy path over real loopback servers:
// deploy, the worker serves, deploy again, roll back, and the listing shows
// all three with the right statuses.
func TestDeployRollbackEndToEnd(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	c := s.client(s.adminKey)
	deploy := func(label string) *deployv1.Deployment {
		t.Helper()
		res, err := c.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{
			Service: "gateway", Environment: "production", Script: worker(label),
			Metadata: &deployv1.Metadata{Commit: label, Branch: "main", Author: "test"},
		}))
		if err != nil {
			t.Fatalf("deploy %s: %v", label, err)
		}
		return res.Msg.GetDeployment()
	}
	v1 := deploy("one")
	if v1.GetVersion() != 1 || v1.GetStatus() != deployv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE {
		t.Fatalf("first deploy = %v", v1)
	}
	if code, body := s.invoke(t, "dotdo-production", "gateway", 1); code != 200 || body != "one /hello" {
		t.Fatalf("v1 answers %d %q", code, body)
	}
	v2 := deploy("two")
	if code, body := s.invoke(t, "dotdo-production", "gateway", v2.GetVersion()); code != 200 || body != "two /hello" {
		t.Fatalf("v2 answers %d %q", code, body)
	}
	rb, err := c.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{Service: "gateway", Environment: "production"}))
	if err != nil {
		t.Fatal(err)
	}
	v3 := rb.Msg.GetDeployment()
	if v3.GetKind() != deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK || v3.GetRestoredVersion() != 1 || v3.GetVersion() != 3 {
		t.Fatalf("rollback = %v", v3)
	}
	if code, body := s.invoke(t, "dotdo-production", "gateway", 3); code != 200 || body != "one /hello" {
		t.Fatalf("rolled-back version answers %d %q", code, body)
	}
	list, err := c.ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{Service: "gateway"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range list.Msg.GetDeployments() {
		got = append(got, fmt.Sprintf("v%d:%s", d.GetVersion(), strings.TrimPrefix(d.GetStatus().String(), "DEPLOYMENT_STATUS_")))
	}
	if want := "v3:LIVE v2:SUPERSEDED v1:SUPERSEDED"; strings.Join(got, " ") != want {
		t.Fatalf("deployments = %v, want %s", got, want)
	}
}

// TestRESTEndToEnd uses the original API's curl-shaped requests.
func TestRESTEndToEnd(t *testing.T) {
	s := newTestStack(t)
	do := func(method, path, key, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, s.apiURL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
		}
		return res.StatusCode, out
	}
	script := base64.StdEncoding.EncodeToString(worker("rest"))
	body := `{"service":"gateway","environment":"production","script":"` + script + `","metadata":{"commit":"abc123","branch":"main","author":"github-actions"}}`

	if code, _ := do("POST", "/deploy", "", body); code != http.StatusUnauthorized {
		t.Fatalf("POST /deploy without key = %d, want 401", code)
	}
	code, out := do("POST", "/deploy", s.adminKey, body)
	if code != http.StatusOK {
		t.Fatalf("POST /deploy = %d %v", code, out)
	}
	d := out["deployment"].(map[string]any)
	if d["status"] != "DEPLOYMENT_STATUS_LIVE" || d["version"] != "1" {
		t.Fatalf("deployment = %v", d)
	}
	if code, out = do("GET", "/deployments?service=gateway", s.adminKey, ""); code != 200 || len(out["deployments"].([]any)) != 1 {
		t.Fatalf("GET /deployments = %d %v", code, out)
	}
	for _, path := range []string{"/", "/health"} {
		if code, out = do("GET", path, s.adminKey, ""); code != 200 {
			t.Fatalf("GET %s = %d %v", path, code, out)
		}
	}
	if code, _ = do("GET", "/", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET / without key = %d, want 401", code)
	}
	// A load balancer's probe: the overall status, without a key.
	if code, out = do("GET", "/health", "", ""); code != 200 || out["status"] != "ok" || out["dependencies"] != nil {
		t.Fatalf("GET /health without key = %d %v, want 200 without dependencies", code, out)
	}
	if code, out = do("POST", "/rollback", s.adminKey, `{"service":"gateway","environment":"production","version":1}`); code != http.StatusBadRequest {
		t.Fatalf("POST /rollback to the live version = %d %v, want 400", code, out)
	}
	if code, out = do("POST", "/deploy", s.adminKey, body); code != 200 {
		t.Fatalf("second POST /deploy = %d %v", code, out)
	}
	if code, out = do("POST", "/rollback", s.adminKey, `{"service":"gateway","environment":"production"}`); code != 200 {
		t.Fatalf("POST /rollback = %d %v", code, out)
	}
	if d := out["deployment"].(map[string]any); d["kind"] != "DEPLOYMENT_KIND_ROLLBACK" || d["restoredVersion"] != "1" {
		t.Fatalf("rollback = %v", d)
	}
}

// TestConcurrentDeploys: 20 deploys of one service at once all get distinct
// versions, and the namespace serves exactly the version the database says
// is live.
func TestConcurrentDeploys(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	c := s.client(s.adminKey)
	var wg sync.WaitGroup
	versions := make(chan int64, 20)
	for i := range 20 {
		wg.Go(func() {
			res, err := c.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{
				Service: "db", Environment: "production", Script: worker(fmt.Sprintf("n%d", i)),
			}))
			if err != nil {
				t.Errorf("deploy %d: %v", i, err)
				return
			}
			versions <- res.Msg.GetDeployment().GetVersion()
		})
	}
	wg.Wait()
	close(versions)
	seen := map[int64]bool{}
	for v := range versions {
		if seen[v] {
			t.Fatalf("version %d given twice", v)
		}
		seen[v] = true
	}
	if len(seen) != 20 {
		t.Fatalf("%d deploys succeeded, want 20", len(seen))
	}
	live, err := c.ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{Service: "db", Status: deployv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(live.Msg.GetDeployments()); n != 1 {
		t.Fatalf("%d live deployments, want 1", n)
	}
	lv := live.Msg.GetDeployments()[0]
	// The namespace's current script is the live version: its tags say so.
	req, _ := http.NewRequest("GET", s.runtimeURL+"/client/v4/accounts/local/workers/dispatch/namespaces/dotdo-production/scripts/db/tags", nil)
	tok, _ := (&Common{DataDir: s.dir}).RuntimeToken("")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(b), fmt.Sprintf(`"dotdo-version=%d"`, lv.GetVersion())) || !strings.Contains(string(b), lv.GetId()) {
		t.Fatalf("namespace tags %s do not name live v%d (%s)", b, lv.GetVersion(), lv.GetId())
	}
	if code, _ := s.invoke(t, "dotdo-production", "db", lv.GetVersion()); code != 200 {
		t.Fatalf("live version does not serve: %d", code)
	}
}
