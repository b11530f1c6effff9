package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

var _ store.AuditRekeyer = (*Engine)(nil)

// RekeyAudit implements store.AuditRekeyer.
func (e *Engine) RekeyAudit(ctx context.Context) (store.RekeyResult, error) {
	key := e.opts.AuditKey
	if len(key) == 0 {
		return store.RekeyResult{}, fmt.Errorf("rekey the audit chain: the store has no audit key: %w", errkind.Invalid)
	}
	var res store.RekeyResult
	err := e.d.InTx(ctx, func(tx Queryer) error {
		res = store.RekeyResult{}
		// Take the chain head row first: appenders wait until the chain
		// is relinked, and a second rekey (another replica) finds it done.
		var headSeq int64
		var headHash string
		if err := tx.QueryRow(ctx, `UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash`).Scan(&headSeq, &headHash); err != nil {
			return fmt.Errorf("lock audit chain head: %w", err)
		}
		now, err := e.verifyAudit(ctx, tx, key, nil)
		if err != nil {
			return err
		}
		if now.OK {
			return nil
		}
		if res.Previous, err = e.verifyAudit(ctx, tx, nil, nil); err != nil {
			return err
		}
		res.Rekeyed = true
		prev := store.AuditGenesisHash
		for after := int64(0); after < headSeq; {
			batch, err := e.readAuditBatch(ctx, tx, after, headSeq)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			for _, ev := range batch {
				ev.PrevHash = prev
				ev.Hash = e.mac(ev)
				if _, err := tx.Exec(ctx, `UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, ev.PrevHash, ev.Hash, ev.Seq); err != nil {
					return fmt.Errorf("relink audit event %d: %w", ev.Seq, err)
				}
				prev, after = ev.Hash, ev.Seq
				res.Events++
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET hash = ? WHERE id = 1`, prev); err != nil {
			return fmt.Errorf("update audit chain head: %w", err)
		}
		// Checkpoints name links of the old chain: none holds any more.
		if _, err := tx.Exec(ctx, `DELETE FROM audit_checkpoints`); err != nil {
			return fmt.Errorf("drop audit checkpoints: %w", err)
		}
		old := "verified"
		if !res.Previous.OK {
			old = fmt.Sprintf("broken at event %d: %s", res.Previous.FirstBrokenSeq, res.Previous.Reason)
		}
		ev, err := store.AuditEvent{
			Actor: "system", ActorName: "db", Action: store.ActionAuditRekey, Resource: "audit", Outcome: "success",
			Detail: map[string]string{
				"previous_head_seq":  strconv.FormatInt(headSeq, 10),
				"previous_head_hash": headHash,
				"previous_chain":     old,
				"events_relinked":    strconv.FormatInt(res.Events, 10),
				"mac":                "hmac-sha256",
			},
		}.Normalize(e.now())
		if err != nil {
			return err
		}
		_, err = e.appendAuditTx(ctx, tx, ev)
		return err
	})
	if err != nil {
		return store.RekeyResult{}, fmt.Errorf("rekey the audit chain: %w", err)
	}
	return res, nil
}

// readAuditBatch reads up to VerifyBatchSize events with after < seq <=
// upTo, in order. An event that cannot be decoded stops the rekey: its MAC
// could not be computed, and guessing its content would launder it.
func (e *Engine) readAuditBatch(ctx context.Context, q Queryer, after, upTo int64) ([]store.AuditEvent, error) {
	rows, err := q.Query(ctx, `SELECT `+auditCols+` FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
		after, upTo, e.opts.VerifyBatchSize)
	if err != nil {
		return nil, fmt.Errorf("read audit events after %d: %w", after, err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		ev, err := scanAudit(rows)
		if errors.Is(err, errkind.Corrupt) {
			return nil, fmt.Errorf("audit event after %d cannot be decoded, so it cannot be relinked; repair or remove it first: %w", after, err)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}
