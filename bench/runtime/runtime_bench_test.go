// Package runtimebench measures the local runtime (services/runtime) on
// loopback:
//
//	go test ./bench/runtime -run '^$' -bench . -benchtime 1x
//
// BenchmarkHello: requests/s and p50/p99 latency of a hello worker through
// the runtime's invocation endpoint over HTTP (Go handler -> the worker's
// own workerd process on a Unix socket) and, in the same run, of the same
// worker served by workerd alone (static config, its own TCP socket, no
// Go), with their ratio. (The front door through the dispatcher is
// bench/frontdoor.)
// BenchmarkColdStart100KB: the first request to each of 20 distinct 100 KB
// workers, each of which starts the worker's process (the cold start), and
// the second request (warm), p50 and p99; memory per active 100 KB worker.
// BenchmarkMemoryPerWorker: the anonymous memory (RssAnon) and PSS of each
// active hello worker's process, and what an idle worker costs (nothing:
// its process is gone after the idle timeout).
//
// Each benchmark measures once per process (bounded loops and durations,
// about 40 s in all); ns/op is the measurement's wall time, not a per-request
// figure: read the custom metrics.
package runtimebench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/workerd"
)

const (
	apiToken    = "bench-api-token"
	invokeToken = "bench-invoke-token"
	concurrency = 32
	warmup      = 500 * time.Millisecond
	measure     = 6 * time.Second // per path, in rounds alternating slices
	rounds      = 6
	helloJS     = `export default { fetch() { return new Response("hello") } }`
)

type bench struct {
	b   *testing.B
	rt  *runtime.Runtime
	srv *httptest.Server
}

func newBench(b *testing.B) *bench {
	b.Helper()
	if _, err := workerd.FindBinary("", ""); err != nil {
		b.Skipf("skipping: no workerd binary: %v", err)
	}
	rt, err := runtime.New(context.Background(), runtime.Config{
		DataDir:     b.TempDir(),
		APIToken:    apiToken,
		InvokeToken: invokeToken,
		Logger:      testsupport.QuietLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	b.Cleanup(func() {
		srv.Close()
		_ = rt.Close()
	})
	return &bench{b: b, rt: rt, srv: srv}
}

func (e *bench) api(method, path string, body io.Reader, contentType string) []byte {
	e.b.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+"/client/v4/accounts/local/workers/dispatch/namespaces"+path, body)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.b.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		e.b.Fatalf("%s %s: %d %s", method, path, res.StatusCode, out)
	}
	return out
}

func (e *bench) createNamespace(name string) {
	e.api(http.MethodPost, "", strings.NewReader(`{"name":"`+name+`"}`), "application/json")
}

// upload uploads a one-module worker and returns its version.
func (e *bench) upload(ns, script, code string) int64 {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	w, _ := mw.CreatePart(h)
	_, _ = w.Write([]byte(`{"main_module":"worker.js","compatibility_date":"2025-01-01"}`))
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="files"; filename="worker.js"`)
	h.Set("Content-Type", "application/javascript+module")
	w, _ = mw.CreatePart(h)
	_, _ = w.Write([]byte(code))
	_ = mw.Close()
	out := e.api(http.MethodPut, "/"+ns+"/scripts/"+script, &buf, mw.FormDataContentType())
	var env struct {
		Result struct {
			Version int64 `json:"dotdo_version"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &env); err != nil || env.Result.Version == 0 {
		e.b.Fatalf("upload: %s", out)
	}
	return env.Result.Version
}

func (e *bench) invokeRequest(ns, script string, v int64) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/invoke/"+ns+"/"+script+"/"+strconv.FormatInt(v, 10)+"/", nil)
	req.Header.Set(runtime.InvokeTokenHeader, invokeToken)
	return req
}

func (e *bench) invokeOnce(ns, script string, v int64) time.Duration {
	start := time.Now()
	res, err := http.DefaultClient.Do(e.invokeRequest(ns, script, v))
	if err != nil {
		e.b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		e.b.Fatalf("invoke %s/%s@%d: %d", ns, script, v, res.StatusCode)
	}
	return time.Since(start)
}

// memory returns the anonymous memory and PSS of the process serving
// ns/script.
func (e *bench) memory(ns, script string) (anon, pss int64) {
	for _, p := range e.rt.Processes() {
		if p.Key.Namespace == ns && p.Key.Script == script && p.Serving {
			return p.AnonBytes, processPSS(p.PID)
		}
	}
	e.b.Fatalf("no process for %s/%s", ns, script)
	return 0, 0
}

// processPSS is pid's proportional set size, from smaps_rollup: its own
// memory plus its share of the pages it shares (the workerd binary).
func processPSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

type loadResult struct {
	requests int
	errors   int
	rps      float64
	p50, p99 time.Duration
	// CPU time per request of the serving workerd process and of this Go
	// process (the load generator included).
	workerdCPU, goCPU time.Duration
}

// slice runs concurrency clients sending requests made by mk for d and
// returns the latencies of the successful ones and the error count.
func slice(client *http.Client, mk func() *http.Request, d time.Duration) ([]time.Duration, int) {
	end := time.Now().Add(d)
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			e := 0
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				res, err := client.Do(mk())
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					e++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, errs
}

// path is one side of a comparison: how to make its requests and which
// workerd process serves them.
type path struct {
	mk  func() *http.Request
	pid func() int
}

// compare loads two paths in alternating slices (rounds x slice length
// each), so that a change in background load affects both alike. It also
// measures CPU time per request of the serving workerd process and of this
// Go process (load generator included), which background load does not skew.
func compare(b *testing.B, a, c path) (loadResult, loadResult) {
	tr := &http.Transport{MaxIdleConns: concurrency * 4, MaxIdleConnsPerHost: concurrency * 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	slice(client, a.mk, warmup)
	slice(client, c.mk, warmup)
	type acc struct {
		lat            []time.Duration
		errs           int
		workerd, goCPU time.Duration
	}
	var accs [2]acc
	per := measure / rounds
	for i := 0; i < rounds; i++ {
		for j, p := range []path{a, c} {
			w0, g0 := procCPU(p.pid()), selfCPU()
			l, e := slice(client, p.mk, per)
			accs[j].workerd += procCPU(p.pid()) - w0
			accs[j].goCPU += selfCPU() - g0
			accs[j].lat = append(accs[j].lat, l...)
			accs[j].errs += e
		}
	}
	var out [2]loadResult
	for j := range accs {
		out[j] = summarize(b, accs[j].lat, accs[j].errs)
		out[j].workerdCPU = accs[j].workerd / time.Duration(out[j].requests)
		out[j].goCPU = accs[j].goCPU / time.Duration(out[j].requests)
	}
	return out[0], out[1]
}

// procCPU is the user+system CPU time of a process.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func summarize(b *testing.B, all []time.Duration, errs int) loadResult {
	if len(all) == 0 {
		b.Fatal("no successful requests")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return loadResult{
		requests: len(all), errors: errs, rps: float64(len(all)) / measure.Seconds(),
		p50: all[len(all)*50/100], p99: all[len(all)*99/100],
	}
}

// directWorkerd runs the hello worker on its own workerd socket (static
// config, no loader) and returns its address and pid.
func directWorkerd(b *testing.B) (string, int) {
	bin, err := workerd.FindBinary("", "")
	if err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	cfg := `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "hello", worker = (modules = [(name = "w.js", esModule = embed "w.js")], compatibilityDate = "2025-01-01"))],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "hello")],
);
`
	if err := os.WriteFile(filepath.Join(dir, "config.capnp"), []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.js"), []byte(helloJS), 0o600); err != nil {
		b.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--control-fd=3", "config.capnp")
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w.Close()
	b.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		r.Close()
	})
	portc := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var ev struct {
				Event string `json:"event"`
				Port  int    `json:"port"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "listen" {
				portc <- ev.Port
			}
		}
	}()
	select {
	case port := <-portc:
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd.Process.Pid
	case <-time.After(15 * time.Second):
		b.Fatal("direct workerd did not start")
	}
	return "", 0
}

var (
	helloOnce    sync.Once
	helloInvoke  loadResult
	helloDirect  loadResult
	coldOnce     sync.Once
	coldP50      time.Duration
	coldP99      time.Duration
	warmP50      time.Duration
	anonPer100KB float64
	pssPer100KB  float64
	memOnce      sync.Once
	anonPerHello float64
	pssPerHello  float64
)

func BenchmarkHello(b *testing.B) {
	helloOnce.Do(func() {
		e := newBench(b)
		e.createNamespace("bench")
		v := e.upload("bench", "hello", helloJS)
		e.invokeOnce("bench", "hello", v)
		addr, directPID := directWorkerd(b)
		nsPID := 0
		for _, p := range e.rt.Processes() {
			if p.Key.Namespace == "bench" {
				nsPID = p.PID
			}
		}
		helloInvoke, helloDirect = compare(b,
			path{
				mk:  func() *http.Request { return e.invokeRequest("bench", "hello", v) },
				pid: func() int { return nsPID },
			},
			path{
				mk: func() *http.Request {
					req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
					return req
				},
				pid: func() int { return directPID },
			})
		b.Logf("loopback, %d concurrent clients in this process, %v per path in %d alternating slices", concurrency, measure, rounds)
		b.Logf("%-32s %8s %9s %9s %6s %14s %14s", "path", "req/s", "p50", "p99", "errors", "workerd CPU/req", "Go CPU/req")
		for _, r := range []struct {
			name string
			r    loadResult
		}{{"invocation endpoint (Go+workerd)", helloInvoke}, {"workerd alone (static, no Go)", helloDirect}} {
			b.Logf("%-32s %8.0f %9v %9v %6d %14v %14v", r.name, r.r.rps, r.r.p50.Round(10*time.Microsecond), r.r.p99.Round(10*time.Microsecond), r.r.errors, r.r.workerdCPU, r.r.goCPU)
		}
		b.Logf("ratio invocation/direct: throughput %.2f, p50 %.2fx, p99 %.2fx, workerd CPU/req %.2fx", helloInvoke.rps/helloDirect.rps,
			float64(helloInvoke.p50)/float64(helloDirect.p50), float64(helloInvoke.p99)/float64(helloDirect.p99),
			float64(helloInvoke.workerdCPU)/float64(helloDirect.workerdCPU))
	})
	b.ReportMetric(helloInvoke.rps, "invoke_req/s")
	b.ReportMetric(helloDirect.rps, "direct_req/s")
	b.ReportMetric(helloInvoke.rps/helloDirect.rps, "rps_ratio")
	b.ReportMetric(ms(helloInvoke.p50), "invoke_p50_ms")
	b.ReportMetric(ms(helloInvoke.p99), "invoke_p99_ms")
	b.ReportMetric(ms(helloDirect.p50), "direct_p50_ms")
	b.ReportMetric(ms(helloDirect.p99), "direct_p99_ms")
	b.ReportMetric(us(helloInvoke.workerdCPU), "invoke_workerd_cpu_us/req")
	b.ReportMetric(us(helloDirect.workerdCPU), "direct_workerd_cpu_us/req")
	b.ReportMetric(us(helloInvoke.goCPU), "invoke_go_cpu_us/req")
	b.ReportMetric(us(helloDirect.goCPU), "direct_go_cpu_us/req")
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// script100KB is a distinct ~100 KB ES module: many small functions and a
// data table, so that parsing and compiling it is real work.
func script100KB(seed int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "const SEED = %d;\n", seed)
	for i := 0; sb.Len() < 100*1024-200; i++ {
		fmt.Fprintf(&sb, "export function f%d(x) { const t = [%d, %d, %d, \"s%d-%d\"]; return x * %d + t.length + SEED; }\n", i, i, i*7, i*13, seed, i, i%17)
	}
	sb.WriteString("export default { fetch() { return new Response(String(f1(2))) } }\n")
	return sb.String()
}

func BenchmarkColdStart100KB(b *testing.B) {
	coldOnce.Do(func() {
		const n = 20
		e := newBench(b)
		e.createNamespace("cold")
		versions := make([]int64, n)
		for i := range versions {
			versions[i] = e.upload("cold", "big"+strconv.Itoa(i), script100KB(i))
		}
		var cold, warm []time.Duration
		var anon, pss int64
		for i, v := range versions {
			name := "big" + strconv.Itoa(i)
			cold = append(cold, e.invokeOnce("cold", name, v))
			warm = append(warm, e.invokeOnce("cold", name, v))
			a, p := e.memory("cold", name)
			anon, pss = anon+a, pss+p
		}
		sort.Slice(cold, func(i, j int) bool { return cold[i] < cold[j] })
		sort.Slice(warm, func(i, j int) bool { return warm[i] < warm[j] })
		coldP50, coldP99, warmP50 = cold[n/2], cold[n*99/100], warm[n/2]
		anonPer100KB, pssPer100KB = float64(anon)/n, float64(pss)/n
		b.Logf("100 KB workers (%d, each in its own process): cold start p50 %v, p99 %v; warm p50 %v; per active worker RssAnon %.1f MB, PSS %.1f MB",
			n, coldP50, coldP99, warmP50, anonPer100KB/(1<<20), pssPer100KB/(1<<20))
	})
	b.ReportMetric(ms(coldP50), "cold_p50_ms")
	b.ReportMetric(ms(coldP99), "cold_p99_ms")
	b.ReportMetric(ms(warmP50), "warm_p50_ms")
	b.ReportMetric(anonPer100KB/(1<<20), "MB_anon/worker")
	b.ReportMetric(pssPer100KB/(1<<20), "MB_pss/worker")
}

func BenchmarkMemoryPerWorker(b *testing.B) {
	memOnce.Do(func() {
		const n = 20
		e := newBench(b)
		e.createNamespace("mem")
		var anon, pss int64
		for i := range n {
			name := "hello" + strconv.Itoa(i)
			v := e.upload("mem", name, helloJS)
			e.invokeOnce("mem", name, v)
		}
		time.Sleep(200 * time.Millisecond)
		for i := range n {
			a, p := e.memory("mem", "hello"+strconv.Itoa(i))
			anon, pss = anon+a, pss+p
		}
		anonPerHello, pssPerHello = float64(anon)/n, float64(pss)/n
		b.Logf("hello workers (%d active, one process each): RssAnon %.1f MB, PSS %.1f MB per worker; an idle worker holds no process",
			n, anonPerHello/(1<<20), pssPerHello/(1<<20))
	})
	b.ReportMetric(anonPerHello/(1<<20), "MB_anon/worker")
	b.ReportMetric(pssPerHello/(1<<20), "MB_pss/worker")
}
