package runtime_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// steady sends requests to ns/script@version until stop is closed, and
// counts them and the failed ones.
type steady struct {
	requests, failures atomic.Int64
	stop               chan struct{}
	wg                 sync.WaitGroup
}

func (e *env) steadyTraffic(ns, script string, version int64) *steady {
	st := &steady{stop: make(chan struct{})}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		for {
			select {
			case <-st.stop:
				return
			default:
			}
			s, b := e.invoke(ns, script, version, "/")
			st.requests.Add(1)
			if s != 200 || b != "hello" {
				st.failures.Add(1)
				e.t.Logf("steady %s/%s: %d %q", ns, script, s, b)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return st
}

func (st *steady) end() (requests, failures int64) {
	close(st.stop)
	st.wg.Wait()
	return st.requests.Load(), st.failures.Load()
}

// limitError is the JSON of a request that ran over a limit.
type limitError struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	LimitMS int64  `json:"limit_ms"`
	LimitMB int64  `json:"limit_mb"`
}

// TestLimitsIsolateWorkers: a worker that spins, and one that allocates
// without bound (on the JavaScript heap, and in ArrayBuffers, which V8's
// heap limit does not cover), each end with their limit's error within the
// limit plus a second, serve again afterwards, and cost no request of the
// other workers, in the same namespace or another.
func TestLimitsIsolateWorkers(t *testing.T) {
	const cpuLimit = 300 * time.Millisecond
	e := start(t, t.TempDir(), func(c *runtime.Config) {
		c.CPULimit = cpuLimit
		c.MemoryMB = 64
	})
	e.mustCreateNamespace("a")
	e.mustCreateNamespace("b")
	// One hog spins under the runtime's CPU limit; the other allocates
	// under a CPU limit of its own far above what filling its memory
	// takes, so that its memory limit is what ends it even on a loaded
	// machine.
	hogJS := `const keep = [];
export default { fetch(req) {
  const p = new URL(req.url).pathname;
  if (p === "/spin") { while (true) {} }
  if (p === "/heap") { for (let n = 0; ; n++) keep.push(new Array(131072).fill(n)); }
  if (p === "/buffers") { for (;;) { const b = new ArrayBuffer(8 << 20); new Uint8Array(b).fill(1); keep.push(b); } }
  return new Response("hello");
} }`
	spinner := e.mustUpload("a", "spinner", hogJS, nil)
	hog := e.mustUpload("a", "hog", hogJS, map[string]any{"limits": map[string]any{"cpu_ms": 20_000}})
	okA := e.mustUpload("a", "ok", helloWorker, nil)
	okB := e.mustUpload("b", "ok", helloWorker, nil)
	for _, w := range []struct {
		ns, script string
		v          int64
	}{{"a", "ok", okA}, {"b", "ok", okB}, {"a", "spinner", spinner}, {"a", "hog", hog}} {
		if s, b := e.invoke(w.ns, w.script, w.v, "/"); s != 200 || b != "hello" {
			t.Fatalf("%s/%s before: %d %q", w.ns, w.script, s, b)
		}
	}
	sameNS := e.steadyTraffic("a", "ok", okA)
	otherNS := e.steadyTraffic("b", "ok", okB)

	for _, c := range []struct {
		script, path, code string
		v                  int64
		within             time.Duration
	}{
		{"spinner", "/spin", "exceeded_cpu", spinner, cpuLimit + time.Second},
		{"hog", "/heap", "exceeded_memory", hog, 5 * time.Second},
		{"hog", "/buffers", "exceeded_memory", hog, 5 * time.Second},
	} {
		pid := e.pid("a", c.script)
		begin := time.Now()
		status, body := e.invoke("a", c.script, c.v, c.path)
		took := time.Since(begin)
		var got limitError
		_ = json.Unmarshal([]byte(body), &got)
		if status != http.StatusServiceUnavailable || got.Code != c.code || took > c.within {
			t.Errorf("%s: %d %q after %v; want 503 %s within %v", c.path, status, body, took, c.code, c.within)
		}
		if c.code == "exceeded_cpu" && got.LimitMS != cpuLimit.Milliseconds() {
			t.Errorf("%s: limit_ms %d, want %d", c.path, got.LimitMS, cpuLimit.Milliseconds())
		}
		if processAlive(pid) {
			t.Errorf("%s: the hog's process %d still runs", c.path, pid)
		}
		// The hog serves the next request, from a new process.
		if s, b := e.invoke("a", c.script, c.v, "/"); s != 200 || b != "hello" {
			t.Errorf("%s after %s: %d %q", c.script, c.path, s, b)
		}
		t.Logf("%s: %s after %v", c.path, got.Code, took.Round(time.Millisecond))
	}

	for name, st := range map[string]*steady{"same namespace": sameNS, "other namespace": otherNS} {
		n, failed := st.end()
		if failed != 0 || n == 0 {
			t.Errorf("%s: %d of %d requests failed while the hog ran", name, failed, n)
		}
		t.Logf("%s: %d requests, %d failed", name, n, failed)
	}
}

// TestWorkerCPULimit: a script's own limits.cpu_ms (Cloudflare's upload
// metadata) bounds its invocations, and busy requests under it are fine.
func TestWorkerCPULimit(t *testing.T) {
	e := start(t, t.TempDir(), nil) // the runtime's default: 30 s
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "busy", `export default { fetch(req) {
  const ms = Number(new URL(req.url).searchParams.get("ms"));
  const end = Date.now() + ms; while (Date.now() < end) {}
  return new Response("hello");
} }`, map[string]any{"limits": map[string]any{"cpu_ms": 200}})
	if s, b := e.invoke("ns", "busy", v, "/?ms=50"); s != 200 || b != "hello" {
		t.Fatalf("50 ms of CPU under a 200 ms limit: %d %q", s, b)
	}
	s, b := e.invoke("ns", "busy", v, "/?ms=2000")
	var got limitError
	_ = json.Unmarshal([]byte(b), &got)
	if s != http.StatusServiceUnavailable || got.Code != "exceeded_cpu" || got.LimitMS != 200 {
		t.Fatalf("2 s of CPU under a 200 ms limit: %d %q", s, b)
	}
	if s, _ := e.api(http.MethodPut, "/ns/scripts/bad", nil); s == 0 {
		t.Fatal("unreachable")
	}
	status, env := e.upload("ns", "greedy", map[string]any{"main_module": "worker.js", "limits": map[string]any{"cpu_ms": 300_001}}, esm("worker.js", helloWorker))
	if status != http.StatusBadRequest || len(env.Errors) == 0 {
		t.Fatalf("cpu_ms above Cloudflare's maximum: %d %+v", status, env.Errors)
	}
}

// TestScaleToZero: a worker's process stops after the idle timeout, and the
// next request starts it again.
func TestScaleToZero(t *testing.T) {
	e := start(t, t.TempDir(), func(c *runtime.Config) { c.IdleTimeout = 500 * time.Millisecond })
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", helloWorker, nil)
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "hello" {
		t.Fatalf("first: %d %q", s, b)
	}
	pid := e.pid("ns", "app")
	waitFor(t, 5*time.Second, "the idle process to stop", func() bool { return !processAlive(pid) && len(e.rt.Processes()) == 0 })
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "hello" {
		t.Fatalf("after scale to zero: %d %q", s, b)
	}
	if p := e.pid("ns", "app"); p == 0 || p == pid {
		t.Fatalf("after scale to zero: pid %d (was %d)", p, pid)
	}
}

// TestCrashedProcess: a process killed from outside is replaced on the next
// request; the request in flight when it died gets 502.
func TestCrashedProcess(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", helloWorker, nil)
	if s, _ := e.invoke("ns", "app", v, "/"); s != 200 {
		t.Fatalf("before: %d", s)
	}
	pid := e.pid("ns", "app")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the process to be reaped", func() bool { return e.pid("ns", "app") != pid })
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "hello" {
		t.Fatalf("after the crash: %d %q", s, b)
	}
}

// TestInFlightSurvivesNewVersion: a request in flight on the old version's
// process finishes when a new version takes over (SIGTERM drains).
func TestInFlightSurvivesNewVersion(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v1 := e.mustUpload("ns", "app", `export default { async fetch(req) {
  if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 1500));
  return new Response("v1");
} }`, nil)
	if s, _ := e.invoke("ns", "app", v1, "/"); s != 200 {
		t.Fatal("v1")
	}
	slow := make(chan string, 1)
	go func() {
		s, b := e.invoke("ns", "app", v1, "/slow")
		slow <- http.StatusText(s) + " " + b
	}()
	time.Sleep(200 * time.Millisecond)
	v2 := e.mustUpload("ns", "app", `export default { fetch() { return new Response("v2") } }`, nil)
	if s, b := e.invoke("ns", "app", v2, "/"); s != 200 || b != "v2" {
		t.Fatalf("v2: %d %q", s, b)
	}
	if got := <-slow; got != "OK v1" {
		t.Fatalf("the request in flight on v1 ended %q", got)
	}
}

// TestInvokeStreamsPastServerTimeouts: the invocation endpoint over HTTP
// trades the server's whole-request timeouts for progress-based ones, so a
// stream that keeps making progress outlives the server's WriteTimeout and
// ReadTimeout (in the split layout, the runtime's server cut event streams
// at its 120 s write timeout).
func TestInvokeStreamsPastServerTimeouts(t *testing.T) {
	e := start(t, t.TempDir(), func(c *runtime.Config) { c.StreamTimeout = time.Second })
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "ticks", `export default { fetch() {
  const { readable, writable } = new TransformStream();
  const w = writable.getWriter();
  (async () => {
    for (let i = 0; i < 8; i++) {
      await w.write(new TextEncoder().encode("data: tick " + i + "\n\n"));
      await new Promise((r) => setTimeout(r, 150));
    }
    await w.close();
  })();
  return new Response(readable, { headers: { "content-type": "text/event-stream" } });
} }`, nil)
	srv := httptest.NewUnstartedServer(e.rt.Handler())
	srv.Config.WriteTimeout = 400 * time.Millisecond
	srv.Config.ReadTimeout = 400 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/invoke/ns/ticks/"+strconv.FormatInt(v, 10)+"/", nil)
	req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
	begin := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if n := strings.Count(string(body), "data: tick"); err != nil || n != 8 {
		t.Fatalf("after %v: %d of 8 ticks (err %v): %q", time.Since(begin), n, err, body)
	}
	if took := time.Since(begin); took < time.Second {
		t.Fatalf("the stream took %v; the test needs it to outlast the server's timeouts", took)
	}
}

// TestDeleteScriptStopsItsProcesses: deleting a script (by name, or with
// a tags filter) stops its process at once; the namespace's other scripts
// keep theirs.
func TestDeleteScriptStopsItsProcesses(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	const code = `export default { fetch() { return new Response("hello") } }`
	versions := map[string]int64{}
	for _, s := range []string{"gone", "tagged", "kept"} {
		versions[s] = e.mustUpload("ns", s, code, nil)
		if st, body := e.invoke("ns", s, versions[s], "/"); st != 200 {
			t.Fatalf("%s: %d %s", s, st, body)
		}
	}
	if st, env := e.api(http.MethodPut, "/ns/scripts/tagged/tags", []string{"doomed"}); st != 200 {
		t.Fatalf("tag: %d %+v", st, env.Errors)
	}
	if st, env := e.api(http.MethodDelete, "/ns/scripts/gone", nil); st != 200 {
		t.Fatalf("delete: %d %+v", st, env.Errors)
	}
	if st, env := e.api(http.MethodDelete, "/ns/scripts?tags=doomed:yes", nil); st != 200 {
		t.Fatalf("delete by tag: %d %+v", st, env.Errors)
	}
	waitFor(t, 5*time.Second, "the deleted scripts' processes to stop", func() bool {
		return e.pid("ns", "gone") == 0 && e.pid("ns", "tagged") == 0
	})
	if e.pid("ns", "kept") == 0 {
		t.Fatal("the process of a script that was not deleted stopped")
	}
}
