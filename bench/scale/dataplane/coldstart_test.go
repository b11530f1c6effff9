package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime/workerd"
)

// helloBundle is every deployed worker: it answers with its name.
func helloBundle(_, script string, _ int64) (*workerd.Bundle, error) {
	code := `export default { fetch(req, env) { return new Response(env.NAME) } }`
	return &workerd.Bundle{
		CompatibilityDate: "2025-01-01",
		MainModule:        "w.js",
		Modules:           []workerd.Module{{Name: "w.js", Type: workerd.ModuleESM, Content: []byte(code)}},
		Bindings:          []workerd.Binding{{Name: "NAME", Kind: workerd.BindingText, Value: script}},
	}, nil
}

// supervisor starts a supervisor of hello workers with idle timeout idle
// and at most maxStarting processes starting at once (the default when
// 0), closed (its processes killed) when tb ends.
func supervisor(tb testing.TB, idle time.Duration, maxStarting int) *workerd.Supervisor {
	tb.Helper()
	bin, err := workerd.FindBinary("", "")
	if err != nil {
		tb.Skipf("skipping: no workerd: %v", err)
	}
	s, err := workerd.New(workerd.Options{Binary: bin, Source: workerd.SourceFunc(helloBundle), IdleTimeout: idle,
		MaxStarting: maxStarting, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close the supervisor: %v", err)
		}
	})
	return s
}

// invoke sends one request to worker i and checks its answer.
func invoke(s *workerd.Supervisor, i int) error {
	name := workerName(i)
	rec := httptest.NewRecorder()
	s.Invoke(rec, httptest.NewRequest(http.MethodGet, "/", nil),
		workerd.Target{Key: workerd.Key{Namespace: namespace, Script: name, Version: 1}, Host: name + "." + baseDomain, Proto: "http", Path: "/"})
	if rec.Code != http.StatusOK || rec.Body.String() != name {
		return &answerError{worker: name, status: rec.Code, body: rec.Body.String()}
	}
	return nil
}

// answerError is a wrong answer to a request.
type answerError struct {
	worker string
	status int
	body   string
}

func (e *answerError) Error() string { return fmt.Sprintf("%s: %d %q", e.worker, e.status, e.body) }

// shed reports whether err is the supervisor shedding load: a 503 because
// no start slot or process slot came free within the start timeout.
func shed(err error) bool {
	var ae *answerError
	return errors.As(err, &ae) && ae.status == http.StatusServiceUnavailable && strings.Contains(ae.body, "at capacity")
}

// memory is what some processes hold, from /proc/<pid>/smaps_rollup.
type memory struct{ rss, pss, anon int64 }

func (m *memory) add(o memory) { m.rss += o.rss; m.pss += o.pss; m.anon += o.anon }

// readMemory reads pid's memory ("self" for this process).
func readMemory(pid string) memory {
	b, err := os.ReadFile("/proc/" + pid + "/smaps_rollup")
	if err != nil {
		return memory{}
	}
	var m memory
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
		switch string(f[0]) {
		case "Rss:":
			m.rss = kb << 10
		case "Pss:":
			m.pss = kb << 10
		case "Anonymous:":
			m.anon = kb << 10
		}
	}
	return m
}

// workerdMemory sums the memory of s's processes.
func workerdMemory(s *workerd.Supervisor) (procs int, m memory) {
	for _, p := range s.Processes() {
		procs++
		m.add(readMemory(strconv.Itoa(p.PID)))
	}
	return procs, m
}

// peaks samples processes and memory every interval until stop is closed.
type peaks struct {
	procs, samples, procSum int
	workerd, self           memory
}

func sample(s *workerd.Supervisor, every time.Duration, stop <-chan struct{}) <-chan peaks {
	out := make(chan peaks, 1)
	go func() {
		var p peaks
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n, m := workerdMemory(s)
			self := readMemory("self")
			p.samples++
			p.procSum += n
			p.procs = max(p.procs, n)
			p.workerd = memory{max(p.workerd.rss, m.rss), max(p.workerd.pss, m.pss), max(p.workerd.anon, m.anon)}
			p.self = memory{max(p.self.rss, self.rss), max(p.self.pss, self.pss), max(p.self.anon, self.anon)}
			select {
			case <-stop:
				out <- p
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// spread sends sz.coldRequests requests from sz.clients clients to
// sz.coldWorkers workers picked by pick, against a fresh supervisor with
// idle timeout sz.idle, and reports the latencies of cold requests (the
// worker had no request within the idle timeout), of warm ones and of all,
// with the processes and memory seen. It stops after limit.
func spread(t *testing.T, sz sizes, dist string, pick func(*rand.Rand) int, limit time.Duration, r *report) {
	s := supervisor(t, sz.idle, 0)
	last := make([]atomic.Int64, sz.coldWorkers) // when the last request to each ended
	var mu sync.Mutex
	var all, cold, warm []time.Duration
	var failed atomic.Int64
	var next atomic.Int64
	stop := make(chan struct{})
	sampled := sample(s, time.Second, stop)
	deadline := time.Now().Add(limit)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range sz.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 18))
			for next.Add(1) <= int64(sz.coldRequests) && time.Now().Before(deadline) {
				i := pick(rng)
				t0 := time.Now()
				isCold := last[i].Load() == 0 || t0.UnixNano()-last[i].Load() > int64(sz.idle)
				err := invoke(s, i)
				took := time.Since(t0)
				last[i].Store(time.Now().UnixNano())
				if err != nil {
					if failed.Add(1) <= 5 {
						t.Errorf("%s: %v", dist, err)
					}
					continue
				}
				mu.Lock()
				all = append(all, took)
				if isCold {
					cold = append(cold, took)
				} else {
					warm = append(warm, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	p := <-sampled
	if failed.Load() > 0 {
		t.Errorf("%s: %d failed requests", dist, failed.Load())
	}
	touched := 0
	for i := range last {
		if last[i].Load() != 0 {
			touched++
		}
	}
	r.add(dist, sz.coldWorkers, touched, len(all), fmt.Sprintf("%.0f", float64(len(all))/elapsed.Seconds()),
		ms(percentile(all, .5)), ms(percentile(all, .99)),
		fmt.Sprintf("%d (%.0f%%)", len(cold), 100*float64(len(cold))/float64(max(1, len(all)))),
		ms(percentile(cold, .5)), ms(percentile(cold, .99)), ms(percentile(warm, .5)), ms(percentile(warm, .99)),
		fmt.Sprintf("%d / %.0f", p.procs, float64(p.procSum)/float64(max(1, p.samples))),
		mib(p.workerd.rss), mib(p.workerd.pss), mib(p.workerd.anon), mib(p.self.rss))
}

// capacity keeps sz.active workers active at once and reports what each
// costs and what bounds how many this machine holds.
func capacity(t *testing.T, sz sizes) {
	s := supervisor(t, 10*time.Minute, 0)
	baseFDs, baseSelf := countDir("/proc/self/fd"), readMemory("self")
	// Memory available before the workers start: they are to share it.
	avail := int64(statusFieldOf("/proc/meminfo", "MemAvailable:")) << 10
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := invoke(s, i); err != nil {
					failed.Add(1)
					t.Error(err)
				}
			}
		})
	}
	for i := range sz.active {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	procs, m := workerdMemory(s)
	if failed.Load() > 0 || procs != sz.active {
		t.Fatalf("%d processes for %d active workers, %d failed", procs, sz.active, failed.Load())
	}
	threads, fds := 0, 0
	for _, p := range s.Processes() {
		threads += statusField(strconv.Itoa(p.PID), "Threads:")
		fds += countDir(fmt.Sprintf("/proc/%d/fd", p.PID))
	}
	selfFDs := countDir("/proc/self/fd") - baseFDs
	self := readMemory("self")
	self.rss -= baseSelf.rss
	n := int64(procs)
	var nofile syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	pidMax := readInt("/proc/sys/kernel/pid_max")
	threadsMax := readInt("/proc/sys/kernel/threads-max")
	perPSS, perThreads, perFDs := m.pss/n, float64(threads)/float64(n), float64(selfFDs)/float64(n)
	r := &report{title: fmt.Sprintf("%d workers active at once (started in %v with 8 clients, %d at a time)", procs, took.Round(time.Millisecond), workerd.DefaultMaxStarting),
		head: []string{"measure", "all processes", "per active worker"}}
	r.add("workerd RSS (sum; shared pages counted in each)", mib(m.rss), mib(m.rss/n))
	r.add("workerd PSS (sum; shared pages split)", mib(m.pss), mib(perPSS))
	r.add("workerd anonymous memory", mib(m.anon), mib(m.anon/n))
	r.add("supervisor process (this test) RSS, growth", mib(self.rss), mib(self.rss/n))
	r.add("workerd threads", threads, fmt.Sprintf("%.1f", perThreads))
	r.add("workerd open descriptors", fds, fmt.Sprintf("%.1f", float64(fds)/float64(n)))
	r.add("supervisor open descriptors, growth", selfFDs, fmt.Sprintf("%.1f", perFDs))
	r.log(t)
	if sz.burst == 0 {
		return
	}
	b := &report{title: "What bounds the workers active at once on this machine (extrapolated from the row above)",
		head: []string{"bound", "limit", "active workers it allows"}}
	b.add("memory available before they started (MemAvailable / PSS per worker)", mib(avail), avail/max(1, perPSS))
	b.add("supervisor descriptors (ulimit -n / descriptors per worker)", nofile.Cur, fmt.Sprintf("%.0f", float64(nofile.Cur)/max(perFDs, 1)))
	fileMax := readInt("/proc/sys/fs/file-max")
	b.add("all descriptors (fs.file-max / workerd and supervisor descriptors per worker)", fileMax,
		fmt.Sprintf("%.0f", float64(fileMax)/max(float64(fds)/float64(n)+perFDs, 1)))
	b.add("pids (kernel.pid_max / threads per worker)", pidMax, fmt.Sprintf("%.0f", float64(pidMax)/max(perThreads, 1)))
	b.add("threads (kernel.threads-max / threads per worker)", threadsMax, fmt.Sprintf("%.0f", float64(threadsMax)/max(perThreads, 1)))
	b.add("supervisor MaxProcesses (DOTDO_MAX_PROCESSES)", workerd.DefaultMaxProcesses, workerd.DefaultMaxProcesses)
	b.log(t)
}

func countDir(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

func readInt(path string) int64 {
	b, _ := os.ReadFile(path)
	n, _ := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	return n
}

// statusField reads a number field of /proc/<pid>/status.
func statusField(pid, field string) int { return statusFieldOf("/proc/"+pid+"/status", field) }

func statusFieldOf(path, field string) int {
	b, _ := os.ReadFile(path)
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field)); ok {
			if f := bytes.Fields(v); len(f) > 0 {
				n, _ := strconv.Atoi(string(f[0]))
				return n
			}
		}
	}
	return 0
}

func testColdStart(t *testing.T, sz sizes) {
	if _, err := workerd.FindBinary("", ""); err != nil {
		t.Skipf("skipping: no workerd: %v", err)
	}
	limit := 30 * time.Second
	if sz.full {
		limit = 4 * time.Minute
	}
	r := &report{title: fmt.Sprintf("Cold starts under a spread of traffic (%d clients, idle timeout %v, MaxStarting %d, GOMAXPROCS %d, load average before: %s)",
		sz.clients, sz.idle, workerd.DefaultMaxStarting, runtime.GOMAXPROCS(0), loadAverage()),
		head: []string{"spread", "workers", "touched", "requests", "req/s", "p50", "p99", "cold", "cold p50", "cold p99",
			"warm p50", "warm p99", "processes peak / mean", "workerd RSS peak", "PSS peak", "anon peak", "supervisor RSS peak"}}
	w := sz.coldWorkers
	// One client, each request to a worker not started yet: the cold
	// start itself, with no queue in front of it.
	serial := sz
	serial.clients, serial.coldRequests = 1, min(50, w)
	var seq atomic.Int64
	spread(t, serial, "serial: one client, every request a new worker", func(*rand.Rand) int { return int(seq.Add(1)-1) % w }, limit, r)
	if os.Getenv("SCALE") != "zipf" {
		spread(t, sz, "uniform", func(rng *rand.Rand) int { return rng.IntN(w) }, limit, r)
	}
	spread(t, sz, "zipf s=1.1", func() func(*rand.Rand) int {
		var mu sync.Mutex
		var z *rand.Zipf
		return func(rng *rand.Rand) int {
			mu.Lock()
			defer mu.Unlock()
			if z == nil {
				z = rand.NewZipf(rng, 1.1, 1, uint64(w-1))
			}
			return int(z.Uint64())
		}
	}(), limit, r)
	r.log(t)
	if sz.burst == 0 {
		return
	}
	b := &report{title: fmt.Sprintf("A burst: the first request to each of %d cold workers, all at once", sz.burst),
		head: []string{"MaxStarting", "all answered after", "answered p50", "answered p99", "shed (503, at capacity)", "failed otherwise", "processes peak", "workerd anon peak"}}
	burst(t, sz, workerd.DefaultMaxStarting, b)
	burst(t, sz, sz.burst, b)
	b.log(t)
	capacity(t, sz)
}

// burst sends the first request to each of sz.burst cold workers at once,
// with at most maxStarting processes starting at a time.
func burst(t *testing.T, sz sizes, maxStarting int, r *report) {
	s := supervisor(t, time.Minute, maxStarting)
	stop := make(chan struct{})
	sampled := sample(s, 250*time.Millisecond, stop)
	var mu sync.Mutex
	var took []time.Duration
	var failed, shedded atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range sz.burst {
		wg.Go(func() {
			t0 := time.Now()
			if err := invoke(s, i); shed(err) {
				shedded.Add(1)
				return
			} else if err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			took = append(took, time.Since(t0))
			mu.Unlock()
		})
	}
	wg.Wait()
	all := time.Since(start)
	close(stop)
	p := <-sampled
	// With the start queue, a request either is answered or, when the
	// machine cannot start the burst within the start timeout, is shed
	// with a 503 to retry; at the small sizes every one is answered.
	if maxStarting <= workerd.DefaultMaxStarting && (failed.Load() > 0 || !sz.full && shedded.Load() > 0) {
		t.Errorf("burst with MaxStarting %d: %d of %d requests shed, %d failed otherwise", maxStarting, shedded.Load(), sz.burst, failed.Load())
	}
	r.add(maxStarting, ms(all), ms(percentile(took, .5)), ms(percentile(took, .99)), shedded.Load(), failed.Load(), p.procs, mib(p.workerd.anon))
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// loadAverage returns the 1-minute load average: this machine is shared,
// and the figures mean little without it.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := bytes.Fields(b)
	if len(f) == 0 {
		return "?"
	}
	return string(f[0])
}
