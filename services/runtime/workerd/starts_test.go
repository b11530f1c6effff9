package workerd

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSupervisorBoundsStarts sends a burst of first requests to more cold
// workers than the supervisor may run: at most MaxStarting processes start
// at once, at most MaxProcesses serve at any moment (idle ones make room),
// and every request is answered.
func TestSupervisorBoundsStarts(t *testing.T) {
	bin := findBinary(t)
	const workers, maxStarting, maxProcesses = 9, 2, 3
	var starting, peakStarting atomic.Int32
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) {
		n := starting.Add(1)
		defer starting.Add(-1)
		for p := peakStarting.Load(); n > p && !peakStarting.CompareAndSwap(p, n); p = peakStarting.Load() {
		}
		time.Sleep(20 * time.Millisecond) // widen the window in which starts overlap
		return &Bundle{
			CompatibilityDate: "2025-01-01",
			MainModule:        "w.js",
			Modules:           []Module{{Name: "w.js", Type: ModuleESM, Content: []byte(`export default { fetch() { return new Response("ok") } }`)}},
		}, nil
	})
	s, err := New(Options{Binary: bin, Source: src, MaxStarting: maxStarting, MaxProcesses: maxProcesses})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	stop := make(chan struct{})
	var peakServing atomic.Int32
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			n := int32(len(*s.running.Load()))
			for _, in := range *s.running.Load() {
				if in.retired.Load() {
					n--
				}
			}
			if n > peakServing.Load() {
				peakServing.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			rec := getRoot(s, fmt.Sprintf("w%d", i))
			if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
				t.Errorf("w%d: %d %q", i, rec.Code, rec.Body.String())
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	if p := peakStarting.Load(); p > maxStarting {
		t.Errorf("%d processes started at once; MaxStarting is %d", p, maxStarting)
	}
	if p := peakServing.Load(); p > maxProcesses {
		t.Errorf("%d processes served at once; MaxProcesses is %d", p, maxProcesses)
	}
	serving := 0
	for _, p := range s.Processes() {
		if p.Serving {
			serving++
		}
	}
	if serving > maxProcesses {
		t.Errorf("%d processes serve after the burst; MaxProcesses is %d", serving, maxProcesses)
	}
}

// TestSupervisorForgetsFailedWorkers sends requests for 1,000 scripts
// that do not exist: each is answered 404, and none leaves an entry in the
// supervisor's table of workers.
func TestSupervisorForgetsFailedWorkers(t *testing.T) {
	src := SourceFunc(func(ns, script string, v int64) (*Bundle, error) { return nil, ErrNotFound })
	s, err := New(Options{Binary: findBinary(t), Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := range 1000 {
		rec := getRoot(s, fmt.Sprintf("missing-%d", i))
		if rec.Code != http.StatusNotFound {
			t.Fatalf("missing-%d: %d %s", i, rec.Code, rec.Body)
		}
	}
	s.mu.Lock()
	n := len(s.workers)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d workers in the table after 1,000 failed starts, want 0", n)
	}
}
