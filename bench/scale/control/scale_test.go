package control

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sizes are the sizes of one run.
type sizes struct {
	workers []int // namespace sizes of the deploy curve
	deploys int   // measured deploys per namespace size
	rows    []int // deployment rows of the history curve
	queries int   // measured calls per query shape
	events  []int // audit events of the audit curve
	appends int   // measured appends per size
}

// small runs in CI; full is the issue's.
var (
	small = sizes{workers: []int{10, 100}, deploys: 5, rows: []int{10_000}, queries: 50, events: []int{10_000}, appends: 200}
	full  = sizes{workers: []int{10, 100, 1_000, 10_000}, deploys: 40, rows: []int{10_000, 100_000, 1_000_000}, queries: 300,
		events: []int{100_000, 1_000_000}, appends: 2_000}
)

// runSizes returns the sizes SCALE names, with any list overridden by
// SCALE_WORKERS, SCALE_ROWS or SCALE_EVENTS (comma-separated).
func runSizes() sizes {
	sz := small
	if os.Getenv("SCALE") == "full" {
		sz = full
	}
	sz.workers = envInts("SCALE_WORKERS", sz.workers)
	sz.rows = envInts("SCALE_ROWS", sz.rows)
	sz.events = envInts("SCALE_EVENTS", sz.events)
	return sz
}

func envInts(key string, def []int) []int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return def
		}
		out = append(out, n)
	}
	return out
}

// TestScale runs the three curves; see the package documentation.
func TestScale(t *testing.T) {
	sz := runSizes()
	t.Run("deploy", func(t *testing.T) { testDeployCurve(t, sz) })
	t.Run("history", func(t *testing.T) { testHistoryCurve(t, sz) })
	t.Run("audit", func(t *testing.T) { testAuditCurve(t, sz) })
}

// latencies collects durations and reports percentiles.
type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// timeN calls f n times and returns each call's duration; it stops the
// test at the first error.
func timeN(t *testing.T, n int, f func(i int) error) latencies {
	t.Helper()
	out := make(latencies, 0, n)
	for i := range n {
		start := time.Now()
		if err := f(i); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

// table accumulates a markdown table and logs it at the end of a test.
type table struct {
	mu   sync.Mutex
	head []string
	rows [][]string
}

func newTable(t *testing.T, title string, head ...string) *table {
	tb := &table{head: head}
	t.Cleanup(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "\n%s\n| %s |\n|%s\n", title, strings.Join(tb.head, " | "), strings.Repeat("---|", len(tb.head)))
		for _, r := range tb.rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
		}
		t.Log(b.String())
	})
	return tb
}

func (tb *table) add(cells ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	tb.rows = append(tb.rows, row)
}

// memPeak measures the memory a function needs: the process's peak RSS
// (VmHWM, reset first through /proc/self/clear_refs) and the highest Go
// heap in use, sampled every 5 ms.
type memPeak struct {
	rssBefore, rssPeak int64 // kB
	heapPeak           uint64
}

func measureMemory(f func()) memPeak {
	runtime.GC()
	debug.FreeOSMemory()
	var m memPeak
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM (Linux)
	m.rssBefore = procStatus("VmRSS")
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	m.rssPeak, m.heapPeak = procStatus("VmHWM"), peak.Load()
	return m
}

// procStatus returns a kB field of /proc/self/status, or -1.
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

func mib(kb int64) string { return strconv.FormatFloat(float64(kb)/1024, 'f', 1, 64) }
