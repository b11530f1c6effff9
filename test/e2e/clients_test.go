package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tool runs a command from the repository root and returns its output.
func tool(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = platform.root
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// goTool runs a tool of tools/go.mod (grpcurl, buf).
func goTool(t *testing.T, name string, args ...string) (string, error) {
	return tool(t, nil, "go", append([]string{"tool", "-modfile=tools/go.mod", name}, args...)...)
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

// TestGrpcurl drives the Deploy API with grpcurl over plain-text gRPC and
// reflection, as the README shows.
func TestGrpcurl(t *testing.T) {
	need(t)
	addr := hostPort(platform.apiURL)
	out, err := goTool(t, "grpcurl", "-plaintext", addr, "list")
	if err != nil {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}
	for _, want := range []string{"dotdo.deploy.v1.DeployService", "dotdo.deploy.v1.AdminService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(out, want) {
			t.Fatalf("grpcurl list lacks %s:\n%s", want, out)
		}
	}
	out, err = goTool(t, "grpcurl", "-plaintext", addr, "describe", "dotdo.deploy.v1.DeployService.Deploy")
	if err != nil || !strings.Contains(out, "Deploy uploads a new version of a worker") {
		t.Fatalf("grpcurl describe: %v\n%s", err, out)
	}
	script := base64.StdEncoding.EncodeToString([]byte(`export default { fetch() { return new Response("grpcurl") } }`))
	body := `{"service":"grpcurl-worker","environment":"staging","script":"` + script + `","metadata":{"commit":"abc123","branch":"main","author":"grpcurl"}}`
	out, err = goTool(t, "grpcurl", "-plaintext", "-H", "authorization: Bearer "+platform.adminKey, "-d", body, addr, "dotdo.deploy.v1.DeployService/Deploy")
	if err != nil || !strings.Contains(out, "DEPLOYMENT_STATUS_LIVE") {
		t.Fatalf("grpcurl Deploy: %v\n%s", err, out)
	}
	out, err = goTool(t, "grpcurl", "-plaintext", "-d", body, addr, "dotdo.deploy.v1.DeployService/Deploy")
	if err == nil || !strings.Contains(out, "Unauthenticated") {
		t.Fatalf("grpcurl Deploy without a key: %v\n%s", err, out)
	}
}

// TestBufCurl calls one RPC with buf curl (Connect protocol, schema by
// reflection).
func TestBufCurl(t *testing.T) {
	need(t)
	out, err := goTool(t, "buf", "curl", "--protocol", "connect", "--http2-prior-knowledge",
		"-H", "Authorization: Bearer "+platform.adminKey, "-d", `{"service":"grpcurl-worker"}`,
		platform.apiURL+"/dotdo.deploy.v1.DeployService/ListDeployments")
	if err != nil || !strings.Contains(out, `"deployments"`) && !strings.Contains(out, "{}") {
		t.Fatalf("buf curl: %v\n%s", err, out)
	}
}

// TestTypeScriptClient runs test/ts/client.test.ts against the platform with
// the generated TypeScript client.
func TestTypeScriptClient(t *testing.T) {
	need(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	if out, err := tool(t, nil, "npx", "--no-install", "tsc", "-p", "tsconfig.json"); err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
	out, err := tool(t, []string{"DOTDO_API_URL=" + platform.apiURL, "DOTDO_API_KEY=" + platform.adminKey},
		"node", "--test", filepath.Join(".build", "ts", "test", "ts", "client.test.js"))
	if err != nil || !strings.Contains(out, "# pass 1") {
		t.Fatalf("node --test client.test.js: %v\n%s", err, out)
	}
}
