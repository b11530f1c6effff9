package workerd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
)

// getRoot sends GET / to version 1 of script in namespace ns.
func getRoot(s *Supervisor, script string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Invoke(rec, httptest.NewRequest(http.MethodGet, "/", nil),
		Target{Key: Key{Namespace: "ns", Script: script, Version: 1}, Host: "example.com", Proto: "http", Path: "/"})
	return rec
}

// bindingSockets counts the binding servers of s and their socket files.
func bindingSockets(t *testing.T, s *Supervisor) (servers, files int) {
	t.Helper()
	s.bindings.mu.Lock()
	servers = len(s.bindings.targets)
	s.bindings.mu.Unlock()
	m, err := filepath.Glob(filepath.Join(s.dir, "b-*.sock"))
	if err != nil {
		t.Fatal(err)
	}
	return servers, len(m)
}

// TestBindingSocketsFollowProcesses runs workers that bind 200 targets in
// all: while their processes run, each target has one socket; once they
// idle out (and after the startup check of a bundle binding 50 more, which
// ends at once), no binding server and no socket file is left. The binding
// of a target that was deleted meanwhile answers 404 and leaves nothing
// either.
func TestBindingSocketsFollowProcesses(t *testing.T) {
	bin := findBinary(t)
	const binders, perBinder = 4, 50
	bundle := func(script string) *Bundle {
		code := `export default { fetch() { return new Response("target") } }`
		var binds []Binding
		var b int
		if _, err := fmt.Sscanf(script, "binder%d", &b); err == nil {
			code = `export default { async fetch(req, env) { const r = await env.T0.fetch(req); return new Response(r.status + " " + await r.text()) } }`
			for i := range perBinder {
				binds = append(binds, Binding{Name: fmt.Sprintf("T%d", i), Kind: BindingService, Value: fmt.Sprintf("t%d-%d", b, i)})
			}
		}
		return &Bundle{
			CompatibilityDate: "2025-01-01",
			MainModule:        "w.js",
			Modules:           []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(code)}},
			Bindings:          binds,
		}
	}
	var mu sync.Mutex
	deleted := map[string]bool{}
	live := func(ns, script string) (Key, error) {
		mu.Lock()
		defer mu.Unlock()
		if deleted[script] {
			return Key{}, ErrNotFound
		}
		return Key{Namespace: ns, Script: script, Version: 1}, nil
	}
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) { return bundle(script), nil })
	s, err := New(Options{Binary: bin, Source: src, Live: live, IdleTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// The target t3-0 of binder3 is deleted before its first call.
	mu.Lock()
	deleted["t3-0"] = true
	mu.Unlock()
	var wg sync.WaitGroup
	for b := range binders {
		wg.Go(func() {
			rec := getRoot(s, fmt.Sprintf("binder%d", b))
			body, _ := io.ReadAll(rec.Result().Body)
			want := "200 target"
			if b == 3 {
				want = `404 {"error":"Worker not found"}` + "\n"
			}
			if rec.Code != http.StatusOK || string(body) != want {
				t.Errorf("binder%d: %d %q, want 200 %q", b, rec.Code, body, want)
			}
		})
	}
	wg.Wait()
	if servers, files := bindingSockets(t, s); servers != binders*perBinder || files != binders*perBinder {
		t.Fatalf("while the binders run: %d binding servers, %d socket files; want %d of each", servers, files, binders*perBinder)
	}
	check := bundle("binder9")
	check.Modules[0].Content = []byte(`export default { fetch() { return new Response("ok") } }`)
	if _, err := s.CheckStartup(context.Background(), check); err != nil {
		t.Fatalf("startup check: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		servers, files := bindingSockets(t, s)
		if servers == 0 && files == 0 && len(s.Processes()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the processes idled out: %d binding servers, %d socket files, processes %+v", servers, files, s.Processes())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMemoryAdmission drives the supervisor's reading of the machine's
// available memory: each running process takes 300 MiB of it. A start
// below MinFreeMemory first stops the least recently used idle process;
// when stopping every idle one frees too little, it is refused with 503
// low_memory (ErrLowMemory, kind Exhausted); once memory frees, the same
// worker starts.
func TestMemoryAdmission(t *testing.T) {
	const mib = 1 << 20
	var free atomic.Int64
	free.Store(1000 * mib)
	var s *Supervisor
	avail := func() (int64, error) { return free.Load() - 300*mib*int64(len(s.Processes())), nil }
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) {
		return &Bundle{
			CompatibilityDate: "2025-01-01",
			MainModule:        "w.js",
			Modules:           []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(`export default { fetch() { return new Response("ok") } }`)}},
		}, nil
	})
	var err error
	s, err = New(Options{Binary: findBinary(t), Source: src, MinFreeMemory: 512 * mib, AvailableMemory: avail})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	invoke := func(script string) (int, string) {
		rec := getRoot(s, script)
		return rec.Code, rec.Body.String()
	}
	running := func() []string {
		var out []string
		for _, p := range s.Processes() {
			out = append(out, p.Key.Script)
		}
		return out
	}
	for _, w := range []string{"w0", "w1", "w2"} {
		if code, body := invoke(w); code != http.StatusOK {
			t.Fatalf("%s: %d %s", w, code, body)
		}
	}
	// w2 found 400 MiB: w0, the least recently used, made room.
	if got := running(); !slices.Equal(got, []string{"w1", "w2"}) {
		t.Fatalf("after w2's start: running %v, want [w1 w2]", got)
	}
	free.Store(200 * mib) // something else took the machine's memory
	code, body := invoke("w3")
	if code != http.StatusServiceUnavailable || body != `{"code":"low_memory","error":"Worker runtime is low on memory; try again"}`+"\n" {
		t.Fatalf("w3 with too little memory: %d %s", code, body)
	}
	if got := running(); len(got) != 0 {
		t.Fatalf("the idle processes were not stopped first: %v", got)
	}
	if errkind.Of(ErrLowMemory) != errkind.Exhausted {
		t.Errorf("ErrLowMemory's kind is %v", errkind.Of(ErrLowMemory))
	}
	free.Store(2000 * mib)
	if code, body := invoke("w3"); code != http.StatusOK || body != "ok" {
		t.Fatalf("w3 once memory freed: %d %s", code, body)
	}
}

// TestMemAvailable reads this machine's available memory.
func TestMemAvailable(t *testing.T) {
	n, err := memAvailable()
	if err != nil || n <= 0 {
		t.Fatalf("memAvailable: %d %v", n, err)
	}
}
