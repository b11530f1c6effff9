package runtime_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/runtime"
)

const helloWorker = `export default { fetch() { return new Response("hello") } }`

// TestNewVersionBlueGreen: a new version gets a process of its own, started
// when it is uploaded (the script has traffic); the old version's process
// serves until the new one gets its first request, then ends; and the old
// version stays reachable by number (in a process started for it again).
func TestNewVersionBlueGreen(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v1 := e.mustUpload("ns", "app", `export default { fetch() { return new Response("v1") } }`, nil)
	if s, b := e.invoke("ns", "app", v1, "/"); s != 200 || b != "v1" {
		t.Fatalf("v1: %d %q", s, b)
	}
	pid1 := e.pid("ns", "app")
	if pid1 == 0 {
		t.Fatal("no process for ns/app")
	}
	v2 := e.mustUpload("ns", "app", `export default { fetch() { return new Response("v2") } }`, nil)
	if v2 != v1+1 {
		t.Fatalf("versions %d then %d", v1, v2)
	}
	// The new version starts before its first request (the script has
	// traffic), and the old one keeps serving until then.
	waitFor(t, 5*time.Second, "v2's process to start ahead of traffic", func() bool {
		for _, p := range e.rt.Processes() {
			if p.Key.Version == v2 {
				return true
			}
		}
		return false
	})
	if !processAlive(pid1) || e.pid("ns", "app") != pid1 {
		t.Fatal("v1's process stopped before v2 had traffic")
	}
	if s, b := e.invoke("ns", "app", v1, "/"); s != 200 || b != "v1" {
		t.Fatalf("v1 while v2 is warm: %d %q", s, b)
	}
	if s, b := e.invoke("ns", "app", v2, "/"); s != 200 || b != "v2" {
		t.Fatalf("v2: %d %q", s, b)
	}
	if got := e.pid("ns", "app"); got == pid1 || got == 0 {
		t.Fatalf("v2 is served by pid %d (v1's was %d)", got, pid1)
	}
	waitFor(t, 5*time.Second, "v1's process to end", func() bool { return !processAlive(pid1) })
	if s, b := e.invoke("ns", "app", v1, "/"); s != 200 || b != "v1" {
		t.Fatalf("v1 after v2: %d %q", s, b)
	}
	// Upload checks ran in processes of their own: only the two versions
	// that were invoked have processes.
	if n := len(e.rt.Processes()); n != 2 {
		t.Errorf("%d processes, want 2: %+v", n, e.rt.Processes())
	}
}

// TestTopLevelThrow: an upload that throws at top level is rejected with
// Cloudflare's 400/10021 and the workerd message, nothing is stored, and the
// namespace's other workers keep working; so does a script that hangs at
// start-up.
func TestTopLevelThrow(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	ok := e.mustUpload("ns", "ok", helloWorker, nil)
	if s, _ := e.invoke("ns", "ok", ok, "/"); s != 200 {
		t.Fatalf("ok: %d", s)
	}
	pid := e.pid("ns", "ok")

	cases := []struct {
		name, code, want string
	}{
		{"throws", `throw new Error("boom at top level"); export default { fetch() { return new Response("x") } }`, "Uncaught Error: boom at top level"},
		{"syntax", `export default { fetch() { return new Response( } }`, "SyntaxError"},
		{"import", `import x from "./missing.js"; export default { fetch() { return new Response(x) } }`, "missing.js"},
		{"no-default", `export const x = 1;`, "ExportedHandler"},
		{"hangs", `while (true) {} export default { fetch() { return new Response("x") } }`, "exceeded"},
	}
	for _, c := range cases {
		status, env := e.upload("ns", c.name, map[string]any{"main_module": "worker.js", "compatibility_date": "2025-01-01"}, esm("worker.js", c.code))
		if status != http.StatusBadRequest || env.Success || len(env.Errors) != 1 || env.Errors[0].Code != 10021 || !strings.Contains(env.Errors[0].Message, c.want) {
			t.Errorf("%s: status %d, errors %+v; want 400 code 10021 containing %q", c.name, status, env.Errors, c.want)
		}
		if s, _ := e.api(http.MethodGet, "/ns/scripts/"+c.name, nil); s != http.StatusNotFound {
			t.Errorf("%s: script exists after a rejected upload (status %d)", c.name, s)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "namespaces", "ns", "scripts", c.name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: rejected upload left files: %v", c.name, err)
		}
		if s, b := e.invoke("ns", "ok", ok, "/"); s != 200 || b != "hello" {
			t.Errorf("after %s: ok worker answers %d %q", c.name, s, b)
		}
	}
	if got := e.pid("ns", "ok"); got != pid {
		t.Errorf("the serving process changed (%d -> %d): checks must not touch it", pid, got)
	}

	// A stored version that fails at start-up anyway (here: only when a
	// secret is set, which the upload check did not see) answers 500 and
	// breaks nothing else.
	v := e.mustUpload("ns", "fragile", `import { env } from "cloudflare:workers";
if (env.BREAK) throw new Error("broken by secret");
export default { fetch() { return new Response("fine") } }`, nil)
	if s, b := e.invoke("ns", "fragile", v, "/"); s != 200 || b != "fine" {
		t.Fatalf("fragile before: %d %q", s, b)
	}
	if s, env := e.api(http.MethodPut, "/ns/scripts/fragile/secrets", map[string]string{"name": "BREAK", "text": "1", "type": "secret_text"}); s != 200 {
		t.Fatalf("put secret: %d %+v", s, env.Errors)
	}
	if s, b := e.invoke("ns", "fragile", v, "/"); s != 500 || !strings.Contains(b, "Worker failed to start") {
		t.Fatalf("fragile after: %d %q, want 500 Worker failed to start", s, b)
	}
	if s, b := e.invoke("ns", "ok", ok, "/"); s != 200 || b != "hello" {
		t.Fatalf("ok after fragile: %d %q", s, b)
	}
}

// TestWorkerException: an exception in the fetch handler gives 500.
func TestWorkerException(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "bad", `export default { fetch() { throw new Error("secret detail") } }`, nil)
	s, b := e.invoke("ns", "bad", v, "/")
	if s != 500 || !strings.Contains(b, "Worker threw exception") || strings.Contains(b, "secret detail") {
		t.Fatalf("exception: %d %q", s, b)
	}
}

// TestBindingsAndSecrets: plain_text, json and secret_text bindings and the
// script's secrets reach env; secret values never come back from the API.
func TestBindingsAndSecrets(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "env", `export default { fetch(req, env) { return Response.json(env) } }`, map[string]any{
		"bindings": []map[string]any{
			{"type": "plain_text", "name": "PLAIN", "text": "plain value"},
			{"type": "json", "name": "CONF", "json": map[string]any{"limit": 3, "tiers": []string{"a", "b"}}},
			{"type": "secret_text", "name": "API_KEY", "text": "sk-binding-secret"},
		},
	})
	if s, env := e.api(http.MethodPut, "/ns/scripts/env/secrets", map[string]string{"name": "DB_PASSWORD", "text": "hunter2", "type": "secret_text"}); s != 200 {
		t.Fatalf("put secret: %d %+v", s, env.Errors)
	}
	s, b := e.invoke("ns", "env", v, "/")
	if s != 200 {
		t.Fatalf("invoke: %d %q", s, b)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(b), &got); err != nil {
		t.Fatalf("env: %q", b)
	}
	want := map[string]any{
		"PLAIN":       "plain value",
		"CONF":        map[string]any{"limit": float64(3), "tiers": []any{"a", "b"}},
		"API_KEY":     "sk-binding-secret",
		"DB_PASSWORD": "hunter2",
	}
	if gb, _ := json.Marshal(got); string(gb) != mustJSON(want) {
		t.Fatalf("env = %s, want %s", gb, mustJSON(want))
	}
	for _, path := range []string{"/ns/scripts/env/settings", "/ns/scripts/env/bindings", "/ns/scripts/env/secrets", "/ns/scripts/env/secrets/DB_PASSWORD", "/ns/scripts/env"} {
		s, env := e.api(http.MethodGet, path, nil)
		if s != 200 || strings.Contains(string(env.Result), "sk-binding-secret") || strings.Contains(string(env.Result), "hunter2") {
			t.Errorf("GET %s: %d %s", path, s, env.Result)
		}
	}
	// A changed secret reaches the same version on the next request.
	e.api(http.MethodPut, "/ns/scripts/env/secrets", map[string]string{"name": "DB_PASSWORD", "text": "correct horse"})
	if _, b := e.invoke("ns", "env", v, "/"); !strings.Contains(b, `"DB_PASSWORD":"correct horse"`) {
		t.Fatalf("after secret change: %s", b)
	}
	// keep_bindings carries secret_text bindings into the next version.
	v2 := e.mustUpload("ns", "env", `export default { fetch(req, env) { return Response.json(env) } }`, map[string]any{
		"keep_bindings": []string{"secret_text"},
	})
	if _, b := e.invoke("ns", "env", v2, "/"); !strings.Contains(b, `"API_KEY":"sk-binding-secret"`) || strings.Contains(b, "PLAIN") {
		t.Fatalf("v2 env: %s", b)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestInvocation checks the invocation endpoint's contract: credential,
// header hygiene, URL, streaming in both directions, 404s.
func TestInvocation(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	echo := e.mustUpload("ns", "echo", `export default {
  async fetch(req) {
    const body = req.method === "POST" ? await req.text() : "";
    return Response.json({ method: req.method, url: req.url, headers: Object.fromEntries(req.headers), body });
  },
}`, nil)
	stream := e.mustUpload("ns", "stream", `export default {
  async fetch(req) {
    const { readable, writable } = new TransformStream();
    const w = writable.getWriter();
    (async () => {
      for (let i = 0; i < 3; i++) {
        await w.write(new TextEncoder().encode("chunk" + i + "\n"));
        await new Promise((r) => setTimeout(r, 300));
      }
      await w.close();
    })();
    return new Response(readable, { headers: { "content-type": "text/plain" } });
  },
}`, nil)

	req, _ := http.NewRequest(http.MethodPost, e.invokeURL("ns", "echo", echo, "/a/b%2Fc?x=1&y=two"), strings.NewReader("payload"))
	req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
	req.Header.Set("Authorization", "Bearer end-user-token")
	req.Header.Set("X-Forwarded-Host", "shop.example.com")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("x-dotdo-url", "http://spoofed.example/")
	req.Header.Set("x-dotdo-id", "other/ns@1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	_ = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if res.StatusCode != 200 || got.Method != "POST" || got.Body != "payload" || got.URL != "https://shop.example.com/a/b%2Fc?x=1&y=two" {
		t.Fatalf("echo: %d %+v", res.StatusCode, got)
	}
	if got.Headers["authorization"] != "Bearer end-user-token" {
		t.Errorf("end user's Authorization did not reach the worker: %q", got.Headers["authorization"])
	}
	for k, v := range got.Headers {
		if strings.HasPrefix(k, "x-dotdo") || strings.Contains(v, invokeToken) {
			t.Errorf("worker saw control header %s: %s", k, v)
		}
	}

	// The response streams: the first chunk arrives long before the last.
	req, _ = http.NewRequest(http.MethodGet, e.invokeURL("ns", "stream", stream, "/"), nil)
	req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
	begin := time.Now()
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(res.Body)
	first, _ := rd.ReadString('\n')
	firstAt := time.Since(begin)
	rest, _ := io.ReadAll(rd)
	res.Body.Close()
	if first != "chunk0\n" || string(rest) != "chunk1\nchunk2\n" || firstAt > 500*time.Millisecond || time.Since(begin) < 600*time.Millisecond {
		t.Fatalf("stream: first %q after %v, rest %q after %v", first, firstAt, rest, time.Since(begin))
	}

	// Credential.
	for _, tok := range []string{"", "wrong", invokeToken + "x"} {
		req, _ := http.NewRequest(http.MethodGet, e.invokeURL("ns", "echo", echo, "/"), nil)
		if tok != "" {
			req.Header.Set(runtime.InvokeTokenHeader, tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), invokeToken) {
			t.Errorf("token %q: %d %q", tok, res.StatusCode, b)
		}
	}
	// Unknown targets.
	for _, p := range []string{"/invoke/nope/echo/1/", "/invoke/ns/nope/1/", "/invoke/ns/echo/99/", "/invoke/ns/echo/0/", "/invoke/ns/echo/x/", "/invoke/ns/echo", "/invoke/..%2Fns/echo/1/"} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
		req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"Worker not found"`) || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q", p, res.StatusCode, b)
		}
	}
}

// TestPersistence: a closed and reopened runtime serves the same data.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir, nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", `export default { fetch(req, env) { return new Response("persisted " + env.TOKEN) } }`, nil)
	e.api(http.MethodPut, "/ns/scripts/app/secrets", map[string]string{"name": "TOKEN", "text": "t0k"})
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "persisted t0k" {
		t.Fatalf("before: %d %q", s, b)
	}
	var pids []int
	for _, p := range e.rt.Processes() {
		pids = append(pids, p.PID)
	}
	if len(pids) == 0 {
		t.Fatal("no processes")
	}
	e.close()
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("workerd pid %d outlived Close", pid)
		}
	}

	e2 := start(t, dir, nil)
	if s, b := e2.invoke("ns", "app", v, "/"); s != 200 || b != "persisted t0k" {
		t.Fatalf("after reopen: %d %q", s, b)
	}
	if got := e2.listScripts("ns", ""); len(got) != 1 || got[0] != "app" {
		t.Fatalf("scripts after reopen: %v", got)
	}
	if v2 := e2.mustUpload("ns", "app", helloWorker, nil); v2 != v+1 {
		t.Fatalf("next version after reopen: %d, want %d", v2, v+1)
	}
}

// TestLogsLeakNothing: at debug level, no token or secret value reaches the
// log, whatever the client sends.
func TestLogsLeakNothing(t *testing.T) {
	var logs testsupport.LogBuffer
	e := start(t, t.TempDir(), func(c *runtime.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", `export default { fetch(req, env) { if (new URL(req.url).pathname === "/throw") throw new Error("boom"); return new Response(env.S1.length + env.S2.length) } }`, map[string]any{
		"bindings": []map[string]any{{"type": "secret_text", "name": "S1", "text": "binding-secret-value"}},
	})
	e.api(http.MethodPut, "/ns/scripts/app/secrets", map[string]string{"name": "S2", "text": "api-secret-value"})
	e.invoke("ns", "app", v, "/")
	e.invoke("ns", "app", v, "/throw")
	e.upload("ns", "bad", map[string]any{"main_module": "worker.js"}, esm("worker.js", `throw new Error("x")`))
	for _, tok := range []string{"Bearer wrong-api-token-value", "Bearer " + apiToken} {
		req, _ := http.NewRequest(http.MethodGet, e.apiURL(""), nil)
		req.Header.Set("Authorization", tok)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.invokeURL("ns", "app", v, "/"), nil)
	req.Header.Set(runtime.InvokeTokenHeader, "wrong-invoke-token-value")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	e.close()
	out := logs.String()
	if os.Getenv("SHOWLOGS") != "" {
		t.Log(out)
	}
	if !strings.Contains(out, "script uploaded") || !strings.Contains(out, "threw") {
		t.Fatalf("expected log lines missing:\n%s", out)
	}
	for _, s := range []string{apiToken, invokeToken, "binding-secret-value", "api-secret-value", "wrong-api-token-value", "wrong-invoke-token-value"} {
		if strings.Contains(out, s) {
			t.Errorf("the log contains %q", s)
		}
	}
}
