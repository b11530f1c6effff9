package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

const auditCols = `seq, occurred_at, actor, actor_name, action, resource, outcome, detail, request_id, trace_id, prev_hash, hash`

// scanAudit reads one audit row. A detail column that is not a JSON object
// of strings is reported as errkind.Corrupt.
func scanAudit(r interface{ Scan(...any) error }) (store.AuditEvent, error) {
	var (
		ev     store.AuditEvent
		at     int64
		detail string
	)
	if err := r.Scan(&ev.Seq, &at, &ev.Actor, &ev.ActorName, &ev.Action, &ev.Resource, &ev.Outcome, &detail,
		&ev.RequestID, &ev.TraceID, &ev.PrevHash, &ev.Hash); err != nil {
		return ev, err
	}
	ev.Time = fromMicros(at)
	var err error
	ev.Detail, err = unmarshalMap(detail, fmt.Sprintf("audit event %d detail", ev.Seq))
	return ev, err
}

// AppendAudit implements store.Audit.
func (e *Engine) AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error) {
	ev, err := ev.Normalize(e.now())
	if err != nil {
		return store.AuditEvent{}, err
	}
	var out store.AuditEvent
	err = e.d.InTx(ctx, func(tx Queryer) error {
		ev := ev
		// Advancing the chain head row locks it until commit: appenders in
		// every process queue here, so each event links to the one before it
		// and seq has no gaps. RETURNING yields the new seq and the hash of
		// the previous event (hash is not changed by this statement).
		if err := tx.QueryRow(ctx, `UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`).
			Scan(&ev.Seq, &ev.PrevHash); err != nil {
			return fmt.Errorf("advance audit chain head: %w", err)
		}
		ev.Hash = store.HashAuditEvent(ev)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ev.Seq, micros(ev.Time), ev.Actor, ev.ActorName, ev.Action, ev.Resource, ev.Outcome, mapJSON(ev.Detail),
			ev.RequestID, ev.TraceID, ev.PrevHash, ev.Hash); err != nil {
			return fmt.Errorf("insert audit event: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET hash = ? WHERE id = 1`, ev.Hash); err != nil {
			return fmt.Errorf("update audit chain head: %w", err)
		}
		out = ev
		return nil
	})
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("append audit event %q: %w", ev.Action, err)
	}
	return out, nil
}

// ListAudit implements store.Audit.
func (e *Engine) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, string, error) {
	since, until := store.Timestamp(f.Since), store.Timestamp(f.Until)
	fp := fingerprint(f.Actor, f.Action, f.Resource, fmt.Sprint(nullMicros(since)), fmt.Sprint(nullMicros(until)))
	after, err := decodeToken(f.PageToken, tokenAudit, fp)
	if err != nil {
		return nil, "", err
	}
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"action", f.Action}, {"resource", f.Resource}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if !since.IsZero() {
		where, args = append(where, "occurred_at >= ?"), append(args, micros(since))
	}
	if !until.IsZero() {
		where, args = append(where, "occurred_at < ?"), append(args, micros(until))
	}
	if after > 0 {
		where, args = append(where, "seq < ?"), append(args, after)
	}
	q := `SELECT ` + auditCols + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	size := store.PageSize(f.PageSize)
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, size+1)
	rows, err := e.d.Reader().Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var evs []store.AuditEvent
	for rows.Next() {
		ev, err := scanAudit(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list audit events: %w", err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	if len(evs) <= size {
		return evs, "", nil
	}
	return evs[:size], encodeToken(tokenAudit, fp, evs[size-1].Seq), nil
}

// VerifyAudit implements store.Audit. It reads the chain head, walks the
// events up to it in batches of Options.VerifyBatchSize, recomputing every
// hash and link, and finally checks that no event exists beyond the head.
func (e *Engine) VerifyAudit(ctx context.Context) (store.VerifyResult, error) {
	r := e.d.Reader()
	var headSeq int64
	var headHash string
	if err := r.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
		return store.VerifyResult{}, fmt.Errorf("read audit chain head: %w", err)
	}
	res := store.VerifyResult{}
	broken := func(seq int64, format string, args ...any) (store.VerifyResult, error) {
		res.FirstBrokenSeq, res.Reason = seq, fmt.Sprintf(format, args...)
		return res, nil
	}
	prev, next := store.AuditGenesisHash, int64(1)
	for next <= headSeq {
		rows, err := r.Query(ctx, `SELECT `+auditCols+` FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`,
			next, headSeq, e.opts.VerifyBatchSize)
		if err != nil {
			return res, fmt.Errorf("read audit events from %d: %w", next, err)
		}
		n, brokenSeq, reason, err := e.verifyBatch(rows, &prev, &next)
		rows.Close()
		res.Checked += n
		if err != nil {
			return res, fmt.Errorf("read audit events from %d: %w", next, err)
		}
		if brokenSeq != 0 {
			return broken(brokenSeq, "%s", reason)
		}
		if n == 0 {
			break
		}
	}
	if next <= headSeq {
		return broken(next, "event %d is missing (the chain head is at %d)", next, headSeq)
	}
	if prev != headHash {
		res.Checked-- // the last event is the one that does not match
		return broken(headSeq, "event %d does not match the chain head hash", headSeq)
	}
	// Events past the head were not written by AppendAudit. Read the max
	// before re-reading the head: a concurrent append commits both together.
	var maxSeq *int64
	if err := r.QueryRow(ctx, `SELECT MAX(seq) FROM audit_events`).Scan(&maxSeq); err != nil {
		return res, fmt.Errorf("read last audit event: %w", err)
	}
	var head2 int64
	if err := r.QueryRow(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&head2); err != nil {
		return res, fmt.Errorf("read audit chain head: %w", err)
	}
	if head2 < headSeq {
		return broken(head2+1, "the chain head moved back from %d to %d", headSeq, head2)
	}
	if maxSeq != nil && *maxSeq > head2 {
		return broken(head2+1, "events exist beyond the chain head (%d > %d)", *maxSeq, head2)
	}
	res.OK = true
	return res, nil
}

// verifyBatch checks the rows of one batch, advancing prev (hash of the
// last good event) and next (seq expected next). It returns how many events
// it checked and the first broken one, if any.
func (e *Engine) verifyBatch(rows Rows, prev *string, next *int64) (checked, brokenSeq int64, reason string, err error) {
	for rows.Next() {
		ev, err := scanAudit(rows)
		if errors.Is(err, errkind.Corrupt) {
			return checked, *next, fmt.Sprintf("event %d cannot be decoded: %v", *next, err), nil
		}
		if err != nil {
			return checked, 0, "", err
		}
		switch {
		case ev.Seq != *next:
			return checked, *next, fmt.Sprintf("event %d is missing (found %d next)", *next, ev.Seq), nil
		case ev.PrevHash != *prev:
			return checked, ev.Seq, fmt.Sprintf("event %d does not link to the hash of event %d", ev.Seq, ev.Seq-1), nil
		case store.HashAuditEvent(ev) != ev.Hash:
			return checked, ev.Seq, fmt.Sprintf("event %d does not match its hash (content changed)", ev.Seq), nil
		}
		*prev, *next = ev.Hash, *next+1
		checked++
	}
	return checked, 0, "", rows.Err()
}
