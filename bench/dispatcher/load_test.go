package dispatcher_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
)

const namespace = "dotdo-production"

// staticLive is a Deployments source with fixed live versions.
type staticLive map[string]int64

func (s staticLive) ListDeployments(context.Context, store.ListFilter) ([]store.Deployment, string, error) {
	var out []store.Deployment
	for w, v := range s {
		out = append(out, store.Deployment{Service: w, Environment: "production", Namespace: namespace, Version: v, Status: store.StatusLive})
	}
	return out, "", nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newDispatcher(tb testing.TB, runtimeURL string, live staticLive) *dispatcher.Dispatcher {
	tb.Helper()
	d, err := dispatcher.New(dispatcher.Config{RuntimeURL: runtimeURL, InvokeToken: dispatchertest.InvokeToken, Logger: quiet}, live)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	if err := d.Refresh(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return d
}

// serve serves d as the dispatcher binary does (internal/server, h2c,
// Middleware) on loopback and returns its address.
func serve(tb testing.TB, d *dispatcher.Dispatcher) string {
	tb.Helper()
	opts, err := rpc.HandlerOptions(rpc.WithLogger(quiet))
	if err != nil {
		tb.Fatal(err)
	}
	srv := server.New("dispatcher", server.WithLogger(quiet), server.WithMiddleware(dispatcher.Middleware(d)))
	srv.Register(dispatcherv1connect.NewDispatcherServiceHandler(dispatcher.NewHandler(d), opts...))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// explicitlyRun reports whether the -run pattern names test, so that a
// long load test stays out of `go test ./...`.
func explicitlyRun(test string) bool {
	f := flag.Lookup("test.run")
	return f != nil && strings.Contains(f.Value.String(), test)
}

func envOr[T any](key string, def T, parse func(string) (T, error)) T {
	if v := os.Getenv(key); v != "" {
		if x, err := parse(v); err == nil {
			return x
		}
	}
	return def
}

// side accumulates what one side of the load test measured.
type side struct {
	latencies []time.Duration
	errors    int
	elapsed   time.Duration
}

func (s *side) rps() float64 { return float64(len(s.latencies)) / s.elapsed.Seconds() }

// quantile returns the q-quantile of the latencies; sort them first.
func (s *side) quantile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	return s.latencies[int(float64(len(s.latencies)-1)*q)]
}

// drive sends requests built by newReq from clients goroutines for d and
// adds what it measured to s. A request fails unless it gets 200 and body
// "hello".
func drive(s *side, clients int, d time.Duration, client *http.Client, newReq func() *http.Request) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures atomic.Int64
	)
	start := time.Now()
	stop := start.Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			buf := make([]byte, 8)
			for time.Now().Before(stop) {
				t0 := time.Now()
				res, err := client.Do(newReq())
				if err != nil {
					failures.Add(1)
					continue
				}
				n, _ := io.ReadFull(res.Body, buf[:5])
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || string(buf[:n]) != "hello" {
					failures.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			s.latencies = append(s.latencies, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.elapsed += time.Since(start)
	s.errors += int(failures.Load())
}

// TestLoad compares the throughput and latency of a hello worker reached
// straight through the runtime's invocation endpoint with the same worker
// reached through the dispatcher, in one run. It reports what it measures;
// it fails only when requests fail.
func TestLoad(t *testing.T) {
	if testing.Short() || !explicitlyRun("TestLoad") {
		t.Skip("a load test: run it with go test ./bench/dispatcher -run TestLoad -v")
	}
	duration := envOr("DOTDO_LOAD_DURATION", 5*time.Second, time.ParseDuration)
	clients := envOr("DOTDO_LOAD_CLIENTS", 32, strconv.Atoi)
	rounds := envOr("DOTDO_LOAD_ROUNDS", 5, strconv.Atoi)

	rt := dispatchertest.StartRuntime(t)
	version := rt.Upload(t, namespace, "gateway", dispatchertest.HelloWorker)
	d := newDispatcher(t, rt.URL, staticLive{"gateway": version})
	dispatcherURL := "http://" + serve(t, d) + "/"
	directURL := rt.InvokeURL(namespace, "gateway", version, "/")

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 2 * clients,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()
	direct := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, directURL, nil)
		req.Header.Set(dispatcher.InvokeTokenHeader, dispatchertest.InvokeToken)
		req.Header.Set("X-Forwarded-Host", "gateway.do") // the runtime builds the same URL as for the dispatcher
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		return req
	}
	through := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, dispatcherURL, nil)
		req.Host = "gateway.do"
		return req
	}

	// Warm up: start workerd, load the worker, fill the connection pools.
	for _, f := range []func() *http.Request{direct, through} {
		var w side
		if drive(&w, clients, 500*time.Millisecond, client, f); w.errors > 0 || len(w.latencies) == 0 {
			t.Fatalf("warm-up: %d ok, %d errors", len(w.latencies), w.errors)
		}
	}
	// The sides alternate in rounds, so that both see the same background
	// load on the machine.
	measure := func(clients int, duration time.Duration) (dr, th side) {
		for range rounds {
			drive(&dr, clients, duration/time.Duration(rounds), client, direct)
			drive(&th, clients, duration/time.Duration(rounds), client, through)
		}
		slices.Sort(dr.latencies)
		slices.Sort(th.latencies)
		return dr, th
	}
	dr, th := measure(clients, duration)
	// One client: the latency the dispatcher adds when nothing queues.
	dr1, th1 := measure(1, duration/2)

	var b strings.Builder
	fmt.Fprintf(&b, "\nloopback, GOMAXPROCS=%d, %d alternating rounds per measurement\n", runtime.GOMAXPROCS(0), rounds)
	fmt.Fprintf(&b, "%-34s %10s %10s %10s %8s\n", "", "req/s", "p50", "p99", "errors")
	for _, row := range []struct {
		name string
		s    *side
	}{
		{fmt.Sprintf("direct to runtime, %d clients", clients), &dr},
		{fmt.Sprintf("through dispatcher, %d clients", clients), &th},
		{"direct to runtime, 1 client", &dr1},
		{"through dispatcher, 1 client", &th1},
	} {
		fmt.Fprintf(&b, "%-34s %10.0f %10v %10v %8d\n", row.name, row.s.rps(),
			row.s.quantile(0.50).Round(time.Microsecond), row.s.quantile(0.99).Round(time.Microsecond), row.s.errors)
	}
	fmt.Fprintf(&b, "%d clients: throughput ratio (dispatcher/direct) %.3f (target >= 0.90); added p50 %v (target <= 200µs), p99 %v\n",
		clients, th.rps()/dr.rps(), (th.quantile(0.50) - dr.quantile(0.50)).Round(time.Microsecond), (th.quantile(0.99) - dr.quantile(0.99)).Round(time.Microsecond))
	fmt.Fprintf(&b, "1 client: added p50 %v, p99 %v\n",
		(th1.quantile(0.50) - dr1.quantile(0.50)).Round(time.Microsecond), (th1.quantile(0.99) - dr1.quantile(0.99)).Round(time.Microsecond))
	t.Log(b.String())
	if n := dr.errors + th.errors + dr1.errors + th1.errors; n > 0 {
		t.Fatalf("%d requests failed", n)
	}
}

// BenchmarkRoute measures routing alone (no I/O), for each rule.
func BenchmarkRoute(b *testing.B) {
	d := newDispatcher(b, "http://127.0.0.1:1", staticLive{"gateway": 1, "db": 2})
	for _, c := range []struct{ name, host, path string }{
		{"subdomain", "gateway.do", "/hello"},
		{"path", "api.do", "/api/db/users"},
		{"default", "api.do", "/v1/things"},
		{"uppercase-port", "GATEWAY.DO:8787", "/hello"},
		{"unknown", "nope.do", "/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = d.Route(c.host, c.path)
			}
		})
	}
}

// BenchmarkProxy measures the dispatcher's own cost per request: ServeHTTP
// in front of an upstream that answers at once, with 32 goroutines.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }))
	defer up.Close()
	d := newDispatcher(b, up.URL, staticLive{"gateway": 1})
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "http://gateway.do/hello", nil)
			w := httptest.NewRecorder()
			d.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}
