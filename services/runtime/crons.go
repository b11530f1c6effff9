package runtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/cron"
	"github.com/dot-do/platform/services/runtime/cfapi"
	"github.com/dot-do/platform/services/runtime/scripts"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// scheduledTimeout bounds one run of a scheduled handler started by a cron
// trigger.
const scheduledTimeout = 15 * time.Minute

// runScheduled is the API's Scheduler: the scheduled handler of the current
// version of script, now.
func (rt *Runtime) runScheduled(ctx context.Context, namespace, script, c string) error {
	err := rt.Scheduled(ctx, namespace, script, c, time.Now())
	var se *workerd.ScheduledError
	switch {
	case errors.As(err, &se):
		return &cfapi.ScriptError{Message: se.Message}
	case errors.Is(err, workerd.ErrNotFound):
		return scripts.ErrScriptNotFound
	}
	return err
}

// cronJob is one cron trigger due at a minute.
type cronJob struct{ namespace, script, cron string }

// dueCrons returns the cron triggers of the current versions that match
// the minute of t.
func (rt *Runtime) dueCrons(t time.Time) []cronJob {
	var due []cronJob
	for _, ns := range rt.store.Namespaces() {
		list, err := rt.store.Scripts(ns.Name, func(s scripts.Script) bool { return len(s.Current.Crons) > 0 })
		if err != nil {
			continue // deleted meanwhile
		}
		for _, s := range list {
			for _, c := range s.Current.Crons {
				sched, err := cron.Parse(c)
				if err == nil && sched.Matches(t) {
					due = append(due, cronJob{ns.Name, s.Name, c})
				}
			}
		}
	}
	return due
}

// runCrons fires, at the start of every minute (UTC), the cron triggers
// of the scripts' current versions that match it, each in its own
// goroutine, until the runtime closes. A minute the runtime was not
// running for is not replayed.
func (rt *Runtime) runCrons(now func() time.Time) {
	defer close(rt.cronsDone)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		t := now()
		next := t.Truncate(time.Minute).Add(time.Minute)
		select {
		case <-rt.closing:
			return
		case <-time.After(next.Sub(t)):
		}
		for _, j := range rt.dueCrons(next) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				jctx, jcancel := context.WithTimeout(ctx, scheduledTimeout)
				defer jcancel()
				if err := rt.Scheduled(jctx, j.namespace, j.script, j.cron, next); err != nil {
					rt.log.Warn("runtime: cron trigger failed", "namespace", j.namespace, "script", j.script, "cron", j.cron, "err", err.Error())
				}
			}()
		}
	}
}
