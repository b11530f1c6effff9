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

// mac returns the link of ev: its MAC under the store's audit key.
func (e *Engine) mac(ev store.AuditEvent) string { return store.AuditMAC(e.opts.AuditKey, ev) }

// AppendAudit implements store.Audit.
func (e *Engine) AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error) {
	ev, err := ev.Normalize(e.now())
	if err != nil {
		return store.AuditEvent{}, err
	}
	var out store.AuditEvent
	err = e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		out, err = e.appendAuditTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("append audit event %q: %w", ev.Action, err)
	}
	return out, nil
}

// appendAuditTx appends the normalized event ev in tx. Other writes of tx
// (a key it stores) commit with their event or not at all.
func (e *Engine) appendAuditTx(ctx context.Context, tx Queryer, ev store.AuditEvent) (store.AuditEvent, error) {
	// Advancing the chain head row locks it until commit: appenders in
	// every process queue here, so each event links to the one before it
	// and seq has no gaps. RETURNING yields the new seq and the hash of
	// the previous event (hash is not changed by this statement).
	if err := tx.QueryRow(ctx, `UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`).
		Scan(&ev.Seq, &ev.PrevHash); err != nil {
		return ev, fmt.Errorf("advance audit chain head: %w", err)
	}
	ev.Hash = e.mac(ev)
	if _, err := tx.Exec(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Seq, micros(ev.Time), ev.Actor, ev.ActorName, ev.Action, ev.Resource, ev.Outcome, mapJSON(ev.Detail),
		ev.RequestID, ev.TraceID, ev.PrevHash, ev.Hash); err != nil {
		return ev, fmt.Errorf("insert audit event: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_head SET hash = ? WHERE id = 1`, ev.Hash); err != nil {
		return ev, fmt.Errorf("update audit chain head: %w", err)
	}
	return ev, nil
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

// AuditHead implements store.Audit.
func (e *Engine) AuditHead(ctx context.Context) (store.AuditHead, error) {
	h := store.AuditHead{Keyed: len(e.opts.AuditKey) > 0}
	if err := e.d.Reader().QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash); err != nil {
		return store.AuditHead{}, fmt.Errorf("read audit chain head: %w", err)
	}
	return h, nil
}

// VerifyAudit implements store.Audit. It reads the chain head, walks the
// events up to it in batches of Options.VerifyBatchSize, recomputing every
// MAC and link, checks that no event exists beyond the head and, given an
// exported head, that the chain still holds it. Memory stays bounded by one
// batch whatever the length of the chain.
func (e *Engine) VerifyAudit(ctx context.Context, want *store.AuditHead) (store.VerifyResult, error) {
	res, err := e.verifyAudit(ctx, e.d.Reader(), e.opts.AuditKey, want)
	res.Keyed = len(e.opts.AuditKey) > 0
	return res, err
}

// verifyAudit verifies the whole chain read through q with key.
func (e *Engine) verifyAudit(ctx context.Context, q Queryer, key []byte, want *store.AuditHead) (store.VerifyResult, error) {
	res, _, err := e.walkAudit(ctx, q, key, want, genesis)
	return res, err
}

// checkpoint is where a walk along the chain starts: after event seq,
// whose MAC is hash.
type checkpoint struct {
	seq  int64
	hash string
}

// genesis is the start of a walk from event 1.
var genesis = checkpoint{hash: store.AuditGenesisHash}

// walkAudit verifies the chain read through q with key from the verified
// checkpoint from (genesis for the whole chain) to the head, and returns
// the head it verified.
func (e *Engine) walkAudit(ctx context.Context, q Queryer, key []byte, want *store.AuditHead, from checkpoint) (store.VerifyResult, checkpoint, error) {
	var head checkpoint
	if err := q.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.seq, &head.hash); err != nil {
		return store.VerifyResult{}, head, fmt.Errorf("read audit chain head: %w", err)
	}
	headSeq, headHash := head.seq, head.hash
	res := store.VerifyResult{}
	broken := func(seq int64, format string, args ...any) (store.VerifyResult, checkpoint, error) {
		res.FirstBrokenSeq, res.Reason = seq, fmt.Sprintf(format, args...)
		return res, head, nil
	}
	w := walk{key: key, prev: from.hash, next: from.seq + 1}
	if want != nil {
		w.want, w.hash = want.Seq, want.Hash
		w.found = want.Seq == 0 && want.Hash == store.AuditGenesisHash
	}
	if from.seq > 0 {
		if from.seq > headSeq {
			return broken(headSeq+1, "the chain ends at event %d, before the verified checkpoint at event %d: events were deleted and the head moved back", headSeq, from.seq)
		}
		// The checkpoint's event must still be the one verified, and the
		// exported head, when the checkpoint covers it, must still be in
		// the chain.
		checks := []checkpoint{from}
		if want != nil && want.Seq > 0 && want.Seq < from.seq {
			checks = append(checks, checkpoint{seq: want.Seq, hash: want.Hash})
		}
		for _, c := range checks {
			ev, reason, err := e.readAuditEvent(ctx, q, key, c.seq)
			if err != nil {
				return res, head, err
			}
			if reason == "" && ev.Hash != c.hash {
				reason = fmt.Sprintf("event %d does not match the hash it had when it was verified or exported", c.seq)
			}
			if reason != "" {
				return broken(c.seq, "%s", reason)
			}
			res.Checked++
			if c.seq == w.want {
				w.found = ev.Hash == w.hash
			}
		}
	}
	for w.next <= headSeq {
		rows, err := q.Query(ctx, `SELECT `+auditCols+` FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`,
			w.next, headSeq, e.opts.VerifyBatchSize)
		if err != nil {
			return res, head, fmt.Errorf("read audit events from %d: %w", w.next, err)
		}
		n, brokenSeq, reason, err := w.batch(rows)
		rows.Close()
		res.Checked += n
		if err != nil {
			return res, head, fmt.Errorf("read audit events from %d: %w", w.next, err)
		}
		if brokenSeq != 0 {
			return broken(brokenSeq, "%s", reason)
		}
		if n == 0 {
			break
		}
	}
	if w.next <= headSeq {
		return broken(w.next, "event %d is missing (the chain head is at %d)", w.next, headSeq)
	}
	if w.prev != headHash {
		res.Checked-- // the last event is the one that does not match
		return broken(headSeq, "event %d does not match the chain head hash", headSeq)
	}
	// Events past the head were not written by AppendAudit. Read the max
	// before re-reading the head: a concurrent append commits both together.
	var maxSeq *int64
	if err := q.QueryRow(ctx, `SELECT MAX(seq) FROM audit_events`).Scan(&maxSeq); err != nil {
		return res, head, fmt.Errorf("read last audit event: %w", err)
	}
	var head2 int64
	if err := q.QueryRow(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&head2); err != nil {
		return res, head, fmt.Errorf("read audit chain head: %w", err)
	}
	if head2 < headSeq {
		return broken(head2+1, "the chain head moved back from %d to %d", headSeq, head2)
	}
	if maxSeq != nil && *maxSeq > head2 {
		return broken(head2+1, "events exist beyond the chain head (%d > %d)", *maxSeq, head2)
	}
	if want != nil {
		switch {
		case want.Seq > headSeq:
			return broken(headSeq+1, "the chain ends at event %d, before the exported head %d: events were deleted and the head moved back", headSeq, want.Seq)
		case !w.found:
			return broken(want.Seq, "event %d does not match the exported head: the chain was rewritten since it was exported", want.Seq)
		}
	}
	res.OK = true
	return res, head, nil
}

// readAuditEvent reads event seq and checks its MAC under key. A missing,
// undecodable or altered event is reported as a reason, not an error.
func (e *Engine) readAuditEvent(ctx context.Context, q Queryer, key []byte, seq int64) (store.AuditEvent, string, error) {
	ev, err := scanAudit(q.QueryRow(ctx, `SELECT `+auditCols+` FROM audit_events WHERE seq = ?`, seq))
	switch {
	case errors.Is(err, ErrNoRows):
		return ev, fmt.Sprintf("event %d is missing", seq), nil
	case errors.Is(err, errkind.Corrupt):
		return ev, fmt.Sprintf("event %d cannot be decoded: %v", seq, err), nil
	case err != nil:
		return ev, "", fmt.Errorf("read audit event %d: %w", seq, err)
	case store.AuditMAC(key, ev) != ev.Hash:
		return ev, fmt.Sprintf("event %d does not match its hash (content changed)", seq), nil
	}
	return ev, "", nil
}

// walk is the state of a walk along the chain: the hash of the last good
// event, the seq expected next, and the exported head looked for.
type walk struct {
	key   []byte
	prev  string
	next  int64
	want  int64 // seq of the exported head, 0 for none
	hash  string
	found bool
}

// batch checks the rows of one batch, advancing the walk. It returns how
// many events it checked and the first broken one, if any.
func (w *walk) batch(rows Rows) (checked, brokenSeq int64, reason string, err error) {
	for rows.Next() {
		ev, err := scanAudit(rows)
		if errors.Is(err, errkind.Corrupt) {
			return checked, w.next, fmt.Sprintf("event %d cannot be decoded: %v", w.next, err), nil
		}
		if err != nil {
			return checked, 0, "", err
		}
		switch {
		case ev.Seq != w.next:
			return checked, w.next, fmt.Sprintf("event %d is missing (found %d next)", w.next, ev.Seq), nil
		case ev.PrevHash != w.prev:
			return checked, ev.Seq, fmt.Sprintf("event %d does not link to the hash of event %d", ev.Seq, ev.Seq-1), nil
		case store.AuditMAC(w.key, ev) != ev.Hash:
			if len(w.key) > 0 && store.HashAuditEvent(ev) == ev.Hash {
				return checked, ev.Seq, fmt.Sprintf("event %d is linked with plain SHA-256, not with the audit key: a log of an earlier version that was never migrated, or one rewritten without the key", ev.Seq), nil
			}
			return checked, ev.Seq, fmt.Sprintf("event %d does not match its hash (content changed)", ev.Seq), nil
		}
		if ev.Seq == w.want {
			w.found = ev.Hash == w.hash
		}
		w.prev, w.next = ev.Hash, w.next+1
		checked++
	}
	return checked, 0, "", rows.Err()
}
