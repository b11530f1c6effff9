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

// staticLive is a dispatcher Source with fixed live versions and the seed
// routing table: a snapshot, then nothing.
type staticLive map[string]int64

func (s staticLive) WatchEnvironment(ctx context.Context, _ string, fn func(store.WatchEvent) error) error {
	ev := store.WatchEvent{Snapshot: true}
	for w, v := range s {
		ev.Live = append(ev.Live, store.Deployment{Service: w, Environment: "production", Namespace: namespace, Version: v, Status: store.StatusLive})
	}
	if err := fn(ev); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newDispatcher(tb testing.TB, cfg dispatcher.Config, live staticLive) *dispatcher.Dispatcher {
	tb.Helper()
	cfg.InvokeToken, cfg.Logger = dispatchertest.InvokeToken, quiet
	d, err := dispatcher.New(cfg, live)
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
	// rounds holds what each round measured.
	rounds []round
}

// round is what one round of one side measured.
type round struct {
	rps float64
	p50 time.Duration
}

func (s *side) rps() float64 { return float64(len(s.latencies)) / s.elapsed.Seconds() }

// quantile returns the q-quantile of the latencies; sort them first.
func (s *side) quantile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	return s.latencies[int(float64(len(s.latencies)-1)*q)]
}

// median returns the median of f over the rounds that sides a and b both
// ran, the i-th round of a with the i-th round of b.
func median(a, b []round, f func(a, b round) float64) float64 {
	v := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		v = append(v, f(a[i], b[i]))
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
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
	before := len(s.latencies)
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
	took := time.Since(start)
	s.elapsed += took
	lat := slices.Clone(s.latencies[before:])
	slices.Sort(lat)
	r := round{rps: float64(len(lat)) / took.Seconds()}
	if len(lat) > 0 {
		r.p50 = lat[(len(lat)-1)/2]
	}
	s.rounds = append(s.rounds, r)
	s.errors += int(failures.Load())
}

// TestLoad compares the throughput and latency of a hello worker reached
// straight through the runtime's invocation endpoint with the same worker
// reached through the dispatcher, in one run: the dispatcher with the
// runtime in its process (as `dotdo dev` runs them) and the dispatcher
// forwarding over HTTP (as the dispatcher binary does). It reports what it
// measures; it fails only when requests fail.
func TestLoad(t *testing.T) {
	if testing.Short() || !explicitlyRun("TestLoad") {
		t.Skip("a load test: run it with go test ./bench/dispatcher -run TestLoad -v")
	}
	duration := envOr("DOTDO_LOAD_DURATION", 10*time.Second, time.ParseDuration)
	clients := envOr("DOTDO_LOAD_CLIENTS", 32, strconv.Atoi)
	rounds := envOr("DOTDO_LOAD_ROUNDS", 15, strconv.Atoi)

	rt := dispatchertest.StartRuntime(t)
	version := rt.Upload(t, namespace, "gateway", dispatchertest.HelloWorker)
	live := staticLive{"gateway": version}
	// The runtime served on its own listener, as in every layout.
	runtimeSrv := httptest.NewServer(rt.Handler())
	defer runtimeSrv.Close()
	overHTTP := "http://" + serve(t, newDispatcher(t, dispatcher.Config{RuntimeURL: runtimeSrv.URL}, live)) + "/"
	inProcess := "http://" + serve(t, newDispatcher(t, dispatcher.Config{Runtime: rt.Handler()}, live)) + "/"
	directURL := runtimeSrv.URL + dispatcher.InvokePrefix + namespace + "/gateway/" + strconv.FormatInt(version, 10) + "/"

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
	through := func(base string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, base, nil)
			req.Host = "gateway.do"
			return req
		}
	}
	sides := []struct {
		name   string
		newReq func() *http.Request
	}{
		{"direct to runtime", direct},
		{"dispatcher, runtime in process", through(inProcess)},
		{"dispatcher, runtime over HTTP", through(overHTTP)},
	}

	// Warm up: start workerd, load the worker, fill the connection pools.
	for _, s := range sides {
		var w side
		if drive(&w, clients, 500*time.Millisecond, client, s.newReq); w.errors > 0 || len(w.latencies) == 0 {
			t.Fatalf("warm-up %s: %d ok, %d errors", s.name, len(w.latencies), w.errors)
		}
	}
	// The sides alternate in short rounds, each round in another order, so
	// that all see the same background load on the machine; the ratio and
	// the added p50 reported are medians over the rounds, which one stall
	// (a garbage collection, a busy neighbour) does not move.
	measure := func(clients int, duration time.Duration) []side {
		got := make([]side, len(sides))
		for r := range rounds {
			for k := range sides {
				i := (r + k) % len(sides)
				drive(&got[i], clients, duration/time.Duration(rounds), client, sides[i].newReq)
			}
		}
		for i := range got {
			slices.Sort(got[i].latencies)
		}
		return got
	}
	many := measure(clients, duration)
	// One client: the latency the dispatcher adds when nothing queues.
	one := measure(1, duration/2)

	var b strings.Builder
	fmt.Fprintf(&b, "\nloopback, GOMAXPROCS=%d, %d alternating rounds per measurement\n", runtime.GOMAXPROCS(0), rounds)
	fmt.Fprintf(&b, "%-44s %9s %10s %10s %7s %7s %11s %11s\n", "", "req/s", "p50", "p99", "errors", "ratio", "added p50", "added p99")
	errs := 0
	for _, m := range []struct {
		n  int
		ss []side
	}{{clients, many}, {1, one}} {
		for i, s := range m.ss {
			errs += s.errors
			d := m.ss[0]
			fmt.Fprintf(&b, "%-44s %9.0f %10v %10v %7d %7.3f %11v %11v\n",
				fmt.Sprintf("%s, %d clients", sides[i].name, m.n), s.rps(),
				s.quantile(0.50).Round(time.Microsecond), s.quantile(0.99).Round(time.Microsecond), s.errors,
				median(s.rounds, d.rounds, func(a, b round) float64 { return a.rps / b.rps }),
				time.Duration(median(s.rounds, d.rounds, func(a, b round) float64 { return float64(a.p50 - b.p50) })).Round(time.Microsecond),
				(s.quantile(0.99) - d.quantile(0.99)).Round(time.Microsecond))
		}
	}
	fmt.Fprintf(&b, "ratio: median over the rounds of the throughput ratio to direct (target >= 0.90); added p50: median over the rounds\n"+
		"of the p50 difference to direct (target <= 200µs); added p99: difference of the p99s over all rounds\n")
	t.Log(b.String())
	if errs > 0 {
		t.Fatalf("%d requests failed", errs)
	}
}

// BenchmarkRoute measures routing alone (no I/O), for each rule.
func BenchmarkRoute(b *testing.B) {
	d := newDispatcher(b, dispatcher.Config{RuntimeURL: "http://127.0.0.1:1"}, staticLive{"gateway": 1, "db": 2})
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
// in front of an upstream that answers at once, with 32 goroutines, over
// HTTP (a loopback server) and in process.
func BenchmarkProxy(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	up := httptest.NewServer(hello)
	defer up.Close()
	for _, c := range []struct {
		name string
		cfg  dispatcher.Config
	}{
		{"http", dispatcher.Config{RuntimeURL: up.URL}},
		{"in-process", dispatcher.Config{Runtime: hello}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := newDispatcher(b, c.cfg, staticLive{"gateway": 1})
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
		})
	}
}
