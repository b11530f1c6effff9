package runtime_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime"
)

// TestHungWorker: a worker spinning in while(true){} hangs its namespace's
// process only; the supervisor kills it and the namespace serves again.
func TestHungWorker(t *testing.T) {
	e := start(t, t.TempDir(), fastHangDetection)
	e.mustCreateNamespace("a")
	e.mustCreateNamespace("b")
	spin := e.mustUpload("a", "spin", `export default { fetch() { while (true) {} } }`, nil)
	okA := e.mustUpload("a", "ok", helloWorker, nil)
	okB := e.mustUpload("b", "ok", helloWorker, nil)
	if s, _ := e.invoke("a", "ok", okA, "/"); s != 200 {
		t.Fatalf("a/ok before: %d", s)
	}
	pidA := e.pid("a")

	// Requests to b keep going during the whole episode.
	stop := make(chan struct{})
	var bFailures, bRequests atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, b := e.invoke("b", "ok", okB, "/")
			bRequests.Add(1)
			if s != 200 || b != "hello" {
				bFailures.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	spinStatus := make(chan int, 1)
	go func() {
		s, _ := e.invoke("a", "spin", spin, "/")
		spinStatus <- s
	}()

	// Wait for the supervisor to notice the hang and kill the process.
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pidA) {
		if time.Now().After(deadline) {
			t.Fatal("hung process was not killed within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	detected := time.Now()
	select {
	case s := <-spinStatus:
		if s != http.StatusBadGateway {
			t.Errorf("spinning request: status %d, want 502", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("spinning request did not end after its process was killed")
	}
	// a serves again, well within 5 seconds.
	for {
		s, b := e.invoke("a", "ok", okA, "/")
		if s == 200 && b == "hello" {
			break
		}
		if time.Since(detected) > 5*time.Second {
			t.Fatalf("a/ok did not recover within 5s of the kill: %d %q", s, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a recovered %v after the kill", time.Since(detected).Round(time.Millisecond))
	if np := e.pid("a"); np == 0 || np == pidA {
		t.Errorf("a runs in pid %d, was %d", np, pidA)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if bFailures.Load() != 0 || bRequests.Load() < 10 {
		t.Fatalf("namespace b: %d of %d requests failed", bFailures.Load(), bRequests.Load())
	}
}

// TestRecycle: a process that passes its loaded-versions bound is replaced
// blue/green without failing the request in flight on it.
func TestRecycle(t *testing.T) {
	e := start(t, t.TempDir(), func(c *runtime.Config) { c.MaxLoadedVersions = 3 })
	e.mustCreateNamespace("ns")
	slow := e.mustUpload("ns", "slow", `export default {
  async fetch() {
    await new Promise((r) => setTimeout(r, 1000));
    return new Response("slow done");
  },
}`, nil)
	if s, b := e.invoke("ns", "slow", slow, "/"); s != 200 || b != "slow done" {
		t.Fatalf("slow: %d %q", s, b)
	}
	pid0 := e.pid("ns") // the process that served it

	// A request in flight on the old process survives the swap.
	done := make(chan string, 1)
	go func() {
		s, b := e.invoke("ns", "slow", slow, "/")
		done <- itoa(s) + " " + b
	}()
	time.Sleep(200 * time.Millisecond)
	var versions []int64
	for i := 0; i < 4; i++ {
		versions = append(versions, e.mustUpload("ns", "v", `export default { fetch() { return new Response("v`+itoa(i)+`") } }`, nil))
	}
	for i, v := range versions {
		if s, b := e.invoke("ns", "v", v, "/"); s != 200 || b != "v"+itoa(i) {
			t.Fatalf("v%d: %d %q", i, s, b)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.pid("ns") == pid0 {
		if time.Now().After(deadline) {
			t.Fatal("process was not replaced after passing MaxLoadedVersions")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := <-done; got != "200 slow done" {
		t.Fatalf("in-flight request during the swap: %q", got)
	}
	// The old process is drained and killed.
	deadline = time.Now().Add(5 * time.Second)
	for processAlive(pid0) {
		if time.Now().After(deadline) {
			t.Fatal("replaced process still alive after drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, b := e.invoke("ns", "slow", slow, "/"); s != 200 || b != "slow done" {
		t.Fatalf("slow on new process: %d %q", s, b)
	}

	// An explicit recycle while requests run: none fails.
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, _ := e.invoke("ns", "slow", slow, "/"); s != 200 {
				failures.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	before := e.pid("ns")
	e.rt.Recycle("ns")
	if e.pid("ns") == before {
		t.Error("Recycle did not replace the process")
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d requests failed across a blue/green swap", failures.Load())
	}
}

// TestCrashedProcess: a workerd process that dies is replaced on the next
// request.
func TestCrashedProcess(t *testing.T) {
	e := start(t, t.TempDir(), nil)
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", helloWorker, nil)
	if s, _ := e.invoke("ns", "app", v, "/"); s != 200 {
		t.Fatal("first request failed")
	}
	pid := e.pid("ns")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for processAlive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if s, b := e.invoke("ns", "app", v, "/"); s != 200 || b != "hello" {
		t.Fatalf("after crash: %d %q", s, b)
	}
	if np := e.pid("ns"); np == pid || np == 0 {
		t.Fatalf("pid after crash: %d (was %d)", np, pid)
	}
}

// TestRecycleByRSS: with an RSS bound below any workerd's, every health
// check replaces the process; requests keep succeeding through the churn.
func TestRecycleByRSS(t *testing.T) {
	e := start(t, t.TempDir(), func(c *runtime.Config) { c.MaxRSSBytes = 1 << 20 })
	e.mustCreateNamespace("ns")
	v := e.mustUpload("ns", "app", `export default {
  async fetch() {
    await new Promise((r) => setTimeout(r, 50));
    return new Response("ok");
  },
}`, nil)
	if s, _ := e.invoke("ns", "app", v, "/"); s != 200 {
		t.Fatal("first request")
	}
	pids := map[int]bool{}
	var failures, total atomic.Int64
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				s, b := e.invoke("ns", "app", v, "/")
				total.Add(1)
				if s != 200 || b != "ok" {
					failures.Add(1)
				}
			}
		}()
	}
	for time.Now().Before(stop) {
		if pid := e.pid("ns"); pid != 0 {
			pids[pid] = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if len(pids) < 3 {
		t.Errorf("saw %d processes; want the RSS bound to replace them repeatedly", len(pids))
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed across RSS recycling", failures.Load(), total.Load())
	}
	t.Logf("%d requests over %d processes, none failed", total.Load(), len(pids))
}
