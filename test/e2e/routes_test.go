package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/cli"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingtest"
)

// through asks the platform's dispatcher for host and path.
func through(t *testing.T, host, path string) string {
	t.Helper()
	_, body := send(t, http.MethodGet, host, path, "")
	return body
}

// until polls the dispatcher until host and path answer something holding
// want, and returns how long that took; it fails after bound.
func until(t *testing.T, host, path, want string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := through(t, host, path)
		if strings.Contains(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("%s%s answered %q, not %q, within %v", host, path, got, want, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCLIRoutes is issue 17's acceptance, through the real binary: a path
// route added with `dotdo routes set` reaches traffic within a second,
// history shows both versions, an invalid table is refused naming the
// entry, rollback restores the old behaviour; the dispatch Worker builds
// into a module that workerd loads and routes as the vectors say, deploys,
// and the audit log shows the changes with actor and version.
func TestCLIRoutes(t *testing.T) {
	need(t)
	ok(t, "deploy", "--service", "mcp", "--file", writeWorker(t, "mcp"))
	until(t, "mcp.do", "/", "mcp /", 2*time.Second)

	var table routing.Table
	if err := json.Unmarshal([]byte(ok(t, "routes", "get", "--env", "production", "--output", "json")), &table); err != nil {
		t.Fatal(err)
	}
	before := strings.Fields(ok(t, "routes", "history", "--env", "production"))
	if len(table.PathRoutes) == 0 || len(before) < 6 {
		t.Fatalf("the current table has no path routes, or no history: %+v", table)
	}
	table.PathRoutes = append(table.PathRoutes, routing.PathRoute{Prefix: "/tools/", Worker: "mcp", Hosts: table.PathRoutes[0].Hosts})
	file := filepath.Join(t.TempDir(), "routes.json")
	if err := os.WriteFile(file, table.MarshalIndent(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := ok(t, "routes", "set", "--env", "production", "--file", file)
	if !strings.Contains(out, "+ path_routes: /tools -> mcp on do, api.do") {
		t.Fatalf("routes set printed %q", out)
	}
	took := until(t, "api.do", "/tools/x", "mcp /tools/x", time.Second)
	t.Logf("api.do/tools/x reached mcp %v after routes set returned", took)
	if hist := ok(t, "routes", "history", "--env", "production"); !strings.Contains(hist, "set") || strings.Count(hist, "\n") < 3 {
		t.Fatalf("routes history:\n%s", hist)
	}
	if d := ok(t, "routes", "diff", "--env", "production"); !strings.Contains(d, "+ path_routes: /tools -> mcp") {
		t.Fatalf("routes diff printed %q", d)
	}

	// An invalid table: refused, the entry named, the live table unchanged.
	bad := table.Clone()
	bad.PathRoutes = append(bad.PathRoutes, routing.PathRoute{Prefix: "/tools/admin", Worker: "auth", Hosts: []string{"api.do"}})
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, bad.MarshalIndent(), 0o644); err != nil {
		t.Fatal(err)
	}
	current := ok(t, "routes", "get", "--env", "production", "--output", "json")
	wantExit(t, dotdo(t, platform.adminKey, nil, "routes", "set", "--env", "production", "--file", badFile), cli.ExitInvalid,
		"table.path_routes["+strconv.Itoa(len(bad.PathRoutes)-1)+"].prefix")
	if after := ok(t, "routes", "get", "--env", "production", "--output", "json"); after != current {
		t.Fatal("a refused table changed the live one")
	}
	// A viewer may read, not write.
	viewer := keyRE.FindString(ok(t, "keys", "create", "--name", "routes-viewer", "--role", "viewer"))
	wantExit(t, dotdo(t, viewer, nil, "routes", "set", "--env", "production", "--file", file), cli.ExitPermissionDenied, "routes.write")

	out = ok(t, "routes", "rollback", "--env", "production")
	if !strings.Contains(out, "- path_routes: /tools -> mcp on do, api.do") {
		t.Fatalf("routes rollback printed %q", out)
	}
	until(t, "api.do", "/tools/x", `"code"`, time.Second) // no longer mcp: the default worker, or its 404 when none is live
	if through(t, "api.do", "/tools/x") == "mcp /tools/x" {
		t.Fatal("the rollback did not restore the old routing")
	}

	// The dispatch Worker: built from the current table (the seed's rules
	// again), it loads in workerd and passes the seed table's vectors.
	dir := t.TempDir()
	out = ok(t, "dispatcher", "build", "--env", "production", "--out", dir)
	if !strings.Contains(out, "dotdo-dispatcher-production") || !strings.Contains(out, "routes: do/* *.do/*") {
		t.Fatalf("dispatcher build printed %q", out)
	}
	module, err := os.ReadFile(filepath.Join(dir, "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	var wrangler struct {
		Name               string                                `json:"name"`
		CompatibilityDate  string                                `json:"compatibility_date"`
		DispatchNamespaces []struct{ Binding, Namespace string } `json:"dispatch_namespaces"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "wrangler.json")); err != nil || json.Unmarshal(b, &wrangler) != nil ||
		wrangler.Name != "dotdo-dispatcher-production" || len(wrangler.DispatchNamespaces) != 1 || wrangler.DispatchNamespaces[0].Namespace != "dotdo-production" {
		t.Fatalf("wrangler.json: %+v, %v", wrangler, err)
	}
	suite, err := routingtest.Load()
	if err != nil {
		t.Fatal(err)
	}
	wd := routingtest.StartWorkerd(t, routing.Worker{Module: module}, wrangler.CompatibilityDate, suite.Deployed)
	ran := 0
	for _, v := range suite.Vectors {
		if v.Table == "seed" && v.Only == "" {
			ran++
			if err := wd.Do(v); err != nil {
				t.Errorf("the built dispatch Worker: %s: %v", v, err)
			}
		}
	}
	t.Logf("the built module passed %d vectors of the seed table in workerd", ran)

	out = ok(t, "dispatcher", "deploy", "--env", "production")
	if !strings.Contains(out, "version 1: live") {
		t.Fatalf("dispatcher deploy printed %q", out)
	}
	if h := ok(t, "dispatcher", "history", "--env", "production"); !strings.Contains(h, "live") {
		t.Fatalf("dispatcher history:\n%s", h)
	}
	audit := ok(t, "audit", "list", "--limit", "100")
	for _, want := range []string{"routes.set", "routes.rollback", "dispatcher.deploy", "dispatcher/production/1"} {
		if !strings.Contains(audit, want) {
			t.Fatalf("audit list lacks %q:\n%s", want, audit)
		}
	}
}

// TestCLIAnyWorkerSubdomains switches production to subdomains_any_worker
// with `dotdo routes set --file`: a deployed worker that the table does not
// list answers on its subdomain within a second, a name with nothing live
// is a 404 no_live_version, and a rollback makes the unlisted worker
// unreachable again.
func TestCLIAnyWorkerSubdomains(t *testing.T) {
	need(t)
	ok(t, "deploy", "--service", "tenant-4242", "--file", writeWorker(t, "tenant-4242"))
	if got := through(t, "tenant-4242.do", "/"); !strings.Contains(got, `"not_found"`) {
		t.Fatalf("tenant-4242.do before the change answered %q; want not_found (not listed)", got)
	}
	var table routing.Table
	if err := json.Unmarshal([]byte(ok(t, "routes", "get", "--env", "production", "--output", "json")), &table); err != nil {
		t.Fatal(err)
	}
	table.SubdomainsAnyWorker = true
	file := filepath.Join(t.TempDir(), "routes.json")
	if err := os.WriteFile(file, table.MarshalIndent(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := ok(t, "routes", "set", "--env", "production", "--file", file); !strings.Contains(out, "~ subdomains_any_worker: false -> true") {
		t.Fatalf("routes set printed %q", out)
	}
	if out := ok(t, "routes", "get", "--env", "production"); !strings.Contains(out, "on, any worker of the environment: <worker>.do") {
		t.Fatalf("routes get printed %q", out)
	}
	took := until(t, "tenant-4242.do", "/x", "tenant-4242 /x", time.Second)
	t.Logf("tenant-4242.do reached its worker %v after routes set returned", took)
	if got := through(t, "tenant-4243.do", "/"); !strings.Contains(got, `"no_live_version"`) {
		t.Fatalf("tenant-4243.do answered %q; want no_live_version", got)
	}
	ok(t, "routes", "rollback", "--env", "production")
	until(t, "tenant-4242.do", "/", `"not_found"`, time.Second)
}
