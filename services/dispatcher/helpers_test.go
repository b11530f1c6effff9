package dispatcher_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/dispatcher"
)

// fakeSource is a Source with live versions and a routing table set by the
// test: each watch gets a snapshot, then the changes made while it runs.
// fail makes watches fail (and ends the running ones) until fail(nil).
type fakeSource struct {
	env string

	mu       sync.Mutex
	live     map[string]int64
	table    *store.RouteTable
	err      error
	broken   chan struct{} // closed by fail to end the running watches
	watchers map[chan store.WatchEvent]bool
	calls    atomic.Int64
}

func newFake(env string, live map[string]int64) *fakeSource {
	if live == nil {
		live = map[string]int64{}
	}
	return &fakeSource{env: env, live: live, broken: make(chan struct{}), watchers: map[chan store.WatchEvent]bool{}}
}

func (f *fakeSource) deployment(worker string, version int64) store.Deployment {
	return store.Deployment{
		ID: "dep_" + worker + strconv.FormatInt(version, 10), Service: worker, Environment: f.env,
		Namespace: "dotdo-" + f.env, Version: version, Status: store.StatusLive,
	}
}

// push sends ev to the running watches; f.mu is held.
func (f *fakeSource) push(ev store.WatchEvent) {
	for ch := range f.watchers {
		ch <- ev
	}
}

// set makes version of worker live.
func (f *fakeSource) set(worker string, version int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live[worker] = version
	f.push(store.WatchEvent{Live: []store.Deployment{f.deployment(worker, version)}})
}

// setTable stores t as the next version of the routing table.
func (f *fakeSource) setTable(t routing.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var v int64 = 1
	if f.table != nil {
		v = f.table.Version + 1
	}
	f.table = &store.RouteTable{Environment: f.env, Version: v, Table: t, Kind: store.RouteTableSet}
	rt := *f.table
	f.push(store.WatchEvent{RouteTable: &rt})
}

func (f *fakeSource) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	if err != nil {
		close(f.broken)
		f.broken = make(chan struct{})
	}
}

func (f *fakeSource) WatchEnvironment(ctx context.Context, env string, fn func(store.WatchEvent) error) error {
	f.calls.Add(1)
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	snap := store.WatchEvent{Snapshot: true}
	if env == f.env {
		for w, v := range f.live {
			snap.Live = append(snap.Live, f.deployment(w, v))
		}
		// A superseded row and another environment's row must be ignored.
		snap.Live = append(snap.Live,
			store.Deployment{Service: "gateway", Environment: f.env, Version: 99, Status: store.StatusSuperseded},
			store.Deployment{Service: "gateway", Environment: "elsewhere", Version: 98, Status: store.StatusLive})
		if f.table != nil {
			rt := *f.table
			snap.RouteTable = &rt
		}
	}
	ch, broken := make(chan store.WatchEvent, 64), f.broken
	f.watchers[ch] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	if err := fn(snap); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-broken:
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.err
		case ev := <-ch:
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// newDispatcher returns a dispatcher over src with its routing state
// loaded (Refresh).
func newDispatcher(t testing.TB, cfg dispatcher.Config, src dispatcher.Source) *dispatcher.Dispatcher {
	t.Helper()
	if cfg.InvokeToken == "" {
		cfg.InvokeToken = "test-invoke-token"
	}
	if cfg.Logger == nil {
		cfg.Logger = testsupport.QuietLogger()
	}
	d, err := dispatcher.New(cfg, src)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(d.Close)
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return d
}

// running returns a dispatcher over src whose Run goroutine watches src
// until the test ends, once it has its first snapshot.
func running(t *testing.T, cfg dispatcher.Config, src dispatcher.Source) *dispatcher.Dispatcher {
	t.Helper()
	if cfg.InvokeToken == "" {
		cfg.InvokeToken = "test-invoke-token"
	}
	if cfg.Logger == nil {
		cfg.Logger = testsupport.QuietLogger()
	}
	d, err := dispatcher.New(cfg, src)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Close()
	})
	eventually(t, 5*time.Second, "first snapshot", d.Ready)
	return d
}
