package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
)

// send makes a request with a body through the platform's dispatcher.
func send(t *testing.T, method, host, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, platform.dispURL+path, strings.NewReader(body))
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestSeedWorkers is issue 14's acceptance for the seed: examples/seed
// deploys with one command, each deploy carrying commit, branch and
// author; gateway reaches the others through its bindings; `dotdo trigger
// scheduled` runs schedule's handler, which writes to db through a
// binding; and its cron fires on its own within a minute and a few
// seconds.
func TestSeedWorkers(t *testing.T) {
	need(t)
	seed, err := filepath.Abs("../../examples/seed")
	if err != nil {
		t.Fatal(err)
	}
	out := ok(t, "deploy", "--dir", seed, "--all", "--env", "production")
	for _, w := range []string{"gateway", "db", "auth", "schedule", "webhooks", "email", "mcp", "queue"} {
		if !strings.Contains(out, w+" production version") {
			t.Fatalf("deploy --all printed no line for %s:\n%s", w, out)
		}
	}
	if strings.Count(out, ": live") != 8 {
		t.Fatalf("deploy --all:\n%s", out)
	}
	var list struct {
		Deployments []struct {
			Vars     map[string]string `json:"vars"`
			Services []struct {
				Binding, Service string
			} `json:"services"`
			Metadata struct{ Commit, Branch, Author string } `json:"metadata"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(ok(t, "deployments", "--service", "gateway", "--limit", "1", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Deployments) != 1 || list.Deployments[0].Vars["GREETING"] != "hello from gateway" || len(list.Deployments[0].Services) != 7 {
		t.Fatalf("gateway's deployment: %+v", list)
	}
	if md := list.Deployments[0].Metadata; md.Commit == "" || md.Author == "" {
		t.Logf("note: metadata %+v (commit and author come from the git checkout)", md)
	}

	if got := through(t, "gateway.do", "/"); !strings.Contains(got, `"greeting":"hello from gateway"`) {
		t.Fatalf("gateway answered %q", got)
	}
	if code, got := send(t, http.MethodPut, "gateway.do", "/api/db/greeting", "hi there"); code != 200 || !strings.Contains(got, "hi there") {
		t.Fatalf("PUT through gateway's binding: %d %q", code, got)
	}
	if got := through(t, "api.do", "/api/db/greeting"); !strings.Contains(got, `"value":"hi there"`) {
		t.Fatalf("db answered %q", got)
	}
	if code, got := send(t, http.MethodPost, "api.do", "/api/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"db_get","arguments":{"key":"greeting"}}}`); code != 200 || !strings.Contains(got, "hi there") {
		t.Fatalf("mcp's tool through its binding: %d %q", code, got)
	}
	if code, got := send(t, http.MethodGet, "gateway.do", "/api/auth/check", ""); code != 503 || !strings.Contains(got, "AUTH_TOKEN") {
		t.Fatalf("auth without its secret: %d %q", code, got)
	}

	out = ok(t, "trigger", "scheduled", "--service", "schedule", "--env", "production", "--cron", "0 0 1 1 *")
	if !strings.Contains(out, "scheduled() ran") {
		t.Fatalf("trigger scheduled printed %q", out)
	}
	if got := through(t, "api.do", "/api/schedule"); !strings.Contains(got, `"cron":"0 0 1 1 *"`) {
		t.Fatalf("schedule's ticks after the trigger: %q", got)
	}
	// The cron ("* * * * *") fires on its own at the next minute.
	took := until(t, "api.do", "/api/schedule", `"cron":"* * * * *"`, 70*time.Second)
	t.Logf("the cron fired %v after the trigger", took.Round(time.Second))
}

// TestWorkerConfigFromWrangler is issue 14's done-when for one worker: a
// directory whose wrangler.jsonc holds a var, a binding DB to db and a
// cron answers through the dispatcher with the var and what env.DB.fetch
// returned; `dotdo trigger scheduled` runs scheduled(), seen through a
// binding call; a redeploy without the config drops it and a rollback
// restores it. Bad configs are refused with the field, line or column.
func TestWorkerConfigFromWrangler(t *testing.T) {
	need(t)
	ok(t, "deploy", "--service", "db", "--env", "production", "--dir", mustAbs(t, "../../examples/seed/db"))
	dir := t.TempDir()
	testsupport.WriteFile(t, filepath.Join(dir, "src", "index.js"), `export default {
  async fetch(req, env) {
    const r = await env.DB.fetch("http://db/api/db/webhooks-cron");
    return new Response(env.GREETING + " | " + r.status + " " + await r.text());
  },
  async scheduled(controller, env) {
    await env.DB.fetch("http://db/api/db/webhooks-cron", { method: "POST", body: controller.cron });
  },
};`, 0o644)
	testsupport.WriteFile(t, filepath.Join(dir, "wrangler.jsonc"), `{
  // a worker of the seed's table, configured here
  "name": "webhooks",
  "main": "./src/index.js",
  "compatibility_date": "2025-01-01",
  "vars": { "GREETING": "hello from wrangler.jsonc" },
  "services": [{ "binding": "DB", "service": "db" }],
  "triggers": { "crons": ["*/10 * * * *"] },
  "limits": { "cpu_ms": 5000 },
  "kv_namespaces": [{ "binding": "KV", "id": "x" }],
}`, 0o644)
	r := dotdo(t, platform.adminKey, nil, "deploy", "--dir", dir, "--env", "production")
	wantExit(t, r, 0, "not supported by the platform, ignored: kv_namespaces")
	if got := through(t, "webhooks.do", "/"); got != "hello from wrangler.jsonc | 404 "+`{"error":"not found","key":"webhooks-cron"}` {
		t.Fatalf("webhooks answered %q", got)
	}
	ok(t, "trigger", "scheduled", "--service", "webhooks", "--env", "production")
	if got := through(t, "webhooks.do", "/"); !strings.Contains(got, `200 {"key":"webhooks-cron","value":["*/10 * * * *"]}`) {
		t.Fatalf("webhooks after its scheduled run answered %q", got)
	}
	var dep struct {
		Deployment struct {
			Version string   `json:"version"`
			Crons   []string `json:"crons"`
			Limits  struct {
				CPUMs string `json:"cpuMs"`
			} `json:"limits"`
		} `json:"deployment"`
	}
	plain := writeWorker(t, "plain")
	if err := json.Unmarshal([]byte(ok(t, "deploy", "--service", "webhooks", "--env", "production", "--file", plain, "--output", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	if len(dep.Deployment.Crons) != 0 || !strings.HasPrefix(through(t, "webhooks.do", "/"), "plain") {
		t.Fatalf("a deploy without config: %+v", dep)
	}
	out := ok(t, "rollback", "--service", "webhooks", "--env", "production", "--output", "json")
	if err := json.Unmarshal([]byte(out), &dep); err != nil || len(dep.Deployment.Crons) != 1 || dep.Deployment.Limits.CPUMs != "5000" {
		t.Fatalf("rollback printed %s (%v)", out, err)
	}
	if got := through(t, "webhooks.do", "/"); !strings.HasPrefix(got, "hello from wrangler.jsonc | 200") {
		t.Fatalf("webhooks after the rollback answered %q", got)
	}

	// Bad input: nothing is deployed.
	for _, tc := range []struct{ config, want string }{
		{"{\n  \"name\": \"webhooks\"\n  \"main\": \"src/index.js\"\n}", "line 3, column 3"},
		{`{"name": "webhooks", "main": "src/index.js", "services": [{"binding": "DB", "service": "dbx"}]}`, `services[0].service: no worker "dbx" in environment production`},
		{`{"name": "webhooks", "main": "src/index.js", "triggers": {"crons": ["61 * * * *"]}}`, "crons[0]"},
		{`{"name": "webhooks", "main": "src/index.js", "vars": {"NOT-AN-ID": "x"}}`, `vars["NOT-AN-ID"]`},
		{`{"name": "webhooks", "main": "src/index.js", "limits": {"cpu_ms": 300001}}`, "limits.cpu_ms"},
	} {
		testsupport.WriteFile(t, filepath.Join(dir, "wrangler.jsonc"), tc.config, 0o644)
		wantExit(t, dotdo(t, platform.adminKey, nil, "deploy", "--dir", dir, "--env", "production"), 6, tc.want)
	}
	if got := through(t, "webhooks.do", "/"); !strings.HasPrefix(got, "hello from wrangler.jsonc | 200") {
		t.Fatalf("webhooks after refused deploys answered %q", got)
	}
}

// TestCLIHelpAndJSON checks that every command and subcommand answers
// --help with its usage, and that keys create prints JSON.
func TestCLIHelpAndJSON(t *testing.T) {
	need(t)
	for _, args := range [][]string{
		{"--help"}, {"deploy", "--help"}, {"rollback", "--help"}, {"deployments", "--help"}, {"dev", "--help"},
		{"keys", "--help"}, {"keys", "create", "--help"}, {"keys", "list", "--help"}, {"keys", "revoke", "--help"},
		{"keys", "rotate", "--help"}, {"keys", "bootstrap", "--help"}, {"namespaces", "--help"}, {"namespaces", "ensure", "--help"},
		{"namespaces", "list", "--help"}, {"routes", "--help"}, {"routes", "get", "--help"}, {"routes", "set", "--help"},
		{"routes", "history", "--help"}, {"routes", "diff", "--help"}, {"routes", "rollback", "--help"}, {"routes", "resolve", "--help"},
		{"dispatcher", "--help"}, {"dispatcher", "build", "--help"}, {"dispatcher", "deploy", "--help"}, {"dispatcher", "history", "--help"},
		{"dispatcher", "rollback", "--help"}, {"audit", "--help"}, {"audit", "list", "--help"}, {"audit", "verify", "--help"},
		{"audit", "head", "--help"}, {"tail", "--help"}, {"trigger", "--help"}, {"trigger", "scheduled", "--help"},
		{"secret", "--help"}, {"secret", "put", "--help"}, {"secret", "list", "--help"}, {"secret", "delete", "--help"},
	} {
		r := dotdo(t, "", nil, args...)
		if r.code != 0 || !strings.Contains(strings.ToLower(r.stdout+r.stderr), "usage") {
			t.Errorf("dotdo %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	var created struct {
		APIKey struct {
			KeyID string `json:"keyId"`
		} `json:"apiKey"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(ok(t, "keys", "create", "--name", "json-key", "--role", "viewer", "--output", "json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.APIKey.KeyID == "" || !keyRE.MatchString(created.Secret) {
		t.Fatalf("keys create --output json: %+v", created)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
