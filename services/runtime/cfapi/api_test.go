package cfapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dot-do/platform/services/runtime/cfapi"
)

func TestAuth(t *testing.T) {
	h := newHarness(t, 0)
	cases := []struct {
		name, auth string
		status     int
		code       int
	}{
		{"missing", "", 400, cfapi.CodeAuthMissing},
		{"basic", "Basic dXNlcjpwYXNz", 400, cfapi.CodeAuthFormat},
		{"empty bearer", "Bearer ", 400, cfapi.CodeAuthFormat},
		{"wrong", "Bearer not-the-token", 403, cfapi.CodeAuthInvalid},
		{"prefix", "Bearer " + token[:len(token)-1], 403, cfapi.CodeAuthInvalid},
	}
	for _, c := range cases {
		r := h.do(http.MethodGet, base, c.auth, "", nil)
		wantError(t, c.name, r, c.status, c.code)
		if strings.Contains(r.raw, token) || strings.Contains(r.raw, "not-the-token") {
			t.Errorf("%s: a token was echoed: %s", c.name, r.raw)
		}
	}
	// Bearer scheme is case-insensitive.
	if r := h.do(http.MethodGet, base, "bearer "+token, "", nil); r.status != 200 || !r.env.Success {
		t.Errorf("lowercase bearer: %d %s", r.status, r.raw)
	}
	// Other accounts, other paths, other methods.
	wantError(t, "foreign account", h.do(http.MethodGet, "/client/v4/accounts/someone-else/workers/dispatch/namespaces", "Bearer "+token, "", nil), 403, cfapi.CodeAuthError)
	wantError(t, "no route", h.do(http.MethodGet, "/client/v4/accounts/local/workers/scripts", "Bearer "+token, "", nil), 404, cfapi.CodeNoRoute)
	wantError(t, "no route deep", h.api(http.MethodGet, "/ns/scripts/x/nope", nil), 404, cfapi.CodeNoRoute)
	wantError(t, "method", h.api(http.MethodPatch, "", nil), 405, cfapi.CodeMethodNotAllowed)
	// Unauthenticated requests learn nothing about routes.
	wantError(t, "no route unauthenticated", h.do(http.MethodGet, "/client/v4/nope", "", "", nil), 400, cfapi.CodeAuthMissing)
}

func TestNamespaces(t *testing.T) {
	h := newHarness(t, 0)
	r := h.api(http.MethodPost, "", map[string]string{"name": "dotdo-production"})
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	var ns struct {
		ID      string `json:"namespace_id"`
		Name    string `json:"namespace_name"`
		Scripts int    `json:"script_count"`
	}
	_ = json.Unmarshal(r.env.Result, &ns)
	if ns.ID == "" || ns.Name != "dotdo-production" {
		t.Fatalf("create result: %s", r.env.Result)
	}
	dup := h.api(http.MethodPost, "", map[string]string{"name": "dotdo-production"})
	wantError(t, "duplicate", dup, 409, cfapi.CodeNamespaceExists)
	if dup.header.Get("X-Should-Retry") != "false" {
		t.Errorf("409 without X-Should-Retry: false")
	}
	for _, bad := range []any{map[string]string{"name": "A B"}, map[string]string{"name": "../x"}, map[string]string{}, "not an object"} {
		wantError(t, fmt.Sprintf("create %v", bad), h.api(http.MethodPost, "", bad), 400, map[bool]int{true: cfapi.CodeBadBody, false: cfapi.CodeInvalidName}[bad == "not an object"])
	}
	h.mustUpload("dotdo-production", "gateway", nil)
	r = h.api(http.MethodGet, "/dotdo-production", nil)
	_ = json.Unmarshal(r.env.Result, &ns)
	if r.status != 200 || ns.Scripts != 1 {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	r = h.api(http.MethodGet, "", nil)
	var list []json.RawMessage
	_ = json.Unmarshal(r.env.Result, &list)
	if r.status != 200 || len(list) != 1 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	wantError(t, "get missing", h.api(http.MethodGet, "/nope", nil), 404, cfapi.CodeNamespaceMissing)
	wantError(t, "upload to missing", h.upload("nope", "x", meta(map[string]string{"main_module": "worker.js"}), module("worker.js", "application/javascript+module", okJS)), 404, cfapi.CodeNamespaceMissing)
	if r := h.api(http.MethodDelete, "/dotdo-production", nil); r.status != 200 || string(r.env.Result) != "null" {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	wantError(t, "get deleted", h.api(http.MethodGet, "/dotdo-production", nil), 404, cfapi.CodeNamespaceMissing)
	wantError(t, "delete deleted", h.api(http.MethodDelete, "/dotdo-production", nil), 404, cfapi.CodeNamespaceMissing)
}

func TestBadUploads(t *testing.T) {
	h := newHarness(t, 1024)
	h.api(http.MethodPost, "", map[string]string{"name": "ns"})
	h.mustUpload("ns", "existing", nil)
	h.checker.calls = 0
	js := module("worker.js", "application/javascript+module", okJS)
	m := meta(map[string]any{"main_module": "worker.js"})
	cases := []struct {
		name        string
		ns, script  string
		parts       []part
		contentType string
		status      int
		code        int
	}{
		{name: "no metadata", parts: []part{js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "main module missing", parts: []part{meta(map[string]any{"main_module": "index.js"}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "no main module", parts: []part{meta(map[string]any{}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "metadata not json", parts: []part{{form: "metadata", content: "{main_module: worker.js"}, js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "too large", parts: []part{m, module("worker.js", "application/javascript+module", okJS+"//"+strings.Repeat("x", 2000))}, status: 400, code: cfapi.CodeScriptTooLarge},
		{name: "too large in total", parts: []part{m, js, module("a.txt", "text/plain", strings.Repeat("x", 1000))}, status: 400, code: cfapi.CodeScriptTooLarge},
		{name: "no modules", parts: []part{m}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "duplicate module", parts: []part{m, js, js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "bad module name", parts: []part{meta(map[string]any{"main_module": "../worker.js"}), module("../worker.js", "application/javascript+module", okJS)}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "unsupported content type", parts: []part{m, js, module("main.py", "text/x-python", "print(1)")}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "invalid json module", parts: []part{m, js, module("data.json", "application/json", "{nope")}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "main module not js", parts: []part{meta(map[string]any{"main_module": "a.txt"}), module("a.txt", "text/plain", "hi")}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "unsupported binding", parts: []part{meta(map[string]any{"main_module": "worker.js", "bindings": []any{map[string]any{"type": "kv_namespace", "name": "KV", "namespace_id": "x"}}}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "binding without text", parts: []part{meta(map[string]any{"main_module": "worker.js", "bindings": []any{map[string]any{"type": "plain_text", "name": "X"}}}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "bad binding name", parts: []part{meta(map[string]any{"main_module": "worker.js", "bindings": []any{map[string]any{"type": "plain_text", "name": "1 X", "text": "v"}}}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "duplicate binding", parts: []part{meta(map[string]any{"main_module": "worker.js", "bindings": []any{map[string]any{"type": "plain_text", "name": "X", "text": "v"}, map[string]any{"type": "plain_text", "name": "X", "text": "w"}}}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "bad compatibility date", parts: []part{meta(map[string]any{"main_module": "worker.js", "compatibility_date": "yesterday"}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "too many tags", parts: []part{meta(map[string]any{"main_module": "worker.js", "tags": []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "service worker syntax", parts: []part{meta(map[string]any{"body_part": "worker.js"}), js}, status: 400, code: cfapi.CodeInvalidScript},
		{name: "not multipart", contentType: "application/json", status: 400, code: cfapi.CodeBadBody},
		{name: "name with traversal", script: "..%2Fx", parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "name with space", script: "A%20B", parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "uppercase name", script: "Hello", parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "leading dash", script: "-x", parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "dot name", script: "a.b", parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "long name", script: strings.Repeat("a", 64), parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "namespace traversal", ns: "..%2F..%2Fetc", parts: []part{m, js}, status: 400, code: cfapi.CodeInvalidName},
		{name: "existing script, bad upload", script: "existing", parts: []part{meta(map[string]any{"main_module": "index.js"}), js}, status: 400, code: cfapi.CodeInvalidScript},
	}
	for _, c := range cases {
		before := snapshot(t, h.dir)
		ns, script := c.ns, c.script
		if ns == "" {
			ns = "ns"
		}
		if script == "" {
			script = "app"
		}
		var r response
		if c.contentType != "" {
			r = h.do(http.MethodPut, base+"/"+ns+"/scripts/"+script, "Bearer "+token, c.contentType, strings.NewReader(`{"main_module":"worker.js"}`))
		} else {
			body, ct := multipartBody(c.parts...)
			r = h.do(http.MethodPut, base+"/"+ns+"/scripts/"+script, "Bearer "+token, ct, body)
		}
		wantError(t, c.name, r, c.status, c.code)
		if after := snapshot(t, h.dir); !slices.Equal(before, after) {
			t.Errorf("%s: the data dir changed:\nbefore %v\nafter  %v", c.name, before, after)
		}
	}
	if h.checker.calls != 0 {
		t.Errorf("invalid uploads reached the startup check %d times", h.checker.calls)
	}
	if v := h.mustUpload("ns", "existing", nil); v != 2 {
		t.Errorf("after rejected uploads the next version is %d, want 2", v)
	}

	// A start-up failure is a 400 too, and writes nothing.
	h.checker.err = &cfapi.ScriptError{Message: "Uncaught Error: boom\n  at worker.js:1:7"}
	before := snapshot(t, h.dir)
	r := h.upload("ns", "app", m, js)
	wantError(t, "startup failure", r, 400, cfapi.CodeInvalidScript)
	if !strings.Contains(r.env.Errors[0].Message, "Uncaught Error: boom") {
		t.Errorf("startup failure message: %q", r.env.Errors[0].Message)
	}
	// The check being unavailable is a 503, and writes nothing.
	h.checker.err = errors.New("workerd unavailable: dial unix: no such file")
	r = h.upload("ns", "app", m, js)
	wantError(t, "check unavailable", r, 503, cfapi.CodeUnavailable)
	if strings.Contains(r.raw, "dial unix") {
		t.Errorf("internal error leaked: %s", r.raw)
	}
	if after := snapshot(t, h.dir); !slices.Equal(before, after) {
		t.Errorf("failed checks changed the data dir")
	}
}

func TestScriptsTagsAndContent(t *testing.T) {
	h := newHarness(t, 0)
	h.api(http.MethodPost, "", map[string]string{"name": "ns"})
	wasm := string([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	v := h.mustUpload("ns", "multi", map[string]any{
		"main_module": "src/index.js",
		"bindings": []any{
			map[string]any{"type": "plain_text", "name": "PLAIN", "text": "p"},
			map[string]any{"type": "secret_text", "name": "SECRET", "text": "s3cr3t"},
		},
		"tags": []string{"customer-1", "free"},
	},
		module("src/index.js", "application/javascript+module", `import t from "./lib/t.txt"; export default { fetch() { return new Response(t) } }`),
		module("src/lib/t.txt", "text/plain", "text module"),
		module("src/m.wasm", "application/wasm", wasm),
		module("src/d.json", "application/json", `{"a":1}`),
	)
	if v != 1 {
		t.Fatalf("first version %d", v)
	}
	// Content comes back with the full module paths.
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+base+"/ns/scripts/multi/content", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	mr := multipart.NewReader(res.Body, params["boundary"])
	got := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		_, dp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		b, _ := io.ReadAll(p)
		got[dp["filename"]] = p.Header.Get("Content-Type") + "|" + string(b)
	}
	res.Body.Close()
	if res.Header.Get("CF-WORKER-MAIN-MODULE-PART") != "src/index.js" || got["src/lib/t.txt"] != "text/plain|text module" || got["src/m.wasm"] != "application/wasm|"+wasm || len(got) != 4 {
		t.Fatalf("content: %v (main %q)", got, res.Header.Get("CF-WORKER-MAIN-MODULE-PART"))
	}
	// Secret binding values never come back.
	for _, p := range []string{"/ns/scripts/multi", "/ns/scripts/multi/settings", "/ns/scripts/multi/bindings", "/ns/scripts"} {
		if r := h.api(http.MethodGet, p, nil); r.status != 200 || strings.Contains(r.raw, "s3cr3t") {
			t.Errorf("GET %s: %d %s", p, r.status, r.raw)
		}
	}
	// Content PUT: new modules, same bindings, a new version.
	body, ct := multipartBody(meta(map[string]any{"main_module": "index.js"}), module("index.js", "application/javascript+module", okJS))
	r := h.do(http.MethodPut, base+"/ns/scripts/multi/content", "Bearer "+token, ct, body)
	if r.status != 200 || r.header.Get("X-Dotdo-Script-Version") != "2" {
		t.Fatalf("content PUT: %d %s", r.status, r.raw)
	}
	sc, _ := h.store.Script("ns", "multi")
	if len(sc.Current.Bindings) != 2 || sc.Current.MainModule != "index.js" || !slices.Equal(sc.Tags, []string{"customer-1", "free"}) {
		t.Fatalf("after content PUT: %+v", sc)
	}

	// Tags and delete by tag.
	h.mustUpload("ns", "a", map[string]any{"tags": []string{"customer-1"}})
	h.mustUpload("ns", "b", map[string]any{"tags": []string{"customer-2"}})
	h.mustUpload("ns", "c", nil)
	if r := h.api(http.MethodPut, "/ns/scripts/c/tags/customer-1", nil); r.status != 200 {
		t.Fatalf("put tag: %d %s", r.status, r.raw)
	}
	if r := h.api(http.MethodPut, "/ns/scripts/c/tags", []string{"x,y"}); r.status != 400 {
		t.Fatalf("bad tag accepted: %d %s", r.status, r.raw)
	}
	wantError(t, "delete without filter", h.api(http.MethodDelete, "/ns/scripts", nil), 400, cfapi.CodeBadBody)
	if r := h.api(http.MethodDelete, "/ns/scripts?tags=customer-1:yes,free:no", nil); r.status != 200 {
		t.Fatalf("delete by tag: %d %s", r.status, r.raw)
	}
	var names []string
	r = h.api(http.MethodGet, "/ns/scripts", nil)
	var list []struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.env.Result, &list)
	for _, s := range list {
		names = append(names, s.ID)
	}
	if !slices.Equal(names, []string{"b", "multi"}) {
		t.Fatalf("after delete by tag: %v", names)
	}
	// Deleted scripts never reuse version numbers.
	if v := h.mustUpload("ns", "a", nil); v != 2 {
		t.Fatalf("re-created script got version %d, want 2", v)
	}
	wantError(t, "missing script", h.api(http.MethodGet, "/ns/scripts/zzz", nil), 404, cfapi.CodeScriptNotFound)
	wantError(t, "missing secret", h.api(http.MethodGet, "/ns/scripts/a/secrets/NOPE", nil), 404, cfapi.CodeSecretNotFound)
	wantError(t, "secret_key", h.api(http.MethodPut, "/ns/scripts/a/secrets", map[string]any{"name": "K", "type": "secret_key"}), 400, cfapi.CodeBadBody)
	wantError(t, "secret name", h.api(http.MethodPut, "/ns/scripts/a/secrets", map[string]any{"name": "../K", "text": "v"}), 400, cfapi.CodeInvalidName)
}

func TestNoTempFilesLeft(t *testing.T) {
	h := newHarness(t, 0)
	h.api(http.MethodPost, "", map[string]string{"name": "ns"})
	for i := 0; i < 3; i++ {
		h.mustUpload("ns", "app", nil)
	}
	h.api(http.MethodPut, "/ns/scripts/app/secrets", map[string]any{"name": "K", "text": "v"})
	h.api(http.MethodDelete, "/ns/scripts/app", nil)
	err := filepath.WalkDir(h.dir, func(p string, d fs.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".tmp-") || strings.HasPrefix(d.Name(), "trash-") {
			t.Errorf("leftover %s", p)
		}
		if !d.IsDir() && d.Name() != "LOCK" {
			if info, _ := d.Info(); info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v", p, info.Mode().Perm())
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "namespaces", "ns", "scripts", "app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted script still on disk: %v", err)
	}
}
