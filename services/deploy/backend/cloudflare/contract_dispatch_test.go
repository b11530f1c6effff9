package cloudflare_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
)

// Ids of the account the dispatch Worker test works in: 32 hex digits, as
// the contract wants.
const (
	contractAccount = "023e105f4ecef8ad9ca31a8372d0c353"
	zoneDo          = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
	routeOther      = "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b"
	routeStale      = "2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c"
)

// TestDispatchWorkerContract validates every request of a dispatch Worker
// deploy (the account-level script upload, its cron triggers, the zone
// lookups, and listing,
// creating, repointing and deleting Workers routes) against the vendored
// contract, through the validating mock. The mock keeps no state and
// answers with generated examples, so once it has validated a request the
// proxy replaces the answers the test depends on: the account holds one
// zone, "do", whose routes are "do/*" (another script's) and "old.do/*"
// (the dispatch Worker's, from its previous version). Every request carries
// the environment's own token (CLOUDFLARE_API_TOKEN_PRODUCTION), not the
// shared one.
func TestDispatchWorkerContract(t *testing.T) {
	mock := startSteady(t)
	target, _ := url.Parse(mock)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var checked []string
	proxy.ModifyResponse = func(res *http.Response) error {
		req := res.Request
		line := req.Method + " " + req.URL.Path
		if q := req.URL.Query().Get("name"); q != "" {
			line += "?name=" + q
		}
		mu.Lock()
		checked = append(checked, line)
		mu.Unlock()
		if got := req.Header.Get("Authorization"); got != "Bearer production-token" {
			t.Errorf("%s: Authorization %q; want the production environment's token", line, got)
		}
		if problem := verdict(res); problem != "" {
			t.Errorf("%s violates the contract: %s", line, problem)
			return nil
		}
		var body string
		switch {
		case req.Method == http.MethodGet && req.URL.Path == "/zones":
			if req.URL.Query().Get("account.id") != contractAccount {
				t.Errorf("%s: the zone lookup is not limited to the account", line)
			}
			body = `{"success":true,"errors":[],"messages":[],"result":[],"result_info":{"count":0,"page":1,"per_page":20,"total_count":0,"total_pages":0}}`
			if req.URL.Query().Get("name") == "do" {
				body = `{"success":true,"errors":[],"messages":[],"result":[{"id":"` + zoneDo + `","name":"do","status":"active"}],"result_info":{"count":1,"page":1,"per_page":20,"total_count":1,"total_pages":1}}`
			}
		case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/workers/routes"):
			body = `{"success":true,"errors":[],"messages":[],"result":[` +
				`{"id":"` + routeOther + `","pattern":"do/*","script":"someone-else"},` +
				`{"id":"` + routeStale + `","pattern":"old.do/*","script":"dotdo-dispatcher-production"}]}`
		default:
			return nil
		}
		res.Body.Close()
		res.Body = io.NopCloser(strings.NewReader(body))
		res.ContentLength = int64(len(body))
		res.Header.Set("Content-Length", strconv.Itoa(len(body)))
		res.Header.Del("Content-Encoding")
		return nil
	}
	front := httptest.NewServer(proxy)
	defer front.Close()

	b, err := cloudflare.New(cloudflare.Config{
		AccountID: contractAccount, APIToken: "contract-test-token", BaseURL: front.URL, MaxRetries: -1,
		NamespaceTokens: map[string]string{"dotdo-production": "production-token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := routing.GenerateWorker(routing.Seed(), routing.WorkerOptions{
		Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01", TableVersion: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.UploadDispatchWorker(ctx, backend.DispatchWorker{
		Name: w.ScriptName, Namespace: "dotdo-production", Binding: routing.NamespaceBinding,
		MainModule: routing.WorkerMainModule, Module: w.Module, CompatibilityDate: "2025-01-01",
		Crons: []string{"*/5 * * * *", "0 3 * * *"},
	}); err != nil {
		t.Fatalf("UploadDispatchWorker: %v", err)
	}
	if err := b.RouteDispatchWorker(ctx, "dotdo-production", w.ScriptName, w.Routes, []string{"old.do/*", "do/*"}); err != nil {
		t.Fatalf("RouteDispatchWorker: %v", err)
	}
	want := []string{
		"PUT /accounts/" + contractAccount + "/workers/scripts/dotdo-dispatcher-production",
		"PUT /accounts/" + contractAccount + "/workers/scripts/dotdo-dispatcher-production/schedules",
		"GET /zones?name=do",
		"GET /zones?name=old.do",
		"GET /zones?name=do",
		"GET /zones/" + zoneDo + "/workers/routes",
		"PUT /zones/" + zoneDo + "/workers/routes/" + routeOther, // do/*: another script's, repointed
		"POST /zones/" + zoneDo + "/workers/routes",              // *.do/*: created
		"DELETE /zones/" + zoneDo + "/workers/routes/" + routeStale,
	}
	mu.Lock()
	got := strings.Join(checked, "\n")
	checked = nil
	mu.Unlock()
	if got != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	t.Logf("validated against the contract:\n%s", got)

	// A pattern on a host no zone of the account holds is refused.
	err = b.RouteDispatchWorker(ctx, "dotdo-production", w.ScriptName, []string{"example.net/*"}, nil)
	if !errors.Is(err, backend.ErrRejected) || !strings.Contains(err.Error(), "no zone of the account holds example.net") {
		t.Fatalf("a pattern without a zone: %v", err)
	}
	// The mock does validate: a binding without a name is refused, and so
	// are a schedule without its cron and schedules that are no array.
	script := mock + "/accounts/" + contractAccount + "/workers/scripts/x"
	for _, c := range []struct{ what, path, contentType, body string }{
		{"a binding without a name", script, "multipart/form-data; boundary=x",
			"--x\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n" +
				`{"main_module":"index.js","bindings":[{"type":"dispatch_namespace","namespace":"ns"}]}` + "\r\n--x--\r\n"},
		{"a schedule without its cron", script + "/schedules", "application/json", `[{"crons":"* * * * *"}]`},
		{"schedules that are no array", script + "/schedules", "application/json", `{"cron":"* * * * *"}`},
	} {
		req, _ := http.NewRequest(http.MethodPut, c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get("X-Steady-Request-Valid") != "false" {
			t.Errorf("the mock accepted %s (HTTP %d)", c.what, res.StatusCode)
		}
	}
}
