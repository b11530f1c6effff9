package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/services/db/store"
)

// Deployments is what the dispatcher reads from the control plane: the
// deployments of its environment that are live. A store.Store (in process)
// and the db service's remote.Store (over Connect) satisfy it.
type Deployments interface {
	// ListDeployments returns one page of deployments matching f and the
	// token of the next page ("" on the last page).
	ListDeployments(ctx context.Context, f store.ListFilter) (items []store.Deployment, nextPageToken string, err error)
}

// maxRefreshPages bounds the pages one refresh reads (MaxPageSize each), so
// that a misbehaving store cannot keep a refresh going forever.
const maxRefreshPages = 200

// LiveVersion is the live version of one worker.
type LiveVersion struct {
	// Version is the live version number.
	Version int64
	// Namespace is the dispatch namespace the deployment went to.
	Namespace string
	// DeploymentID is the id of the live deployment.
	DeploymentID string
}

// table is one snapshot of the environment's live versions. It is never
// modified once published.
type table struct {
	workers map[string]LiveVersion
	loaded  time.Time
}

// Ready reports whether the live versions have been loaded at least once.
func (d *Dispatcher) Ready() bool { return d.live.Load() != nil }

// LiveVersions returns a copy of the live versions the dispatcher routes
// with, by worker, and when they were loaded (zero before the first load).
func (d *Dispatcher) LiveVersions() (map[string]LiveVersion, time.Time) {
	t := d.live.Load()
	if t == nil {
		return map[string]LiveVersion{}, time.Time{}
	}
	return maps.Clone(t.workers), t.loaded
}

// Run refreshes the live versions now and then every RefreshInterval until
// ctx is done, and returns nil. A failed refresh keeps the last table and is
// logged. Run one Run per Dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	tick := time.NewTicker(d.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			d.refreshLog.failure(ctx, "dispatcher: refreshing the live versions failed; serving the last ones", "err", err.Error())
		} else if err == nil {
			d.refreshLog.recovered(ctx, "dispatcher: refreshing the live versions works again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Refresh reads the environment's live versions once and, on success,
// makes them the ones requests are routed with. It is safe to call
// concurrently with requests; Run calls it periodically.
//
// Refreshes are serialized, so a slow one cannot replace the table of a
// later one with older versions.
func (d *Dispatcher) Refresh(ctx context.Context) error {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RefreshTimeout)
	defer cancel()
	workers := make(map[string]LiveVersion)
	filter := store.ListFilter{Environment: d.cfg.Environment, Status: store.StatusLive, PageSize: store.MaxPageSize}
	for page := 0; ; page++ {
		if page == maxRefreshPages {
			d.metrics.refreshErrors.Add(ctx, 1)
			return fmt.Errorf("dispatcher: more than %d pages of live deployments", maxRefreshPages)
		}
		items, next, err := d.src.ListDeployments(ctx, filter)
		if err != nil {
			d.metrics.refreshErrors.Add(ctx, 1)
			return fmt.Errorf("dispatcher: list live deployments of %s: %w", d.cfg.Environment, err)
		}
		for _, dep := range items {
			d.addLive(workers, dep)
		}
		if next == "" {
			break
		}
		filter.PageToken = next
	}
	old := d.live.Swap(&table{workers: workers, loaded: time.Now()})
	d.logChanges(old, workers)
	return nil
}

// addLive records dep in workers if it is a usable live deployment of the
// environment; of two live versions of one worker (a store in transition),
// the higher wins.
func (d *Dispatcher) addLive(workers map[string]LiveVersion, dep store.Deployment) {
	if dep.Status != store.StatusLive || dep.Environment != d.cfg.Environment || dep.Version <= 0 {
		return
	}
	ns := dep.Namespace
	if ns == "" {
		ns = d.cfg.Namespace
	}
	if !names.ValidScript(dep.Service) || !names.ValidScript(ns) {
		d.cfg.Logger.Warn("dispatcher: ignoring a live deployment whose names the runtime cannot serve",
			"service", dep.Service, "namespace", ns, "deployment", dep.ID)
		return
	}
	if cur, ok := workers[dep.Service]; ok && cur.Version >= dep.Version {
		return
	}
	workers[dep.Service] = LiveVersion{Version: dep.Version, Namespace: ns, DeploymentID: dep.ID}
}

// logChanges logs the workers whose live version changed between old and
// workers.
func (d *Dispatcher) logChanges(old *table, workers map[string]LiveVersion) {
	var before map[string]LiveVersion
	if old != nil {
		before = old.workers
	} else {
		d.cfg.Logger.Info("dispatcher: live versions loaded", "environment", d.cfg.Environment, "workers", len(workers))
	}
	for _, w := range slices.Sorted(maps.Keys(workers)) {
		now, prev := workers[w], before[w]
		if now == prev {
			continue
		}
		level := slog.LevelInfo
		if now.Namespace != d.cfg.Namespace {
			level = slog.LevelWarn // the deploy service and the dispatcher disagree on the namespace
		}
		d.cfg.Logger.Log(context.Background(), level, "dispatcher: live version changed", "worker", w,
			"version", now.Version, "previous", prev.Version, "namespace", now.Namespace, "deployment", now.DeploymentID)
	}
	for w, prev := range before {
		if _, ok := workers[w]; !ok {
			d.cfg.Logger.Info("dispatcher: worker no longer live", "worker", w, "previous", prev.Version)
		}
	}
}

// throttledLog logs a recurring failure at most once per interval, with
// the number of occurrences since the last line.
type throttledLog struct {
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
	failing    bool
}

// failure records one occurrence and logs it unless a line was written less
// than interval ago.
func (l *throttledLog) failure(ctx context.Context, msg string, args ...any) {
	l.mu.Lock()
	now := l.now()
	l.failing = true
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.logger.WarnContext(ctx, msg, append(args, "suppressed_since_last_log", n)...)
}

// recovered logs msg once when failures stop.
func (l *throttledLog) recovered(ctx context.Context, msg string) {
	l.mu.Lock()
	was := l.failing
	l.failing, l.last, l.suppressed = false, time.Time{}, 0
	l.mu.Unlock()
	if was {
		l.logger.InfoContext(ctx, msg)
	}
}
