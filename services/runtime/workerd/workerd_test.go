package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
)

func TestFindBinary(t *testing.T) {
	t.Setenv(EnvBinary, "")
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := FindBinary("", deep); !errors.Is(err, ErrBinaryNotFound) {
		t.Fatalf("empty tree: %v", err)
	}
	// A JavaScript launcher in .bin resolves to the platform binary.
	bin := filepath.Join(root, "node_modules", ".bin", "workerd")
	native := filepath.Join(root, "node_modules", "@cloudflare", platformPackage(), "bin", "workerd")
	for p, content := range map[string]string{bin: "#!/usr/bin/env node\n", native: "\x7fELF"} {
		testsupport.WriteFile(t, p, content, 0o755)
	}
	got, err := FindBinary("", deep)
	if err != nil || got != native {
		t.Fatalf("walk up: %q %v, want %q", got, err, native)
	}
	// The environment variable wins over the search, an explicit path over both.
	other := filepath.Join(root, "other-workerd")
	testsupport.WriteFile(t, other, "\x7fELF", 0o755)
	t.Setenv(EnvBinary, other)
	if got, err := FindBinary("", deep); err != nil || got != other {
		t.Fatalf("env: %q %v", got, err)
	}
	if got, err := FindBinary(native, deep); err != nil || got != native {
		t.Fatalf("explicit: %q %v", got, err)
	}
	t.Setenv(EnvBinary, filepath.Join(root, "missing"))
	if _, err := FindBinary("", deep); !errors.Is(err, ErrBinaryNotFound) {
		t.Fatalf("missing env binary: %v", err)
	}
	noexec := filepath.Join(root, "noexec")
	testsupport.WriteFile(t, noexec, "x", 0o644)
	if _, err := FindBinary(noexec, ""); !errors.Is(err, ErrBinaryNotFound) {
		t.Fatalf("non-executable: %v", err)
	}
}

func TestCapnpString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:           `"plain"`,
		`say "hi"`:        `"say \"hi\""`,
		`back\slash`:      `"back\\slash"`,
		"line\nbreak\tx":  `"line\nbreak\tx"`,
		"bell\x07del\x7f": `"bell\x07del\x7f"`,
		"ünïcødé ✓":       `"ünïcødé ✓"`,
	} {
		if got := capnpString(in); got != want {
			t.Errorf("capnpString(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestWriteConfig: modules are files named by index, secrets stay out of
// every file, and the configuration names the socket, the heap limit and
// the bindings.
func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	b := &Bundle{
		CompatibilityDate:  "2025-01-01",
		CompatibilityFlags: []string{"nodejs_compat"},
		MainModule:         "w.js",
		Modules: []Module{
			{Name: "w.js", Type: ModuleESM, Content: []byte("export default {}")},
			{Name: "../evil \"name\".js", Type: ModuleESM, Content: []byte("export const x = 1")},
			{Name: "w.js.map", Type: ModuleSourceMap, Content: []byte("{}")},
		},
		Bindings: []Binding{
			{Name: "GREETING", Kind: BindingText, Value: "hello \"world\""},
			{Name: "CONF", Kind: BindingJSON, Value: `{"a":1}`},
			{Name: "API_KEY", Kind: BindingSecret, Value: "sk-very-secret"},
			{Name: "DB", Kind: BindingService, Value: "db"},
		},
	}
	path, env, err := writeConfig(b, processConfig{dir: dir, sock: dir + "/http.sock", memoryMB: 96,
		bindingSocket: func(script string) string { return "/run/b-" + script + ".sock" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) != 1 || env[0] != "DOTDO_SECRET_2=sk-very-secret" {
		t.Fatalf("env = %q", env)
	}
	cfg, _ := os.ReadFile(path)
	for _, want := range []string{
		`(name = "w.js", esModule = embed "m0")`,
		`(name = "../evil \"name\".js", esModule = embed "m1")`,
		`(name = "GREETING", text = "hello \"world\"")`,
		`(name = "CONF", json = "{\"a\":1}")`,
		`(name = "API_KEY", fromEnvironment = "DOTDO_SECRET_2")`,
		`(name = "DB", service = "binding3")`,
		`external = (address = "unix:/run/b-db.sock"`,
		`"--max-heap-size=96"`,
		`compatibilityFlags = ["nodejs_compat"]`,
		`forwardedProtoHeader = "x-dotdo-proto"`,
	} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		if strings.Contains(string(b), "sk-very-secret") {
			t.Errorf("%s holds the secret", f.Name())
		}
		if strings.Contains(f.Name(), "evil") || f.Name() == "m2" {
			t.Errorf("unexpected file %s", f.Name())
		}
	}
}

func TestStartupMessage(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  string
	}{
		{[]string{"service main: Uncaught Error: boom", "  at w.js:1:7"}, "Uncaught Error: boom\n  at w.js:1:7"},
		{[]string{"noise", "service main: Uncaught SyntaxError: x", "  at w.js:2"}, "Uncaught SyntaxError: x\n  at w.js:2"},
		{nil, "The Worker could not be started."},
		{[]string{"something odd"}, "The Worker could not be started: something odd"},
	} {
		if got := startupMessage(c.lines); got != c.want {
			t.Errorf("startupMessage(%q) = %q, want %q", c.lines, got, c.want)
		}
	}
}

func findBinary(t *testing.T) string {
	t.Helper()
	bin, err := FindBinary("", "")
	if err != nil {
		t.Skipf("skipping: this test runs workerd, and none was found: %v", err)
	}
	return bin
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// TestSupervisor covers the start on demand (one process for concurrent
// first requests, the URL and env the worker sees), a service binding
// between two workers' processes, a failing source, the startup check,
// StopNamespace, and Close killing every process group and removing its
// directory.
func TestSupervisor(t *testing.T) {
	bin := findBinary(t)
	var mu sync.Mutex
	loads := map[string]int{}
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) {
		mu.Lock()
		loads[ns+"/"+script]++
		mu.Unlock()
		code := `export default { fetch(req, env) { return new Response(env.NAME + " " + req.url) } }`
		var binds []Binding
		switch script {
		case "missing":
			return nil, ErrNotFound
		case "gateway":
			code = `export default { async fetch(req, env) { const r = await env.DB.fetch(req); return new Response("via gateway: " + await r.text()) } }`
			binds = append(binds, Binding{Name: "DB", Kind: BindingService, Value: "db"})
		}
		return &Bundle{
			CompatibilityDate: "2025-01-01",
			MainModule:        "w.js",
			Modules:           []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(code)}},
			Bindings:          append(binds, Binding{Name: "NAME", Kind: BindingText, Value: script}),
		}, nil
	})
	live := func(ns, script string) (Key, error) { return Key{Namespace: ns, Script: script, Version: 7}, nil }
	s, err := New(Options{Binary: bin, Source: src, Live: live})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})
	invoke := func(ns, script string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		s.Invoke(rec, req, Target{Key: Key{Namespace: ns, Script: script, Version: 1}, Host: "example.com", Proto: "https", Path: "/p%2Fq", RawQuery: "q=1"})
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code, body := invoke("ns1", "app"); code != 200 || body != "app https://example.com/p%2Fq?q=1" {
				t.Errorf("invoke: %d %q", code, body)
			}
		})
	}
	wg.Wait()
	procs := s.Processes()
	if len(procs) != 1 || procs[0].Key.Namespace != "ns1" || loads["ns1/app"] != 1 {
		t.Fatalf("after concurrent first requests: processes %+v, loads %v", procs, loads)
	}
	// A service binding reaches the live version (7) of the target in a
	// process of its own.
	if code, body := invoke("ns1", "gateway"); code != 200 || body != "via gateway: db https://example.com/p%2Fq?q=1" {
		t.Fatalf("binding: %d %q", code, body)
	}
	var dbVersion int64
	for _, p := range s.Processes() {
		if p.Key.Script == "db" {
			dbVersion = p.Key.Version
		}
	}
	if dbVersion != 7 {
		t.Fatalf("the binding ran db version %d, want the live 7: %+v", dbVersion, s.Processes())
	}
	if code, _ := invoke("ns1", "missing"); code != http.StatusNotFound {
		t.Fatalf("missing code: %d", code)
	}
	if code, _ := invoke("ns2", "app"); code != 200 {
		t.Fatal("ns2")
	}
	if _, err := s.CheckStartup(context.Background(), &Bundle{CompatibilityDate: "2025-01-01", MainModule: "w.js", Modules: []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(`export default { fetch() {} }`)}}}); err != nil {
		t.Fatalf("check: %v", err)
	}
	var se *StartupError
	if _, err := s.CheckStartup(context.Background(), &Bundle{CompatibilityDate: "2025-01-01", MainModule: "w.js", Modules: []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(`throw new Error("nope")`)}}}); !errors.As(err, &se) || !strings.Contains(se.Message, "Uncaught Error: nope") {
		t.Fatalf("check of a throwing script: %v", err)
	}
	all := s.Processes()
	if len(all) != 4 {
		t.Fatalf("want 4 processes (ns1 app, gateway, db; ns2 app): %+v", all)
	}
	s.StopNamespace("ns2")
	for _, p := range all {
		if p.Key.Namespace == "ns2" {
			deadline := time.Now().Add(5 * time.Second)
			for alive(p.PID) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if alive(p.PID) {
				t.Errorf("StopNamespace left pid %d", p.PID)
			}
		}
	}
	dir := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	for _, p := range all {
		if alive(p.PID) {
			t.Errorf("pid %d (%s) outlived Close", p.PID, p.Key)
		}
		if err := syscall.Kill(-p.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d outlived Close: %v", p.PID, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
	if code, _ := invoke("ns1", "app"); code != http.StatusServiceUnavailable {
		t.Errorf("invoke after Close: %d", code)
	}
}

// TestScheduled: the scheduled handler runs in the version's process with
// the cron and time it is given; a worker without one, or one that throws,
// gives a ScheduledError.
func TestScheduled(t *testing.T) {
	bin := findBinary(t)
	codes := map[string]string{
		"cron":   `let last = "none"; export default { fetch() { return new Response(last) }, scheduled(c) { last = c.cron + " " + c.scheduledTime } }`,
		"nocron": `export default { fetch() { return new Response("x") } }`,
		"throws": `export default { fetch() { return new Response("x") }, scheduled() { throw new Error("cron broke") } }`,
	}
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) {
		return &Bundle{CompatibilityDate: "2025-01-01", MainModule: "w.js",
			Modules: []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(codes[script])}}}, nil
	})
	var mu sync.Mutex
	var events []Invocation
	s, err := New(Options{Binary: bin, Source: src, OnInvocation: func(i Invocation) {
		mu.Lock()
		events = append(events, i)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	at := time.UnixMilli(1700000000000)
	key := Key{Namespace: "ns", Script: "cron", Version: 1}
	if err := s.Scheduled(context.Background(), key, "*/5 * * * *", at); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Invoke(rec, httptest.NewRequest(http.MethodGet, "/", nil), Target{Key: key, Host: "x", Proto: "http", Path: "/"})
	if got := rec.Body.String(); got != "*/5 * * * * 1700000000000" {
		t.Fatalf("after the cron: %q", got)
	}
	var se *ScheduledError
	if err := s.Scheduled(context.Background(), Key{Namespace: "ns", Script: "nocron", Version: 1}, "", at); !errors.As(err, &se) || !strings.Contains(se.Message, "scheduled") {
		t.Fatalf("a worker without a scheduled handler: %v", err)
	}
	if err := s.Scheduled(context.Background(), Key{Namespace: "ns", Script: "throws", Version: 1}, "0 * * * *", at); !errors.As(err, &se) || !strings.Contains(se.Message, "cron broke") {
		t.Fatalf("a scheduled handler that throws: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 4 || !events[0].Scheduled || events[0].Cron != "*/5 * * * *" || events[0].Outcome != OutcomeOK || events[3].Outcome != OutcomeException {
		t.Fatalf("invocations: %+v", events)
	}
}

// TestTail: a process whose key is tailed runs the tail worker, and each
// invocation's events (logs, exceptions, the response's status) reach
// OnTail with the version they are of; an untailed process sends none.
func TestTail(t *testing.T) {
	bin := findBinary(t)
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) {
		return &Bundle{CompatibilityDate: "2025-01-01", MainModule: "w.js", Modules: []Module{{Name: "w.js", Type: ModuleESM,
			Content: []byte(`export default { fetch(req) {
  console.log("marker", { n: 1 });
  if (new URL(req.url).pathname === "/throw") throw new TypeError("tail boom");
  return new Response("ok", { status: 201 });
} }`)}}}, nil
	})
	got := make(chan Key, 16)
	var mu sync.Mutex
	var events []json.RawMessage
	s, err := New(Options{Binary: bin, Source: src, OnTail: func(k Key, evs []json.RawMessage) {
		mu.Lock()
		events = append(events, evs...)
		mu.Unlock()
		t.Logf("%d tail events at %s", len(evs), time.Now().Format("15:04:05.000"))
		got <- k
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	invoke := func(key Key, path string) int {
		rec := httptest.NewRecorder()
		s.Invoke(rec, httptest.NewRequest(http.MethodGet, path, nil), Target{Key: key, Host: "app.do", Proto: "https", Path: path})
		return rec.Code
	}
	untailed := Key{Namespace: "ns", Script: "w", Version: 3}
	invoke(untailed, "/")
	tailed := untailed
	tailed.Tail = true
	if c := invoke(tailed, "/"); c != 201 {
		t.Fatalf("status %d", c)
	}
	t.Logf("requests sent at %s", time.Now().Format("15:04:05.000"))
	if c := invoke(tailed, "/throw"); c != 500 {
		t.Fatalf("status %d", c)
	}
	deadline := time.After(5 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 2 {
			break
		}
		select {
		case k := <-got:
			if k != tailed {
				t.Fatalf("events for %+v, want %+v", k, tailed)
			}
		case <-deadline:
			t.Fatalf("%d tail events after 5 s", n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	all := string(events[0]) + string(events[1])
	for _, want := range []string{`"marker"`, `"status":201`, `"outcome":"exception"`, `tail boom`, `"TypeError"`, `https://app.do/throw`} {
		if !strings.Contains(all, want) {
			t.Errorf("tail events lack %s: %s", want, all)
		}
	}
	if len(events) != 2 {
		t.Errorf("%d events, want 2 (the untailed request sends none)", len(events))
	}
}
