package pgtest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// CopyDeployments bulk-loads the synthetic history h into the harness's
// empty deployments table with COPY (a million rows in well under a
// minute), then VACUUMs and ANALYZEs it so the planner sees its real size. It calls
// sample with every deployment loaded whose index is a multiple of every
// (when sample is not nil).
func (h *Harness) CopyDeployments(ctx context.Context, hist storetest.History, every int, sample func(store.Deployment)) error {
	counters := make([][]any, 0, hist.Pairs())
	for p := range hist.Pairs() {
		if last := hist.LastVersion(p); last > 0 {
			env, svc := hist.Pair(p)
			counters = append(counters, []any{env, svc, last})
		}
	}
	if _, err := h.raw.CopyFrom(ctx, pgx.Identifier{"deployment_counters"}, []string{"environment", "service", "last_version"},
		pgx.CopyFromRows(counters)); err != nil {
		return fmt.Errorf("copy deployment counters: %w", err)
	}
	cols := []string{"id", "environment", "service", "namespace", "version", "status", "kind", "script_sha256", "script_size",
		"main_module", "compatibility_date", "tags", "metadata", "actor_key_id", "actor_name", "created_at", "finished_at", "error_message"}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == hist.Rows {
			return nil, nil
		}
		d := hist.Row(i)
		if sample != nil && every > 0 && i%every == 0 {
			sample(d)
		}
		i++
		md, err := json.Marshal(d.Metadata)
		if err != nil {
			return nil, err
		}
		var finished any
		if !d.FinishedAt.IsZero() {
			finished = d.FinishedAt.UnixMicro()
		}
		return []any{d.ID, d.Environment, d.Service, d.Namespace, d.Version, string(d.Status), string(d.Kind), d.ScriptSHA256, d.ScriptSize,
			d.MainModule, d.CompatibilityDate, "[]", string(md), d.ActorKeyID, d.ActorName, d.CreatedAt.UnixMicro(), finished, d.Error}, nil
	})
	if _, err := h.raw.CopyFrom(ctx, pgx.Identifier{"deployments"}, cols, src); err != nil {
		return fmt.Errorf("copy deployments: %w", err)
	}
	return h.settle(ctx, "deployments")
}

// CopyAudit bulk-loads n events into the harness's empty audit log, linked
// under key as AppendAudit links them (see storetest.AuditChain), with
// COPY, moves the chain head to the last one and VACUUMs and ANALYZEs the
// table. It
// returns the head.
func (h *Harness) CopyAudit(ctx context.Context, key []byte, n int) (store.AuditHead, error) {
	next, stop := iter.Pull(storetest.AuditChain(key, n, seedStart))
	defer stop()
	head := store.AuditHead{Hash: store.AuditGenesisHash, Keyed: len(key) > 0}
	src := pgx.CopyFromFunc(func() ([]any, error) {
		ev, ok := next()
		if !ok {
			return nil, nil
		}
		head.Seq, head.Hash = ev.Seq, ev.Hash
		d, err := json.Marshal(ev.Detail)
		return []any{ev.Seq, ev.Time.UnixMicro(), ev.Actor, ev.ActorName, ev.Action, ev.Resource, ev.Outcome, string(d),
			ev.RequestID, ev.TraceID, ev.PrevHash, ev.Hash}, err
	})
	cols := strings.Split("seq,occurred_at,actor,actor_name,action,resource,outcome,detail,request_id,trace_id,prev_hash,hash", ",")
	if _, err := h.raw.CopyFrom(ctx, pgx.Identifier{"audit_events"}, cols, src); err != nil {
		return head, fmt.Errorf("copy audit events: %w", err)
	}
	if _, err := h.raw.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, head.Seq, head.Hash); err != nil {
		return head, err
	}
	return head, h.settle(ctx, "audit_events")
}

// settle VACUUMs and ANALYZEs a table after a bulk load, so the planner
// sees its size and autovacuum does not start on it during a measurement,
// then flushes the load's WAL with a CHECKPOINT (when the role may; it is
// skipped otherwise), so that later commits do not queue behind it.
func (h *Harness) settle(ctx context.Context, table string) error {
	if _, err := h.raw.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
		return err
	}
	_, _ = h.raw.Exec(ctx, "CHECKPOINT") // best effort: needs pg_checkpoint or a superuser
	return nil
}

// seedStart is the time of the first event CopyAudit loads.
var seedStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Explain returns the plan PostgreSQL chooses for query (placeholders '?')
// with args, as EXPLAIN prints it.
func (h *Harness) Explain(ctx context.Context, query string, args ...any) (string, error) {
	rows, err := h.raw.Query(ctx, "EXPLAIN "+sqlstore.Rebind(query), args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}
