// Package frontdoor measures the local data plane's front door against its
// true reference: workerd serving the same worker by itself, from a static
// configuration on its own socket. The front door is `dotdo dev` as the
// binary runs it (boot.Dev, in this process): the dispatcher routes by
// Host, calls the runtime in process, and the runtime proxies to the
// worker's own workerd process over a Unix socket.
//
// Both sides are loaded by wrk (Debian's wrk package; the test skips
// without it) with one thread and 32 connections, in alternating rounds in
// one run, since this machine is noisy:
//
//	go test ./bench/frontdoor -run TestFrontDoor -v
//	FRONTDOOR_ROUNDS=6 FRONTDOOR_SECONDS=5 go test ./bench/frontdoor -run TestFrontDoor -v -cpuprofile cpu.out
//
// TestFrontDoor also reports the resident memory of the control plane (the
// five services of `dotdo dev`, this process) and of the worker's process.
// TestDeployToLive measures how long a deploy takes to reach traffic
// through the front door after the Deploy API has answered, p50 and p99
// over FRONTDOOR_DEPLOYS deploys (default 30):
//
//	go test ./bench/frontdoor -run TestDeployToLive -v
//
// The test is skipped unless -run names it, so that `go test ./...` stays
// fast; it asserts nothing about speed (figures are reported, not
// asserted), only that both sides answer correctly.
package frontdoor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/boot"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/runtime/workerd"
)

const hello = `export default { fetch() { return new Response("hello") } }`

func explicitlyRun(name string) bool {
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), name)
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Dev is a `dotdo dev` running in this process on free loopback ports.
type Dev struct {
	DataDir, DeployURL, DispatcherURL, AdminKey string
}

// StartDev runs boot.Dev with its data under a temporary directory, waits
// until it serves, and stops it when tb ends.
func StartDev(tb testing.TB) *Dev {
	tb.Helper()
	bin, err := workerd.FindBinary("", "")
	if err != nil {
		tb.Skipf("skipping: no workerd: %v", err)
	}
	d := &Dev{DataDir: filepath.Join(tb.TempDir(), "data")}
	tb.Setenv("DOTDO_WORKERD", bin)
	tb.Setenv("DOTDO_DATA_DIR", d.DataDir)
	tb.Setenv("DOTDO_LOG_LEVEL", "error")
	for _, s := range []string{"DEPLOY", "AUTH", "DB", "RUNTIME", "DISPATCHER"} {
		addr := freePort(tb)
		tb.Setenv("DOTDO_"+s+"_ADDR", addr)
		switch s {
		case "DEPLOY":
			d.DeployURL = "http://" + addr
		case "DISPATCHER":
			d.DispatcherURL = "http://" + addr
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- boot.Dev(ctx, io.Discard, io.Discard, nil) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Logf("dotdo dev: %v", err)
		}
	})
	keyPath := filepath.Join(d.DataDir, "admin.key")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(keyPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
			d.AdminKey = string(bytes.TrimSpace(b))
			break
		}
		select {
		case err := <-done:
			tb.Fatalf("dotdo dev stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatal("dotdo dev did not start within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// Deploy deploys script as service in production through the REST API.
func (d *Dev) Deploy(tb testing.TB, service, script string) {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{
		"service": service, "environment": "production",
		"script": base64.StdEncoding.EncodeToString([]byte(script)),
	})
	req, _ := http.NewRequest(http.MethodPost, d.DeployURL+"/deploy", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.AdminKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		tb.Fatalf("deploy %s: %d %s", service, res.StatusCode, b)
	}
}

// WorkerdAlone serves script by itself from a static configuration on a
// loopback port, as the reference, and returns its URL.
func WorkerdAlone(tb testing.TB, script string) string {
	tb.Helper()
	bin, err := workerd.FindBinary("", "")
	if err != nil {
		tb.Skipf("skipping: no workerd: %v", err)
	}
	dir := tb.TempDir()
	addr := freePort(tb)
	if err := os.WriteFile(filepath.Join(dir, "worker.js"), []byte(script), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg := `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = (
    modules = [(name = "worker.js", esModule = embed "worker.js")],
    compatibilityDate = "2025-01-01"))],
  sockets = [(name = "http", address = "` + addr + `", http = (), service = "main")],
);
`
	if err := os.WriteFile(filepath.Join(dir, "config.capnp"), []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "config.capnp")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr + "/"
	WaitOK(tb, url, "")
	return url
}

// WaitOK polls url (with Host host, when set) until it answers 200.
func WaitOK(tb testing.TB, url, host string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && string(b) == "hello" {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s (Host %q) did not answer hello: %v", url, host, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Load is what one wrk run measured.
type Load struct {
	RPS           float64
	P50, P99      time.Duration
	Errors        int
	Non2xx        int
	TotalRequests int
}

var (
	reRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reTotal   = regexp.MustCompile(`(\d+) requests in`)
)

// Wrk runs wrk -t1 -c<conns> for d against url with Host host.
func Wrk(tb testing.TB, url, host string, conns int, d time.Duration) Load {
	tb.Helper()
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("wrk: %v\n%s", err, out)
	}
	var l Load
	if m := reRPS.FindSubmatch(out); m != nil {
		l.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	for _, m := range reLatency.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[3])]
		if string(m[1]) == "50" {
			l.P50 = time.Duration(v * float64(unit))
		} else {
			l.P99 = time.Duration(v * float64(unit))
		}
	}
	if m := reNon2xx.FindSubmatch(out); m != nil {
		l.Non2xx, _ = strconv.Atoi(string(m[1]))
	}
	if m := reErrors.FindSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(string(s))
			l.Errors += n
		}
	}
	if m := reTotal.FindSubmatch(out); m != nil {
		l.TotalRequests, _ = strconv.Atoi(string(m[1]))
	}
	return l
}

// statusBytes returns a field of /proc/<pid>/status (VmRSS, RssAnon) in
// bytes.
func statusBytes(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// workerMemory describes the memory of the worker processes this process
// started (the children named workerd).
func workerMemory() string {
	dirs, _ := os.ReadDir("/proc")
	var out []string
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil || !strings.Contains(string(stat), "(workerd)") {
			continue
		}
		f := strings.Fields(string(stat))
		if len(f) > 3 && f[3] == strconv.Itoa(os.Getpid()) {
			out = append(out, fmt.Sprintf("worker process %d: RSS %.1f MB, RssAnon %.1f MB",
				pid, float64(statusBytes(pid, "VmRSS"))/(1<<20), float64(statusBytes(pid, "RssAnon"))/(1<<20)))
		}
	}
	return strings.Join(out, "; ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// TestFrontDoor compares, in alternating rounds, workerd serving a hello
// worker alone with the same worker through `dotdo dev`'s dispatcher.
func TestFrontDoor(t *testing.T) {
	if !explicitlyRun("TestFrontDoor") {
		t.Skip("a load test: run it with -run TestFrontDoor")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("skipping: wrk is not installed (apt-get install wrk)")
	}
	rounds, secs := envInt("FRONTDOOR_ROUNDS", 4), envInt("FRONTDOOR_SECONDS", 4)
	conns := envInt("FRONTDOOR_CONNECTIONS", 32)
	dev := StartDev(t)
	dev.Deploy(t, "gateway", hello)
	front := dev.DispatcherURL + "/"
	WaitOK(t, front, "api.do")
	ref := WorkerdAlone(t, hello)
	// Warm both up.
	Wrk(t, ref, "", conns, time.Second)
	Wrk(t, front, "api.do", conns, time.Second)
	t.Logf("resident memory after warm-up: control plane (dotdo dev, this process) %.0f MB; %s",
		float64(statusBytes(os.Getpid(), "VmRSS"))/(1<<20), workerMemory())

	var refRPS, frontRPS, ratios, refP50, frontP50 []float64
	for i := range rounds {
		r := Wrk(t, ref, "", conns, time.Duration(secs)*time.Second)
		f := Wrk(t, front, "api.do", conns, time.Duration(secs)*time.Second)
		if r.Errors+r.Non2xx+f.Errors+f.Non2xx > 0 {
			t.Errorf("round %d: errors: reference %d/%d, front door %d/%d (socket/non-2xx)", i, r.Errors, r.Non2xx, f.Errors, f.Non2xx)
		}
		refRPS, frontRPS = append(refRPS, r.RPS), append(frontRPS, f.RPS)
		ratios = append(ratios, f.RPS/r.RPS)
		refP50, frontP50 = append(refP50, float64(r.P50)), append(frontP50, float64(f.P50))
		t.Logf("round %d: workerd alone %.0f req/s (p50 %v, p99 %v); dispatcher %.0f req/s (p50 %v, p99 %v); ratio %.2f",
			i, r.RPS, r.P50, r.P99, f.RPS, f.P50, f.P99, f.RPS/r.RPS)
	}
	t.Logf("median over %d rounds of %d s, wrk -t1 -c%d: workerd alone %.0f req/s, dispatcher %.0f req/s, ratio %.2f (min %.2f, max %.2f); p50 %v vs %v",
		rounds, secs, conns, median(refRPS), median(frontRPS), median(ratios), slices.Min(ratios), slices.Max(ratios),
		time.Duration(median(refP50)), time.Duration(median(frontP50)))
	fmt.Fprintf(os.Stderr, "FRONTDOOR ratio=%.2f ref=%.0f front=%.0f\n", median(ratios), median(refRPS), median(frontRPS))
}

// TestDeployToLive deploys a new version of a worker again and again and
// measures, for each, the time from the Deploy API's answer to the first
// response of the new version through the front door (polled every
// millisecond).
func TestDeployToLive(t *testing.T) {
	if !explicitlyRun("TestDeployToLive") {
		t.Skip("a benchmark: run it with -run TestDeployToLive")
	}
	n := envInt("FRONTDOOR_DEPLOYS", 30)
	dev := StartDev(t)
	versioned := func(i int) string {
		return `export default { fetch() { return new Response("v` + strconv.Itoa(i) + `") } }`
	}
	dev.Deploy(t, "gateway", versioned(0))
	front := dev.DispatcherURL + "/"
	client := &http.Client{Timeout: 5 * time.Second}
	get := func() string {
		req, _ := http.NewRequest(http.MethodGet, front, nil)
		req.Host = "api.do"
		res, err := client.Do(req)
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	for get() != "v0" {
		time.Sleep(10 * time.Millisecond)
	}
	var lags []float64
	for i := 1; i <= n; i++ {
		dev.Deploy(t, "gateway", versioned(i))
		answered := time.Now()
		want := "v" + strconv.Itoa(i)
		for get() != want {
			if time.Since(answered) > 10*time.Second {
				t.Fatalf("deploy %d did not reach traffic within 10 s", i)
			}
			time.Sleep(time.Millisecond)
		}
		lags = append(lags, float64(time.Since(answered)))
	}
	slices.Sort(lags)
	t.Logf("deploy to live through the front door, %d deploys: p50 %v, p99 %v, max %v",
		n, time.Duration(lags[len(lags)/2]).Round(time.Millisecond), time.Duration(lags[len(lags)*99/100]).Round(time.Millisecond),
		time.Duration(lags[len(lags)-1]).Round(time.Millisecond))
}

// TestTailOverhead measures a logging worker's throughput through the
// front door with 0, 1 and 10 tailers attached (each reading its
// TailWorker stream as fast as it comes), in alternating rounds:
//
//	go test ./bench/frontdoor -run TestTailOverhead -v
func TestTailOverhead(t *testing.T) {
	if !explicitlyRun("TestTailOverhead") {
		t.Skip("a load test: run it with -run TestTailOverhead")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("skipping: wrk is not installed (apt-get install wrk)")
	}
	rounds, secs := envInt("FRONTDOOR_ROUNDS", 3), envInt("FRONTDOOR_SECONDS", 4)
	conns := envInt("FRONTDOOR_CONNECTIONS", 32)
	dev := StartDev(t)
	dev.Deploy(t, "gateway", `export default { fetch(req) { console.log("request", req.method, req.url); return new Response("hello") } }`)
	front := dev.DispatcherURL + "/"
	WaitOK(t, front, "api.do")
	Wrk(t, front, "api.do", conns, time.Second)

	results := map[int][]float64{}
	for range rounds {
		for _, n := range []int{0, 1, 10} {
			stop, received := dev.Tailers(t, "gateway", n)
			if n > 0 {
				// The first request after a tail opens goes to the worker's
				// process with the tail worker: warm it.
				Wrk(t, front, "api.do", conns, time.Second)
			}
			l := Wrk(t, front, "api.do", conns, time.Duration(secs)*time.Second)
			got := stop()
			results[n] = append(results[n], l.RPS)
			t.Logf("%2d tailers: %.0f req/s (p50 %v), %d events received", n, l.RPS, l.P50, got)
			_ = received
		}
	}
	base := median(results[0])
	t.Logf("median over %d rounds, wrk -t1 -c%d, a worker that logs once per request: 0 tailers %.0f req/s; 1 tailer %.0f (%.2fx); 10 tailers %.0f (%.2fx)",
		rounds, conns, base, median(results[1]), median(results[1])/base, median(results[10]), median(results[10])/base)
}

// ViewerKey creates a viewer API key through the AdminService and returns
// its secret.
func (d *Dev) ViewerKey(tb testing.TB) string {
	tb.Helper()
	client := deployv1connect.NewAdminServiceClient(&http.Client{}, d.DeployURL)
	req := connect.NewRequest(&deployv1.CreateApiKeyRequest{Name: "bench tailer", Role: authv1.Role_ROLE_VIEWER})
	req.Header().Set("Authorization", "Bearer "+d.AdminKey)
	res, err := client.CreateApiKey(context.Background(), req)
	if err != nil {
		tb.Fatal(err)
	}
	return res.Msg.GetSecret()
}

// Tailers opens n TailWorker streams of service in production, each read
// by a goroutine, and returns a function that closes them and returns how
// many events they received in all.
func (d *Dev) Tailers(tb testing.TB, service string, n int) (stop func() int64, received *atomic.Int64) {
	tb.Helper()
	received = &atomic.Int64{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := deployv1connect.NewLogServiceClient(&http.Client{}, d.DeployURL)
	var key string
	for i := range n {
		if i%deploy.DefaultMaxTailsPerKey == 0 {
			// A key may hold only so many tails open: a viewer key per group.
			key = d.ViewerKey(tb)
		}
		req := connect.NewRequest(&deployv1.TailWorkerRequest{Service: service, Environment: "production"})
		req.Header().Set("Authorization", "Bearer "+key)
		stream, err := client.TailWorker(ctx, req)
		if err != nil {
			tb.Fatal(err)
		}
		if !stream.Receive() || stream.Msg().GetStarted() == nil {
			tb.Fatalf("tail did not start: %v", stream.Err())
		}
		wg.Go(func() {
			defer stream.Close()
			for stream.Receive() {
				if stream.Msg().GetEvent() != nil {
					received.Add(1)
				}
			}
		})
	}
	return func() int64 {
		cancel()
		wg.Wait()
		return received.Load()
	}, received
}
