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

func TestBundleEncode(t *testing.T) {
	b := &Bundle{
		CompatibilityDate: "2025-01-01",
		MainModule:        "w.js",
		Modules: []Module{
			{Name: "w.js", Type: "js", Content: []byte("export default {}")},
			{Name: "m.wasm", Type: "wasm", Content: []byte{0, 1, 2}},
			{Name: "d.json", Type: "json", Content: []byte(`{"a":[1]}`)},
			{Name: "w.js.map", Type: "sourcemap", Content: []byte("{}")},
		},
		Env: map[string]json.RawMessage{"K": json.RawMessage(`"v"`)},
	}
	out, err := b.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"compatibilityDate":"2025-01-01","compatibilityFlags":[],"mainModule":"w.js","modules":{"d.json":{"json":{"a":[1]}},"m.wasm":{"wasm":"AAEC"},"w.js":{"js":"export default {}"}},"env":{"K":"v"}}`
	if string(out) != want {
		t.Fatalf("encode:\n%s\nwant\n%s", out, want)
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
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestSupervisor covers lazy start (one process for concurrent first
// requests), the loader id, Close killing every process group and removing
// its directory, and StopPool.
func TestSupervisor(t *testing.T) {
	bin := findBinary(t)
	var mu sync.Mutex
	loads := map[string]int{}
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) {
		mu.Lock()
		loads[ns+"/"+script]++
		mu.Unlock()
		if script == "missing" {
			return nil, ErrNotFound
		}
		return &Bundle{
			CompatibilityDate: "2025-01-01",
			MainModule:        "w.js",
			Modules:           []Module{{Name: "w.js", Type: "js", Content: []byte(`export default { fetch(req, env) { return new Response(env.NAME + " " + req.url) } }`)}},
			Env:               map[string]json.RawMessage{"NAME": json.RawMessage(`"` + script + `"`)},
		}, nil
	})
	s, err := New(Options{Binary: bin, Source: src})
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
		s.Invoke(rec, req, Target{Namespace: ns, Script: script, Version: 1, URL: "https://example.com/p?q=1", Host: "example.com"})
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := invoke("ns1", "app"); code != 200 || body != "app https://example.com/p?q=1" {
				t.Errorf("invoke: %d %q", code, body)
			}
		}()
	}
	wg.Wait()
	procs := s.Processes()
	if len(procs) != 1 || procs[0].Pool != "ns1" || procs[0].LoadedVersions != 1 {
		t.Fatalf("processes after concurrent first requests: %+v", procs)
	}
	if loads["ns1/app"] != 1 {
		t.Fatalf("code loaded %d times, want once", loads["ns1/app"])
	}
	// A code source failure is a 503 from the router and replaces the
	// process (the failed load would stay cached).
	if code, _ := invoke("ns1", "missing"); code != http.StatusServiceUnavailable {
		t.Fatalf("missing code: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Processes()) != 1 || s.Processes()[0].PID == procs[0].PID {
		if time.Now().After(deadline) {
			t.Fatalf("process not replaced after a code failure: %+v", s.Processes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := invoke("ns2", "app"); code != 200 {
		t.Fatal("ns2")
	}
	if _, err := s.CheckStartup(context.Background(), &Bundle{CompatibilityDate: "2025-01-01", MainModule: "w.js", Modules: []Module{{Name: "w.js", Type: "js", Content: []byte(`export default {}`)}}}); err != nil {
		t.Fatalf("check: %v", err)
	}
	var se *StartupError
	if _, err := s.CheckStartup(context.Background(), &Bundle{CompatibilityDate: "2025-01-01", MainModule: "w.js", Modules: []Module{{Name: "w.js", Type: "js", Content: []byte(`throw new Error("nope")`)}}}); !errors.As(err, &se) || !strings.Contains(se.Message, "Uncaught Error: nope") {
		t.Fatalf("check of a throwing script: %v", err)
	}
	all := s.Processes()
	if len(all) != 3 {
		t.Fatalf("want 3 processes (ns1, ns2, check): %+v", all)
	}
	s.StopPool("ns2")
	for _, p := range all {
		if p.Pool == "ns2" {
			deadline := time.Now().Add(5 * time.Second)
			for alive(p.PID) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if alive(p.PID) {
				t.Errorf("StopPool left pid %d", p.PID)
			}
		}
	}
	dir := s.stateDir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	for _, p := range all {
		if alive(p.PID) {
			t.Errorf("pid %d (%s) outlived Close", p.PID, p.Pool)
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
