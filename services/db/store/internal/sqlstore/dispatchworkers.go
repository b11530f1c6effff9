package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

const dispatchWorkerCols = `id, environment, version, status, kind, restored_version, route_table_version, script_name,
	script_sha256, compatibility_date, routes, crons, actor_key_id, actor_name, created_at, finished_at, error_message`

// interruptedError is the error recorded on a dispatch Worker deployment
// left pending when the next one begins.
const interruptedError = "interrupted: the deploy stopped before it recorded an outcome; a later deploy uploaded the Worker again"

func scanDispatchWorker(r interface{ Scan(...any) error }) (store.DispatchWorkerDeployment, error) {
	var (
		d                    store.DispatchWorkerDeployment
		status, kind, routes string
		crons                string
		createdAt            int64
		finishedAt           *int64
	)
	if err := r.Scan(&d.ID, &d.Environment, &d.Version, &status, &kind, &d.RestoredVersion, &d.RouteTableVersion, &d.ScriptName,
		&d.ScriptSHA256, &d.CompatibilityDate, &routes, &crons, &d.ActorKeyID, &d.ActorName, &createdAt, &finishedAt, &d.Error); err != nil {
		return d, err
	}
	d.Status, d.Kind = store.Status(status), store.Kind(kind)
	d.CreatedAt, d.FinishedAt = fromMicros(createdAt), fromNullMicros(finishedAt)
	var err error
	if d.Routes, err = unmarshalStrings(routes, "dispatch worker deployment "+d.ID+" routes"); err != nil {
		return d, err
	}
	d.Crons, err = unmarshalCrons(crons, "dispatch worker deployment "+d.ID+" crons")
	return d, err
}

// cronJSON is a store.CronTrigger in the crons column.
type cronJSON struct {
	Cron    string   `json:"cron"`
	Workers []string `json:"workers"`
}

func unmarshalCrons(s, what string) ([]store.CronTrigger, error) {
	var v []cronJSON
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", what, err, errkind.Corrupt)
	}
	if len(v) == 0 {
		return nil, nil
	}
	out := make([]store.CronTrigger, len(v))
	for i, c := range v {
		out[i] = store.CronTrigger(c)
	}
	return out, nil
}

func cronsJSON(v []store.CronTrigger) string {
	out := make([]cronJSON, len(v))
	for i, c := range v {
		out[i] = cronJSON(c)
	}
	return marshalJSON(out)
}

func (e *Engine) queryDispatchWorker(ctx context.Context, q Queryer, what, where string, args ...any) (store.DispatchWorkerDeployment, error) {
	d, err := scanDispatchWorker(q.QueryRow(ctx, `SELECT `+dispatchWorkerCols+` FROM dispatch_worker_deployments WHERE `+where, args...))
	if errors.Is(err, ErrNoRows) {
		return d, fmt.Errorf("%s: %w", what, errkind.NotFound)
	}
	if err != nil {
		return d, fmt.Errorf("%s: %w", what, err)
	}
	return d, nil
}

// BeginDispatchWorkerDeployment implements store.DispatchWorkers.
func (e *Engine) BeginDispatchWorkerDeployment(ctx context.Context, nd store.NewDispatchWorkerDeployment) (store.DispatchWorkerDeployment, error) {
	nd, err := nd.Normalize()
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	var out store.DispatchWorkerDeployment
	err = e.d.InTx(ctx, func(tx Queryer) error {
		if err := e.d.LockTx(ctx, tx, "dispatch_workers/"+nd.Environment); err != nil {
			return fmt.Errorf("lock the dispatch worker of %s: %w", nd.Environment, err)
		}
		now := e.now()
		if nd.Kind == store.KindRollback {
			target, err := e.queryDispatchWorker(ctx, tx,
				fmt.Sprintf("rollback target: version %d of the dispatch worker of %q", nd.RestoredVersion, nd.Environment),
				`environment = ? AND version = ?`, nd.Environment, nd.RestoredVersion)
			if err != nil {
				return err
			}
			if target.Status != store.StatusLive && target.Status != store.StatusSuperseded {
				return fmt.Errorf("rollback target %s (version %d) is %s, it never went live: %w", target.ID, target.Version, target.Status, errkind.Precondition)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE dispatch_worker_deployments SET status = 'failed', finished_at = ?, error_message = ?
WHERE environment = ? AND status = 'pending'`, micros(now), interruptedError, nd.Environment); err != nil {
			return fmt.Errorf("fail interrupted deployments: %w", err)
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM dispatch_worker_deployments WHERE environment = ?`,
			nd.Environment).Scan(&last); err != nil {
			return fmt.Errorf("read the last version: %w", err)
		}
		out = store.DispatchWorkerDeployment{
			ID: store.NewID("dwd", now), Environment: nd.Environment, Version: last + 1, Status: store.StatusPending,
			Kind: nd.Kind, RestoredVersion: nd.RestoredVersion, RouteTableVersion: nd.RouteTableVersion,
			ScriptName: nd.ScriptName, ScriptSHA256: nd.ScriptSHA256, CompatibilityDate: nd.CompatibilityDate,
			Routes: nd.Routes, Crons: nd.Crons, ActorKeyID: nd.ActorKeyID, ActorName: nd.ActorName, CreatedAt: now,
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dispatch_worker_deployments (id, environment, version, status, kind,
	restored_version, route_table_version, script_name, script_sha256, compatibility_date, routes, crons, actor_key_id, actor_name, created_at)
VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			out.ID, out.Environment, out.Version, string(out.Kind), out.RestoredVersion, out.RouteTableVersion, out.ScriptName,
			out.ScriptSHA256, out.CompatibilityDate, stringsJSON(out.Routes), cronsJSON(out.Crons), out.ActorKeyID, out.ActorName, micros(now)); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("begin a dispatch worker deployment of %s: %w", nd.Environment, err)
	}
	if len(out.Routes) == 0 {
		out.Routes = nil
	}
	if len(out.Crons) == 0 {
		out.Crons = nil
	}
	return out, nil
}

// CompleteDispatchWorkerDeployment implements store.DispatchWorkers.
func (e *Engine) CompleteDispatchWorkerDeployment(ctx context.Context, id string, o store.Outcome) (store.DispatchWorkerDeployment, error) {
	o, err := o.Normalize()
	if err != nil {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("complete dispatch worker deployment %q: %w", id, err)
	}
	var out store.DispatchWorkerDeployment
	err = e.d.InTx(ctx, func(tx Queryer) error {
		what := fmt.Sprintf("dispatch worker deployment %q", id)
		d, err := e.queryDispatchWorker(ctx, tx, what, `id = ?`, id)
		if err != nil {
			return err
		}
		if err := e.d.LockTx(ctx, tx, "dispatch_workers/"+d.Environment); err != nil {
			return fmt.Errorf("lock the dispatch worker of %s: %w", d.Environment, err)
		}
		if d, err = e.queryDispatchWorker(ctx, tx, what, `id = ?`+e.dialect.ForUpdate, id); err != nil {
			return err
		}
		if d.Status != store.StatusPending {
			return fmt.Errorf("dispatch worker deployment %s is %s, only a pending one can become %s: %w", id, d.Status, o.Status, errkind.Precondition)
		}
		if o.Status == store.StatusLive {
			if _, err := tx.Exec(ctx, `UPDATE dispatch_worker_deployments SET status = 'superseded' WHERE environment = ? AND status = 'live'`,
				d.Environment); err != nil {
				return fmt.Errorf("supersede the live deployment: %w", err)
			}
		}
		now := e.now()
		if _, err := tx.Exec(ctx, `UPDATE dispatch_worker_deployments SET status = ?, finished_at = ?, error_message = ? WHERE id = ?`,
			string(o.Status), micros(now), o.Error, id); err != nil {
			return fmt.Errorf("mark %s: %w", o.Status, err)
		}
		d.Status, d.FinishedAt, d.Error = o.Status, now, o.Error
		out = d
		return nil
	})
	if err != nil {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("complete dispatch worker deployment: %w", err)
	}
	return out, nil
}

// GetDispatchWorkerDeployment implements store.DispatchWorkers.
func (e *Engine) GetDispatchWorkerDeployment(ctx context.Context, environment string, version int64) (store.DispatchWorkerDeployment, error) {
	return e.queryDispatchWorker(ctx, e.d.Reader(),
		fmt.Sprintf("version %d of the dispatch worker of environment %q", version, environment),
		`environment = ? AND version = ?`, environment, version)
}

// ListDispatchWorkerDeployments implements store.DispatchWorkers.
func (e *Engine) ListDispatchWorkerDeployments(ctx context.Context, f store.DispatchWorkerFilter) ([]store.DispatchWorkerDeployment, string, error) {
	return listVersions(ctx, e, versionList[store.DispatchWorkerDeployment]{
		what: "dispatch worker deployments", table: "dispatch_worker_deployments", cols: dispatchWorkerCols, token: tokenDispatchWorkers,
		scan: scanDispatchWorker, version: func(d store.DispatchWorkerDeployment) int64 { return d.Version },
	}, f.Environment, f.PageToken, f.PageSize)
}
