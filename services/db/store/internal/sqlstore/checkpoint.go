package sqlstore

import (
	"context"
	"crypto/hmac"
	"fmt"

	"github.com/dot-do/platform/services/db/store"
)

var _ store.AuditCheckpointer = (*Engine)(nil)

// VerifyAuditFrom implements store.AuditCheckpointer. Checkpoints need an
// audit key: without one the walk starts at event 1 and nothing is saved.
func (e *Engine) VerifyAuditFrom(ctx context.Context, opts store.AuditVerifyOptions) (store.VerifyResult, error) {
	key := e.opts.AuditKey
	keyed := len(key) > 0
	q := e.d.Reader()
	from := genesis
	if keyed && opts.FromCheckpoint {
		var err error
		if from, err = e.newestCheckpoint(ctx, q, key); err != nil {
			return store.VerifyResult{Keyed: keyed}, err
		}
	}
	res, head, err := e.walkAudit(ctx, q, key, opts.Head, from)
	res.Keyed, res.FromSeq = keyed, from.seq
	if err != nil || !res.OK || !keyed || !opts.SaveCheckpoint || head.seq <= from.seq {
		return res, err
	}
	return res, e.saveCheckpoint(ctx, key, head)
}

// newestCheckpoint returns the checkpoint of highest seq whose MAC holds
// under key, or genesis. Rows whose MAC does not hold (written by someone
// without the key, or under an earlier key) are skipped.
func (e *Engine) newestCheckpoint(ctx context.Context, q Queryer, key []byte) (checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT seq, hash, mac FROM audit_checkpoints ORDER BY seq DESC`)
	if err != nil {
		return genesis, fmt.Errorf("read audit checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c checkpoint
		var mac string
		if err := rows.Scan(&c.seq, &c.hash, &mac); err != nil {
			return genesis, fmt.Errorf("read audit checkpoints: %w", err)
		}
		if c.seq > 0 && hmac.Equal([]byte(mac), []byte(store.AuditCheckpointMAC(key, c.seq, c.hash))) {
			return c, nil
		}
	}
	if err := rows.Err(); err != nil {
		return genesis, fmt.Errorf("read audit checkpoints: %w", err)
	}
	return genesis, nil
}

// saveCheckpoint records the verified head c and drops the checkpoints
// before it, which a verification would never start from again.
func (e *Engine) saveCheckpoint(ctx context.Context, key []byte, c checkpoint) error {
	err := e.d.InTx(ctx, func(tx Queryer) error {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, mac, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING`,
			c.seq, c.hash, store.AuditCheckpointMAC(key, c.seq, c.hash), micros(e.now())); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM audit_checkpoints WHERE seq < ?`, c.seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("save audit checkpoint at event %d: %w", c.seq, err)
	}
	return nil
}
