package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/db/store"
)

// Source is where the dispatcher learns its environment's routing state:
// the live deployments and the routing table, pushed as they change. The
// db service's client, remote.Store, satisfies it (DBService's
// WatchEnvironment).
type Source interface {
	// WatchEnvironment calls fn with a snapshot of environment's state,
	// then with each change, until ctx is done, fn returns an error or the
	// watch fails; it returns why it stopped. A snapshot may come again at
	// any time and replaces everything before it.
	WatchEnvironment(ctx context.Context, environment string, fn func(store.WatchEvent) error) error
}

// LiveVersion is the live version of one worker.
type LiveVersion struct {
	// Version is the live version number.
	Version int64
	// Namespace is the dispatch namespace the deployment went to.
	Namespace string
	// DeploymentID is the id of the live deployment.
	DeploymentID string
}

// state is one snapshot of what the dispatcher routes with. It is never
// modified once published.
type state struct {
	router       *routing.Router
	tableVersion int64
	workers      liveSet
	loaded       time.Time
}

// Ready reports whether the routing state has been loaded at least once.
func (d *Dispatcher) Ready() bool { return d.state.Load() != nil }

// LiveVersions returns a copy of the live versions the dispatcher routes
// with, by worker, and when the state last changed (zero before the first
// load).
func (d *Dispatcher) LiveVersions() (map[string]LiveVersion, time.Time) {
	s := d.state.Load()
	if s == nil {
		return map[string]LiveVersion{}, time.Time{}
	}
	return s.workers.all(), s.loaded
}

// Table returns the routing table the dispatcher routes with and its
// version (0 for the seed table, used while none is stored, and before the
// first load).
func (d *Dispatcher) Table() (routing.Table, int64) {
	s := d.state.Load()
	if s == nil {
		return seedRouter.Table(), 0
	}
	return s.router.Table(), s.tableVersion
}

// Run watches the environment's routing state until ctx is done, and
// returns nil: each snapshot and change the Source pushes is applied at
// once. When the watch fails, the last state keeps serving, the failure is
// logged (at most once per LogInterval) and counted (MetricRefreshErrors),
// and Run watches again after a backoff (from 50 ms, doubling up to
// WatchBackoff); the new watch starts with a snapshot, so nothing missed
// meanwhile is lost. Run one Run per Dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	backoff := minWatchBackoff
	for {
		var applied bool
		err := d.src.WatchEnvironment(ctx, d.cfg.Environment, func(ev store.WatchEvent) error {
			d.apply(ev)
			if ev.Snapshot && !applied {
				applied = true
				d.watchLog.recovered(ctx, "dispatcher: watching the routing state again")
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		if applied {
			backoff = minWatchBackoff
		}
		d.metrics.refreshErrors.Add(ctx, 1)
		msg := "dispatcher: the watch of the routing state failed; serving the last state"
		if err == nil {
			err = errors.New("the watch ended")
		}
		d.watchLog.failure(ctx, msg, "err", err.Error(), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.cfg.WatchBackoff)
	}
}

// minWatchBackoff is the first wait before watching again.
const minWatchBackoff = 50 * time.Millisecond

// errLoaded ends the watch of Refresh once its snapshot is applied.
var errLoaded = errors.New("loaded")

// Refresh reads the environment's whole routing state once (a watch's
// snapshot) and applies it. Run keeps the state current by itself; Refresh
// suits a caller that wants the state loaded before it goes on (tests,
// benchmarks). It is safe to call concurrently with requests and with Run.
func (d *Dispatcher) Refresh(ctx context.Context) error {
	err := d.src.WatchEnvironment(ctx, d.cfg.Environment, func(ev store.WatchEvent) error {
		d.apply(ev)
		if ev.Snapshot {
			return errLoaded
		}
		return nil
	})
	if errors.Is(err, errLoaded) {
		return nil
	}
	d.metrics.refreshErrors.Add(ctx, 1)
	if err == nil {
		err = errors.New("the watch ended before its snapshot")
	}
	return fmt.Errorf("dispatcher: read the routing state of %s: %w", d.cfg.Environment, err)
}

// apply makes ev part of the state requests are routed with. Applies are
// serialized, so two watches (Run and Refresh) cannot interleave a state.
// A change costs what it changes, not what the state holds: the new state
// shares the old one's router and every shard of live versions that the
// change leaves alone (see liveSet), and only the changed workers are
// logged. A snapshot is read whole.
func (d *Dispatcher) apply(ev store.WatchEvent) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	old := d.state.Load()
	next := &state{loaded: time.Now()}
	var edit liveEdit
	switch {
	case ev.Snapshot:
		next.router, next.tableVersion = seedRouter, 0
		for i := range edit.owned {
			edit.set.shards[i], edit.owned[i] = make(map[string]LiveVersion, len(ev.Live)/liveShards), true
		}
	case old == nil:
		return // a change before any snapshot: the snapshot will have it
	default:
		next.router, next.tableVersion = old.router, old.tableVersion
		edit.set = old.workers
	}
	var changed []string
	for _, dep := range ev.Live {
		if d.addLive(&edit, dep) {
			changed = append(changed, dep.Service)
		}
	}
	next.workers = edit.set
	if rt := ev.RouteTable; rt != nil && (ev.Snapshot || rt.Version >= next.tableVersion) {
		if r, err := routing.Compile(rt.Table); err != nil {
			d.cfg.Logger.Error("dispatcher: ignoring a routing table that does not validate; routing with the one before",
				"version", rt.Version, "err", err.Error())
		} else {
			next.router, next.tableVersion = r, rt.Version
		}
	}
	d.state.Store(next)
	d.logChanges(old, next, ev.Snapshot, changed)
	if old == nil || old.router != next.router {
		var added []string
		for _, w := range next.router.Table().Workers {
			if old == nil || !old.router.Allowed(w) {
				added = append(added, w)
			}
		}
		d.metrics.initSeries(context.Background(), added)
		if old != nil {
			var removed []string
			for _, w := range old.router.Table().Workers {
				if !next.router.Allowed(w) {
					removed = append(removed, w)
				}
			}
			d.metrics.forget(removed)
		}
	}
}

// addLive records dep in edit if it is a usable live deployment of the
// environment, and reports whether it did. Of two live versions of one
// worker the higher wins: versions only grow (a rollback is a new
// version), so an older one is stale.
func (d *Dispatcher) addLive(edit *liveEdit, dep store.Deployment) bool {
	if dep.Status != store.StatusLive || dep.Environment != d.cfg.Environment || dep.Version <= 0 {
		return false
	}
	ns := dep.Namespace
	if ns == "" {
		ns = d.cfg.Namespace
	}
	if !names.ValidScript(dep.Service) || !names.ValidScript(ns) {
		d.cfg.Logger.Warn("dispatcher: ignoring a live deployment whose names the runtime cannot serve",
			"service", dep.Service, "namespace", ns, "deployment", dep.ID)
		return false
	}
	if cur, ok := edit.set.get(dep.Service); ok && cur.Version >= dep.Version {
		return false
	}
	edit.put(dep.Service, LiveVersion{Version: dep.Version, Namespace: ns, DeploymentID: dep.ID})
	return true
}

// logChanges logs what changed between old and next: the routing table
// version, and each worker whose live version changed. After a snapshot
// every worker is compared; after a change, only the changed ones (a
// change never removes a worker).
func (d *Dispatcher) logChanges(old, next *state, snapshot bool, changed []string) {
	if old == nil {
		d.cfg.Logger.Info("dispatcher: routing state loaded", "environment", d.cfg.Environment,
			"workers", next.workers.len(), "table_version", next.tableVersion)
		return
	}
	if old.tableVersion != next.tableVersion {
		d.cfg.Logger.Info("dispatcher: routing table changed", "version", next.tableVersion, "previous", old.tableVersion)
	}
	if snapshot {
		before, after := old.workers.all(), next.workers.all()
		changed = slices.Sorted(maps.Keys(after))
		for w, prev := range before {
			if _, ok := after[w]; !ok {
				d.cfg.Logger.Info("dispatcher: worker no longer live", "worker", w, "previous", prev.Version)
			}
		}
	}
	for _, w := range changed {
		now, _ := next.workers.get(w)
		prev, _ := old.workers.get(w)
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
