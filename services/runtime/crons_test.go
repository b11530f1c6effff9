package runtime_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestServiceBindingsAndSchedules checks the runtime's service bindings
// (the live version of the target) and its cron triggers API: PUT/GET
// schedules, POST scheduled, and a new version starting without crons.
func TestServiceBindingsAndSchedules(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	e.mustUpload("ns", "db", `let posts = 0; export default { async fetch(req) { if (req.method === "POST") posts++; return new Response("db posts=" + posts) } }`, nil)
	app := `export default {
  async fetch(req, env) { return new Response("app " + await (await env.DB.fetch("http://db/")).text()) },
  async scheduled(c, env) { await env.DB.fetch("http://db/", { method: "POST", body: c.cron }) },
};`
	v := e.mustUpload("ns", "app", app, map[string]any{"bindings": []map[string]any{{"type": "service", "name": "DB", "service": "db"}}})
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "app db posts=0" {
		t.Fatalf("invoke: %d %q", s, b)
	}
	if s, env := e.api(http.MethodPut, "/ns/scripts/app/schedules", []map[string]string{{"cron": "*/5 * * * *"}}); s != 200 || !strings.Contains(string(env.Result), `"cron":"*/5 * * * *"`) {
		t.Fatalf("put schedules: %d %s %+v", s, env.Result, env.Errors)
	}
	if s, env := e.api(http.MethodGet, "/ns/scripts/app/schedules", nil); s != 200 || string(env.Result) != `{"schedules":[{"cron":"*/5 * * * *"}]}` {
		t.Fatalf("get schedules: %d %s", s, env.Result)
	}
	if s, env := e.api(http.MethodPut, "/ns/scripts/app/schedules", []map[string]string{{"cron": "61 * * * *"}}); s != 400 || !strings.Contains(env.Errors[0].Message, "minute") {
		t.Fatalf("put a bad cron: %d %+v", s, env.Errors)
	}
	if s, env := e.api(http.MethodPost, "/ns/scripts/app/scheduled?cron=0+0+*+*+*", nil); s != 200 {
		t.Fatalf("run scheduled: %d %+v", s, env.Errors)
	}
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "app db posts=1" {
		t.Fatalf("invoke after the scheduled run: %d %q", s, b)
	}
	if s, _ := e.api(http.MethodPost, "/ns/scripts/nope/scheduled", nil); s != 404 {
		t.Fatalf("run scheduled of a missing script: %d", s)
	}
	throws := `export default { fetch() { return new Response("x") }, scheduled() { throw new Error("boom") } };`
	e.mustUpload("ns", "app", throws, nil)
	if s, env := e.api(http.MethodPost, "/ns/scripts/app/scheduled", nil); s != 400 || !strings.Contains(env.Errors[0].Message, "boom") {
		t.Fatalf("run a throwing scheduled handler: %d %+v", s, env.Errors)
	}
	if _, env := e.api(http.MethodGet, "/ns/scripts/app/schedules", nil); string(env.Result) != `{"schedules":[]}` {
		t.Fatalf("a new version kept the crons: %s", env.Result)
	}
	if s, env := e.upload("ns", "bad", map[string]any{"main_module": "w.js", "bindings": []map[string]any{{"type": "service", "name": "DB", "service": "Not/A/Script"}}},
		esm("w.js", "export default {}")); s != 400 {
		t.Fatalf("a service binding to a bad name: %d %+v", s, env.Errors)
	}
}
