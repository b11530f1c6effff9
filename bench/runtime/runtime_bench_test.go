// Package runtimebench measures the local runtime (services/runtime) on
// loopback:
//
//	go test ./bench/runtime -run '^$' -bench . -benchtime 1x
//
// BenchmarkHello: requests/s and p50/p99 latency of a hello worker through
// the invocation endpoint (Go handler -> workerd router -> Worker Loader)
// and, in the same run, of the same worker on its own workerd socket (static
// config, no loader, no Go), with their ratio.
// BenchmarkColdLoad100KB: first-request (cold load) and second-request
// latency of 100 KB scripts, and RSS per loaded 100 KB version.
// BenchmarkMemoryPerVersion: RSS growth of a namespace process per loaded
// hello version.
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
	"log/slog"
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
		Logger:      slog.New(slog.DiscardHandler),
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

func (e *bench) rss(ns string) int64 {
	for _, p := range e.rt.Processes() {
		if p.Pool == ns && p.Current {
			return p.RSSBytes
		}
	}
	e.b.Fatalf("no process for %s", ns)
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
	coldMax      time.Duration
	warmP50      time.Duration
	rssPer100KB  float64
	memOnce      sync.Once
	rssPerHello  float64
	rssBaseHello int64
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
			if p.Pool == "bench" {
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
		}{{"invocation endpoint (Go+loader)", helloInvoke}, {"own workerd socket (no loader)", helloDirect}} {
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

func BenchmarkColdLoad100KB(b *testing.B) {
	coldOnce.Do(func() {
		const n = 20
		e := newBench(b)
		e.createNamespace("cold")
		versions := make([]int64, n)
		for i := range versions {
			versions[i] = e.upload("cold", "big", script100KB(i))
		}
		v0 := e.upload("cold", "small", helloJS)
		e.invokeOnce("cold", "small", v0) // start the process
		time.Sleep(200 * time.Millisecond)
		before := e.rss("cold")
		var cold, warm []time.Duration
		for _, v := range versions {
			cold = append(cold, e.invokeOnce("cold", "big", v))
			warm = append(warm, e.invokeOnce("cold", "big", v))
		}
		time.Sleep(200 * time.Millisecond)
		after := e.rss("cold")
		sort.Slice(cold, func(i, j int) bool { return cold[i] < cold[j] })
		sort.Slice(warm, func(i, j int) bool { return warm[i] < warm[j] })
		coldP50, coldMax, warmP50 = cold[n/2], cold[n-1], warm[n/2]
		rssPer100KB = float64(after-before) / n
		b.Logf("100 KB script (%d versions): cold load p50 %v, max %v; warm request p50 %v; RSS +%.1f MB per loaded version",
			n, coldP50, coldMax, warmP50, rssPer100KB/(1<<20))
	})
	b.ReportMetric(ms(coldP50), "cold_p50_ms")
	b.ReportMetric(ms(coldMax), "cold_max_ms")
	b.ReportMetric(ms(warmP50), "warm_p50_ms")
	b.ReportMetric(rssPer100KB/(1<<20), "MB_rss/100KB_version")
}

func BenchmarkMemoryPerVersion(b *testing.B) {
	memOnce.Do(func() {
		const n = 60
		e := newBench(b)
		e.createNamespace("mem")
		versions := make([]int64, n)
		for i := range versions {
			versions[i] = e.upload("mem", "hello", fmt.Sprintf("const V = %d;\n%s", i, helloJS))
		}
		v0 := e.upload("mem", "first", helloJS)
		e.invokeOnce("mem", "first", v0)
		time.Sleep(200 * time.Millisecond)
		rssBaseHello = e.rss("mem")
		for _, v := range versions {
			e.invokeOnce("mem", "hello", v)
		}
		time.Sleep(200 * time.Millisecond)
		after := e.rss("mem")
		rssPerHello = float64(after-rssBaseHello) / n
		b.Logf("hello worker: process RSS %.1f MB with one version, +%.2f MB per further loaded version (%d versions: %.1f MB)",
			float64(rssBaseHello)/(1<<20), rssPerHello/(1<<20), n, float64(after)/(1<<20))
	})
	b.ReportMetric(rssPerHello/(1<<20), "MB_rss/version")
	b.ReportMetric(float64(rssBaseHello)/(1<<20), "MB_rss_base")
}
