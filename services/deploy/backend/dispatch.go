package backend

import (
	"context"
	"slices"
	"sync"
)

// DispatchWorkers is implemented by the backends that host an
// environment's dispatch Worker: an account-level script, bound to the
// environment's dispatch namespace, and the Workers routes that send the
// environment's hosts to it (Cloudflare). The local runtime serves a small
// stand-in of the same API, so `dotdo dispatcher deploy` can be tried
// locally; it does not run the Worker.
type DispatchWorkers interface {
	// UploadDispatchWorker uploads w as the account-level script w.Name,
	// replacing it, and sets the script's cron triggers to w.Crons (none
	// clears them). It returns an error wrapping ErrRejected when the
	// backend refuses the script.
	UploadDispatchWorker(ctx context.Context, w DispatchWorker) error
	// RouteDispatchWorker makes every pattern of patterns route to script,
	// on the zone of the pattern's host, and removes the routes to script
	// whose patterns are in previous but no longer in patterns. namespace
	// picks the credential (the environment's). A pattern whose host is on
	// no zone of the account is an error wrapping ErrRejected.
	RouteDispatchWorker(ctx context.Context, namespace, script string, patterns, previous []string) error
}

// DispatchCrons is implemented by the backends on which the environment's
// dispatch Worker fires the namespace scripts' cron triggers (Cloudflare,
// whose API has no cron triggers for namespace scripts): there a worker's
// new crons take effect once the dispatch Worker is deployed again.
type DispatchCrons interface {
	// CronsByDispatchWorker reports whether the dispatch Worker fires the
	// namespace scripts' crons.
	CronsByDispatchWorker() bool
}

// DispatchWorker is an account-level Worker that routes an environment's
// traffic to the scripts of its dispatch namespace.
type DispatchWorker struct {
	// Name is the script's name, for example "dotdo-dispatcher-production".
	Name string
	// Namespace is the dispatch namespace bound as Binding.
	Namespace string
	// Binding is the name the Worker reaches the namespace by.
	Binding string
	// MainModule is the file name of Module.
	MainModule string
	// Module is the ES module.
	Module []byte
	// CompatibilityDate is the Worker's compatibility date.
	CompatibilityDate string
	// Crons are the Worker's cron triggers (5-field, UTC): its scheduled()
	// handler fires the namespace scripts' own.
	Crons []string
}

// memDispatch is the Memory backend's account: dispatch Workers and routes.
type memDispatch struct {
	mu      sync.Mutex
	workers map[string]DispatchWorker
	routes  map[string]string // pattern -> script
	uploads int
	fail    error
	// cronsByWorker is CronsByDispatchWorker's answer.
	cronsByWorker bool
}

var _ DispatchCrons = (*Memory)(nil)

// CronsByDispatchWorker implements DispatchCrons: false unless
// SetCronsByDispatchWorker changed it.
func (m *Memory) CronsByDispatchWorker() bool {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cronsByWorker
}

// SetCronsByDispatchWorker makes the Memory backend answer v to
// CronsByDispatchWorker, as Cloudflare (true) or the local runtime
// (false) does.
func (m *Memory) SetCronsByDispatchWorker(v bool) {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cronsByWorker = v
}

var _ DispatchWorkers = (*Memory)(nil)

// UploadDispatchWorker implements DispatchWorkers.
func (m *Memory) UploadDispatchWorker(_ context.Context, w DispatchWorker) error {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if d.workers == nil {
		d.workers = map[string]DispatchWorker{}
	}
	w.Module, w.Crons = slices.Clone(w.Module), slices.Clone(w.Crons)
	d.workers[w.Name] = w
	d.uploads++
	return nil
}

// RouteDispatchWorker implements DispatchWorkers.
func (m *Memory) RouteDispatchWorker(_ context.Context, _, script string, patterns, previous []string) error {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if d.routes == nil {
		d.routes = map[string]string{}
	}
	for _, p := range previous {
		if d.routes[p] == script && !slices.Contains(patterns, p) {
			delete(d.routes, p)
		}
	}
	for _, p := range patterns {
		d.routes[p] = script
	}
	return nil
}

// DispatchWorker returns the dispatch Worker uploaded as name, and whether
// there is one.
func (m *Memory) DispatchWorker(name string) (DispatchWorker, bool) {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.workers[name]
	return w, ok
}

// Routes returns the Workers routes of the Memory account, pattern to
// script.
func (m *Memory) Routes() map[string]string {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.routes))
	for p, s := range d.routes {
		out[p] = s
	}
	return out
}

// FailDispatchWorkers makes the dispatch Worker calls fail with err until
// it is called with nil.
func (m *Memory) FailDispatchWorkers(err error) {
	d := &m.dispatch
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}
