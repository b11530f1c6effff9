package sqlitetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// insertBatch is how many events one INSERT statement of InsertAudit
// carries (12 columns each, under SQLite's 32766 variables).
const insertBatch = 500

// InsertAudit bulk-loads n events into the harness's empty audit log,
// linked under key as AppendAudit links them (see storetest.AuditChain),
// with multi-row INSERTs in one transaction, moves the chain head to the
// last one, checkpoints the write-ahead log and returns the head.
func (h *Harness) InsertAudit(ctx context.Context, key []byte, n int) (store.AuditHead, error) {
	head := store.AuditHead{Hash: store.AuditGenesisHash, Keyed: len(key) > 0}
	tx, err := h.raw.BeginTx(ctx, nil)
	if err != nil {
		return head, err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	args := make([]any, 0, insertBatch*12)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		rows := strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?,?),", len(args)/12), ",")
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (seq, occurred_at, actor, actor_name, action, resource, outcome, detail, request_id, trace_id, prev_hash, hash) VALUES `+rows, args...)
		args = args[:0]
		return err
	}
	for ev := range storetest.AuditChain(key, n, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		d, err := json.Marshal(ev.Detail)
		if err != nil {
			return head, err
		}
		args = append(args, ev.Seq, ev.Time.UnixMicro(), ev.Actor, ev.ActorName, ev.Action, ev.Resource, ev.Outcome, string(d),
			ev.RequestID, ev.TraceID, ev.PrevHash, ev.Hash)
		head.Seq, head.Hash = ev.Seq, ev.Hash
		if len(args) == cap(args) {
			if err := flush(); err != nil {
				return head, fmt.Errorf("insert audit events: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return head, fmt.Errorf("insert audit events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, head.Seq, head.Hash); err != nil {
		return head, err
	}
	if err := tx.Commit(); err != nil {
		return head, err
	}
	// Move the load out of the write-ahead log, which readers would
	// otherwise search through.
	_, err = h.raw.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return head, err
}

// Explain returns the plan SQLite chooses for query with args, one line
// per step of EXPLAIN QUERY PLAN.
func (h *Harness) Explain(ctx context.Context, query string, args ...any) (string, error) {
	rows, err := h.raw.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n"), rows.Err()
}
