package dispatcher_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/dispatcher"
)

// fakeDeployments is a Deployments source: live versions set by the test,
// served in pages of pageSize, with an optional error.
type fakeDeployments struct {
	mu       sync.Mutex
	env      string
	live     map[string]int64
	pageSize int
	err      error
	calls    atomic.Int64
}

func newFake(env string, live map[string]int64) *fakeDeployments {
	return &fakeDeployments{env: env, live: live, pageSize: 2}
}

func (f *fakeDeployments) set(worker string, version int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live[worker] = version
}

func (f *fakeDeployments) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeDeployments) ListDeployments(ctx context.Context, filter store.ListFilter) ([]store.Deployment, string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, "", f.err
	}
	if filter.Status != store.StatusLive || filter.Environment != f.env {
		return nil, "", errors.New("fake: unexpected filter")
	}
	var all []store.Deployment
	for w, v := range f.live {
		all = append(all, store.Deployment{
			ID: "dep_" + w + strconv.FormatInt(v, 10), Service: w, Environment: f.env,
			Namespace: "dotdo-" + f.env, Version: v, Status: store.StatusLive,
		})
	}
	slices.SortFunc(all, func(a, b store.Deployment) int { return strings.Compare(a.Service, b.Service) })
	// A superseded row and another environment's row must be ignored.
	all = append(all,
		store.Deployment{Service: "gateway", Environment: f.env, Version: 99, Status: store.StatusSuperseded},
		store.Deployment{Service: "gateway", Environment: "elsewhere", Version: 98, Status: store.StatusLive})
	start := 0
	if filter.PageToken != "" {
		start, _ = strconv.Atoi(filter.PageToken)
	}
	end := min(start+f.pageSize, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[start:end], next, nil
}

// newDispatcher returns a dispatcher over src with the live versions
// loaded.
func newDispatcher(t testing.TB, cfg dispatcher.Config, src dispatcher.Deployments) *dispatcher.Dispatcher {
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
