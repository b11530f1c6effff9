package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

func worker(body string, tags ...string) backend.Script {
	return backend.Script{
		Name:       "hello",
		MainModule: "index.js",
		Modules: []backend.Module{
			{Name: "index.js", Content: []byte(`import greeting from "./greeting.txt"; import cfg from "./cfg.json";
export default { fetch() { return new Response(greeting + cfg.n + "` + body + `") } }`), Type: backend.ModuleESM},
			{Name: "greeting.txt", Content: []byte("hi "), Type: backend.ModuleInferred},
			{Name: "cfg.json", Content: []byte(`{"n": 1}`)},
		},
		CompatibilityDate:  "2025-01-01",
		CompatibilityFlags: []string{"nodejs_compat"},
		Tags:               tags,
	}
}

// TestRuntime drives the backend against the local runtime.
func TestRuntime(t *testing.T) {
	rt := deploytest.StartRuntime(t)
	b := rt.Backend(t)
	ctx := context.Background()
	if b.Name() != "runtime" {
		t.Fatalf("Name = %q", b.Name())
	}

	if _, err := b.NamespaceInfo(ctx, "ns-a"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("NamespaceInfo of a missing namespace: %v, want ErrNotFound", err)
	}
	if err := b.Upload(ctx, "ns-a", worker("")); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Upload to a missing namespace: %v, want ErrNotFound", err)
	}
	created, err := b.EnsureNamespace(ctx, "ns-a")
	if err != nil || !created {
		t.Fatalf("EnsureNamespace = %v, %v; want created", created, err)
	}
	created, err = b.EnsureNamespace(ctx, "ns-a")
	if err != nil || created {
		t.Fatalf("EnsureNamespace again = %v, %v; want existing", created, err)
	}
	if err := b.Upload(ctx, "ns-a", worker("v1", "dotdo-deployment=dep_1", "dotdo-version=1")); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	tags, err := b.ScriptTags(ctx, "ns-a", "hello")
	if err != nil || !slices.Equal(tags, []string{"dotdo-deployment=dep_1", "dotdo-version=1"}) {
		t.Fatalf("ScriptTags = %q, %v", tags, err)
	}
	info, err := b.NamespaceInfo(ctx, "ns-a")
	if err != nil || info.Name != "ns-a" || info.ScriptCount != 1 || info.ID == "" {
		t.Fatalf("NamespaceInfo = %+v, %v", info, err)
	}
	if _, err := b.ScriptTags(ctx, "ns-a", "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("ScriptTags of a missing script: %v, want ErrNotFound", err)
	}

	// A script that does not start is refused, with workerd's message.
	bad := worker("")
	bad.Modules[0].Content = []byte(`throw new Error("boom at top level")`)
	err = b.Upload(ctx, "ns-a", bad)
	if !errors.Is(err, backend.ErrRejected) || !strings.Contains(err.Error(), "boom at top level") {
		t.Fatalf("Upload of a throwing script: %v, want ErrRejected with the message", err)
	}

	// Concurrent EnsureNamespace calls: exactly one creates.
	var wg sync.WaitGroup
	var mu sync.Mutex
	creates := 0
	for range 8 {
		wg.Go(func() {
			c, err := b.EnsureNamespace(ctx, "ns-b")
			if err != nil {
				t.Errorf("EnsureNamespace: %v", err)
			}
			if c {
				mu.Lock()
				creates++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if creates != 1 {
		t.Fatalf("%d concurrent EnsureNamespace calls created it", creates)
	}

	// A wrong token: ErrUnauthorized, and neither token in the message.
	wrong, err := cloudflare.New(cloudflare.Config{AccountID: rt.AccountID, APIToken: "wrong-token-abcdef123456", BaseURL: rt.BaseURL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.NamespaceInfo(ctx, "ns-a")
	if !errors.Is(err, backend.ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want ErrUnauthorized", err)
	}
	for _, secret := range []string{"wrong-token-abcdef123456", rt.Token} {
		if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), secret) {
			t.Fatalf("error %q holds a token", err)
		}
	}
}

// TestRequests checks what the backend sends: the path, the bearer token
// of the namespace (per-namespace tokens win over the shared one), and the
// multipart upload (a metadata part, then one "files" part per module with
// the module's name and content type, and the tail consumers attached to
// the script).
func TestRequests(t *testing.T) {
	type seen struct {
		method, path, auth string
		meta               string
		files              []string
	}
	var mu sync.Mutex
	var reqs []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization")}
		if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			mr := multipart.NewReader(r.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				body, _ := io.ReadAll(p)
				if p.FormName() == "metadata" {
					s.meta = string(body)
				} else {
					s.files = append(s.files, fmt.Sprintf("%s %s %s %d", p.FormName(), p.FileName(), p.Header.Get("Content-Type"), len(body)))
				}
			}
		}
		mu.Lock()
		reqs = append(reqs, s)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":["a"]}`) // the client checks what arrives
	}))
	defer srv.Close()
	b, err := cloudflare.New(cloudflare.Config{
		AccountID: "acct", APIToken: "shared-token", BaseURL: srv.URL + "/client/v4",
		NamespaceTokens: map[string]string{"prod-ns": "prod-token"}, MaxRetries: -1,
		TailConsumers: []string{"dotdo-tail"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Upload(ctx, "prod-ns", worker("", "t1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ScriptTags(ctx, "other-ns", "hello"); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	up := reqs[0]
	if up.method != "PUT" || up.path != "/client/v4/accounts/acct/workers/dispatch/namespaces/prod-ns/scripts/hello" || up.auth != "Bearer prod-token" {
		t.Fatalf("upload request %+v", up)
	}
	wantMeta := `{"compatibility_date":"2025-01-01","compatibility_flags":["nodejs_compat"],"keep_bindings":["secret_text"],"main_module":"index.js","tags":["t1"],"tail_consumers":[{"service":"dotdo-tail"}]}`
	if up.meta != wantMeta {
		t.Fatalf("metadata part %s, want %s", up.meta, wantMeta)
	}
	wantFiles := []string{
		"files index.js application/javascript+module 142",
		"files greeting.txt text/plain 3",
		"files cfg.json application/json 8",
	}
	if !slices.Equal(up.files, wantFiles) {
		t.Fatalf("file parts %q, want %q", up.files, wantFiles)
	}
	if tags := reqs[1]; tags.method != "GET" || tags.auth != "Bearer shared-token" || !strings.HasSuffix(tags.path, "/namespaces/other-ns/scripts/hello/tags") {
		t.Fatalf("tags request %+v", tags)
	}
}

// TestErrorsHoldNoToken makes the API answer with errors that quote the
// request's Authorization header (and a non-JSON body, and a dropped
// connection), and checks that no error of the backend holds the token.
func TestErrorsHoldNoToken(t *testing.T) {
	const token = "super-secret-token-value-0123456789"
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echo := r.Header.Get("Authorization") + " " + r.URL.String()
		switch mode {
		case "json":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"success":false,"errors":[{"code":10021,"message":%q}],"messages":[],"result":null}`, "bad request: "+echo)
		case "text":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "proxy error for "+echo) // the client checks what arrives
		case "drop":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}))
	defer srv.Close()
	b, err := cloudflare.New(cloudflare.Config{AccountID: "acct", APIToken: token, BaseURL: srv.URL + "/client/v4", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"json", "text", "drop"} {
		mode = m
		err := b.Upload(context.Background(), "ns", worker(""))
		if err == nil {
			t.Fatalf("%s: no error", m)
		}
		all := fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err)
		if strings.Contains(all, token) || strings.Contains(all, "super-secret") {
			t.Fatalf("%s: error holds the token: %s", m, all)
		}
		var be *backend.Error
		if !errors.As(err, &be) {
			t.Fatalf("%s: %T is not a *backend.Error", m, err)
		}
		t.Logf("%s: %v", m, err)
	}
	if s := fmt.Sprintf("%v %+v %#v %s", cloudflare.Config{APIToken: token}, cloudflare.Config{APIToken: token}, cloudflare.Config{APIToken: token}, cloudflare.Config{NamespaceTokens: map[string]string{"ns": token}}); strings.Contains(s, token) {
		t.Fatalf("Config prints the token: %s", s)
	}
}

// TestUnreachable reports an API that cannot be reached as unavailable.
func TestUnreachable(t *testing.T) {
	addr := testsupport.FreeAddr(t)
	b, err := cloudflare.New(cloudflare.Config{AccountID: "acct", APIToken: "tok-123456789", BaseURL: "http://" + addr + "/client/v4", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.NamespaceInfo(context.Background(), "ns"); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("NamespaceInfo on a closed port: %v, want ErrUnavailable", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"CLOUDFLARE_ACCOUNT_ID":           "acct",
		"CLOUDFLARE_API_TOKEN":            "shared",
		"CLOUDFLARE_API_TOKEN_PRODUCTION": "prod",
		"CLOUDFLARE_API_BASE_URL":         "http://127.0.0.1:8790/client/v4",
		"DOTDO_TAIL_CONSUMERS":            " dotdo-tail, ,audit-tail",
	}
	c := cloudflare.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		map[string]string{"production": "dotdo-production", "staging": "dotdo-staging"})
	if c.AccountID != "acct" || c.APIToken != "shared" || c.BaseURL != env["CLOUDFLARE_API_BASE_URL"] ||
		len(c.NamespaceTokens) != 1 || c.NamespaceTokens["dotdo-production"] != "prod" ||
		!slices.Equal(c.TailConsumers, []string{"dotdo-tail", "audit-tail"}) {
		t.Fatalf("ConfigFromEnv = %#v", c)
	}
	if got := cloudflare.EnvTokenName("pre-prod"); got != "CLOUDFLARE_API_TOKEN_PRE_PROD" {
		t.Fatalf("EnvTokenName = %q", got)
	}
	for _, bad := range []cloudflare.Config{{APIToken: "x"}, {AccountID: "a"}, {AccountID: "a", APIToken: "x", BaseURL: "ftp://x"}, {AccountID: "a", APIToken: "x", BaseURL: "http://u:p@host/"}, {AccountID: "a", APIToken: "x", TailConsumers: []string{"a/b"}}} {
		if _, err := cloudflare.New(bad); err == nil {
			t.Fatalf("New(%v) succeeded", bad)
		}
	}
}
