package cfapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
)

// TestDispatchWorkerStandIn drives the account-level endpoints with the
// deploy service's Cloudflare backend, as `dotdo dispatcher deploy` does
// against the local runtime: the dispatch Worker uploads, its routes are
// created, moved to a new domain and cleaned up, its cron triggers are
// stored (not fired), and other scripts' routes
// and bad requests are refused as Cloudflare refuses them.
func TestDispatchWorkerStandIn(t *testing.T) {
	h := newHarness(t, 0)
	b, err := cloudflare.New(cloudflare.Config{AccountID: "local", APIToken: token, BaseURL: h.srv.URL + "/client/v4/", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := routing.GenerateWorker(routing.Seed(), routing.WorkerOptions{
		Environment: "production", Namespace: "dotdo-production", CompatibilityDate: "2025-01-01",
	})
	if err != nil {
		t.Fatal(err)
	}
	upload := backend.DispatchWorker{
		Name: w.ScriptName, Namespace: "dotdo-production", Binding: routing.NamespaceBinding,
		MainModule: routing.WorkerMainModule, Module: w.Module, CompatibilityDate: "2025-01-01",
		Crons: []string{"*/5 * * * *", "0 3 * * *"},
	}
	if err := b.UploadDispatchWorker(ctx, upload); err != nil {
		t.Fatalf("UploadDispatchWorker: %v", err)
	}
	schedules := "/client/v4/accounts/local/workers/scripts/" + w.ScriptName + "/schedules"
	if res := h.do("GET", schedules, "Bearer "+token, "", nil); res.status != 200 ||
		!contains(string(res.env.Result), `{"schedules":[{"cron":"*/5 * * * *"},{"cron":"0 3 * * *"}]}`) {
		t.Fatalf("GET schedules: %d %s", res.status, res.raw)
	}
	wantError(t, "schedules of a missing script", h.do("PUT", "/client/v4/accounts/local/workers/scripts/nope/schedules", "Bearer "+token, "application/json", strings.NewReader(`[]`)), 404, 10007)
	wantError(t, "a bad cron", h.do("PUT", schedules, "Bearer "+token, "application/json", strings.NewReader(`[{"cron":"61 * * * *"}]`)), 400, 10001)
	if err := b.RouteDispatchWorker(ctx, "dotdo-production", w.ScriptName, w.Routes, nil); err != nil {
		t.Fatalf("RouteDispatchWorker: %v", err)
	}
	res := h.do("GET", "/client/v4/zones?name=do&account.id=local", "Bearer "+token, "", nil)
	if res.status != 200 || !res.env.Success {
		t.Fatalf("GET /zones: %d %s", res.status, res.raw)
	}
	routes := func(zone string) string {
		t.Helper()
		return h.do("GET", "/client/v4/zones/"+zone+"/workers/routes", "Bearer "+token, "", nil).raw
	}
	zoneDo := zoneOf(t, h, "do")
	if got := routes(zoneDo); !contains(got, `"pattern":"do/*","script":"dotdo-dispatcher-production"`, `"pattern":"*.do/*"`) {
		t.Fatalf("routes of zone do: %s", got)
	}
	// The next version moves to example.com: do's routes go.
	if err := b.RouteDispatchWorker(ctx, "dotdo-production", w.ScriptName, []string{"example.com/*"}, w.Routes); err != nil {
		t.Fatal(err)
	}
	if got := routes(zoneDo); contains(got, `"pattern"`) {
		t.Fatalf("routes of zone do after the move: %s", got)
	}
	if got := routes(zoneOf(t, h, "example.com")); !contains(got, `"pattern":"example.com/*"`) {
		t.Fatalf("routes of zone example.com: %s", got)
	}
	// A route to a script the account does not have is refused.
	if err := b.RouteDispatchWorker(ctx, "dotdo-production", "nope", []string{"other.do/*"}, nil); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a route to a missing script: %v; want ErrNotFound", err)
	}
	// An upload without its main module is refused.
	body, ct := multipartBody(meta(map[string]any{"main_module": "index.js"}), module("other.js", "application/javascript+module", okJS))
	wantError(t, "an upload without its main module", h.do("PUT", "/client/v4/accounts/local/workers/scripts/x", "Bearer "+token, ct, body), 400, 10021)
}

func zoneOf(t *testing.T, h *harness, name string) string {
	t.Helper()
	var zones []struct{ ID, Name string }
	res := h.do("GET", "/client/v4/zones?name="+name, "Bearer "+token, "", nil)
	if err := json.Unmarshal(res.env.Result, &zones); err != nil || len(zones) != 1 || zones[0].Name != name {
		t.Fatalf("zone %s: %s", name, res.raw)
	}
	return zones[0].ID
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
