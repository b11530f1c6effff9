package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
)

// contract is the trimmed Cloudflare OpenAPI contract of dispatch
// namespaces, vendored with its provenance in testdata/contract/README.md.
const contract = "testdata/contract/cloudflare-wfp-openapi.json"

// steady is the validating mock of @stdy/cli, pinned in the package.json at
// the repository's root (four levels up) and installed by npm ci.
const steady = "../../../../node_modules/.bin/steady"

// startSteady runs the validating mock of the contract on a free loopback
// port, in its own process group, killed with the group when t ends. It
// fails t when the contract is missing or the mock does not serve, and
// skips it when the mock is not installed.
func startSteady(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(contract); err != nil {
		t.Fatalf("the contract is missing: %v", err)
	}
	if _, err := os.Stat(steady); err != nil {
		t.Skipf("skipping the contract test: the @stdy/cli mock is not installed (npm ci installs it): %v", err)
	}
	addr := testsupport.FreeAddr(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(steady, "--host", "127.0.0.1", "-p", port,
		"--validator-form-array-format=repeat", "--validator-form-object-format=dots", "-q", contract)
	var out testsupport.LogBuffer // read while the mock still writes to it
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the mock: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		// The mock only ever ends killed (below) or by failing to start,
		// which the wait for its port reports with its output.
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill the mock: %v", err)
		}
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case <-exited:
			t.Fatalf("the mock exited: %s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mock did not listen within a minute: %s", out.String())
		}
	}
}

// verdict returns what the validating mock found wrong with the request
// res answers, or "" when nothing. A request is wrong when the mock calls
// it invalid or matched no path, and also when it reports any error while
// calling it valid: the mock only warns about some violations (a failed
// anyOf, a pattern mismatch), and the contract is broken by those too.
func verdict(res *http.Response) string {
	var diags []string
	for i := 1; i <= 10; i++ {
		if c := res.Header.Get(fmt.Sprintf("X-Steady-Error-%d-Code", i)); c != "" {
			diags = append(diags, c+" "+res.Header.Get(fmt.Sprintf("X-Steady-Error-%d-Path", i))+": "+res.Header.Get(fmt.Sprintf("X-Steady-Error-%d-Message", i)))
		}
	}
	if res.Header.Get("X-Steady-Request-Valid") == "true" && res.Header.Get("X-Steady-Matched-Path") != "" && len(diags) == 0 {
		return ""
	}
	return fmt.Sprintf("HTTP %d, valid %q, matched %q: %s", res.StatusCode, res.Header.Get("X-Steady-Request-Valid"),
		res.Header.Get("X-Steady-Matched-Path"), strings.Join(diags, "; "))
}

// TestContract validates every request the backend makes against
// Cloudflare's published contract for dispatch namespaces, by sending them
// through a proxy to the validating mock. The mock answers 200 to every
// valid request and keeps no state, so the proxy answers 404 itself for the
// namespace "missing" (to drive the create path of EnsureNamespace) and
// checks the mock's verdict headers on everything else. The contract's
// paths start at /accounts (its server is https://api.cloudflare.com/client/v4),
// so the base URL is the proxy's root.
func TestContract(t *testing.T) {
	mock := startSteady(t)
	target, _ := url.Parse(mock)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var checked []string
	proxy.ModifyResponse = func(res *http.Response) error {
		req := res.Request
		line := req.Method + " " + req.URL.Path
		mu.Lock()
		checked = append(checked, line)
		mu.Unlock()
		if problem := verdict(res); problem != "" {
			t.Errorf("%s violates the contract: %s", line, problem)
		}
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/dispatch/namespaces/missing") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"success":false,"errors":[{"code":100119,"message":"namespace not found"}],"messages":[],"result":null}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()

	b, err := cloudflare.New(cloudflare.Config{
		AccountID: "023e105f4ecef8ad9ca31a8372d0c353", APIToken: "contract-test-token", BaseURL: front.URL, MaxRetries: -1,
		TailConsumers: []string{"dotdo-tail"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := b.NamespaceInfo(ctx, "dotdo-production"); err != nil {
		t.Errorf("NamespaceInfo: %v", err)
	}
	if created, err := b.EnsureNamespace(ctx, "missing"); err != nil || !created {
		t.Errorf("EnsureNamespace(missing) = %v, %v", created, err)
	}
	if created, err := b.EnsureNamespace(ctx, "dotdo-production"); err != nil || created {
		t.Errorf("EnsureNamespace(existing) = %v, %v", created, err)
	}
	for _, s := range []backend.Script{
		worker("", "team:web", "dotdo-deployment=dep_01J0000000000000000000000", "dotdo-version=3"),
		{Name: "single", MainModule: "index.js", Modules: []backend.Module{{Name: "index.js", Content: []byte("export default {}")}},
			Limits: backend.Limits{CPUMs: 50}},
	} {
		if err := b.Upload(ctx, "dotdo-production", s); err != nil {
			t.Errorf("Upload %s: %v", s.Name, err)
		}
	}
	if _, err := b.ScriptTags(ctx, "dotdo-production", "hello"); err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("ScriptTags: %v", err)
	}
	// Per-script secrets (backend.Secrets): put, list, delete.
	if err := b.PutSecret(ctx, "dotdo-production", "hello", "API_TOKEN", "contract-secret-value"); err != nil {
		t.Errorf("PutSecret: %v", err)
	}
	if _, err := b.ListSecrets(ctx, "dotdo-production", "hello"); err != nil {
		t.Errorf("ListSecrets: %v", err)
	}
	if err := b.DeleteSecret(ctx, "dotdo-production", "hello", "API_TOKEN"); err != nil {
		t.Errorf("DeleteSecret: %v", err)
	}
	// The GET of "missing" was answered by the proxy.
	want := []string{"GET", "POST", "GET", "PUT", "PUT", "GET", "PUT", "GET", "DELETE"}
	if len(checked) != len(want) {
		t.Fatalf("the mock checked %d requests, want %d: %q", len(checked), len(want), checked)
	}
	for i, c := range checked {
		if !strings.HasPrefix(c, want[i]+" ") {
			t.Fatalf("request %d is %q, want a %s; all: %q", i, c, want[i], checked)
		}
	}
	t.Logf("validated against the contract: %q", checked)

	// The mock does validate: an upload without its metadata part is
	// refused, and so is a tail consumer without the service it names.
	for name, body := range map[string]string{
		"an upload without metadata": "--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.js\"\r\n\r\nx\r\n--x--\r\n",
		"a tail consumer without its service": "--x\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n" +
			`{"main_module":"a.js","tail_consumers":[{"namespace":"n"}]}` +
			"\r\n--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.js\"\r\nContent-Type: application/javascript+module\r\n\r\nx\r\n--x--\r\n",
	} {
		req, _ := http.NewRequest(http.MethodPut, mock+"/accounts/acct/workers/dispatch/namespaces/ns/scripts/s", strings.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if verdict(res) == "" {
			t.Fatalf("the mock accepted %s (HTTP %d)", name, res.StatusCode)
		}
	}
}
