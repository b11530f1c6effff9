package storetest

import (
	"testing"

	"github.com/dot-do/platform/services/db/store"
)

// testAuditCheckpoint checks that a verification resumes from the newest
// checkpoint whose MAC holds under the audit key, that it still catches a
// change at or after the checkpoint, a head moved back before it and an
// exported head the chain no longer holds, and that a checkpoint written
// by someone without the key is ignored.
func testAuditCheckpoint(t *testing.T, open func(*testing.T) store.Store) {
	const first, more = 10, 5
	// setup returns a keyed store holding first+more events, with a
	// checkpoint saved at event first.
	setup := func(t *testing.T) (Harness, store.AuditCheckpointer, []store.AuditEvent) {
		h := harness(t, open(t))
		s := h.Reopen(t, store.WithAuditKey(auditKey), store.WithVerifyBatchSize(3))
		cp, ok := s.(store.AuditCheckpointer)
		if !ok {
			t.Skipf("%T does not implement store.AuditCheckpointer", s)
		}
		var evs []store.AuditEvent
		for i := range first {
			evs = append(evs, appendAudit(t, s, event(i)))
		}
		r := must[store.VerifyResult](t)(cp.VerifyAuditFrom(t.Context(), store.AuditVerifyOptions{FromCheckpoint: true, SaveCheckpoint: true}))
		if !r.OK || r.FromSeq != 0 || r.Checked != first || !r.Keyed {
			t.Fatalf("first VerifyAuditFrom = %+v, want OK from event 1, %d checked", r, first)
		}
		for i := range more {
			evs = append(evs, appendAudit(t, s, event(first+i)))
		}
		return h, cp, evs
	}
	from := store.AuditVerifyOptions{FromCheckpoint: true}

	t.Run("resume", func(t *testing.T) {
		h, cp, evs := setup(t)
		// A checkpoint forged without the key, further along, is skipped.
		exec(t, h, `INSERT INTO audit_checkpoints (seq, hash, mac, created_at) VALUES (?, ?, ?, 0)`,
			first+more-1, evs[first+more-2].Hash, store.AuditCheckpointMAC([]byte("not the key"), first+more-1, evs[first+more-2].Hash))
		r := must[store.VerifyResult](t)(cp.VerifyAuditFrom(t.Context(), store.AuditVerifyOptions{FromCheckpoint: true, SaveCheckpoint: true}))
		if !r.OK || r.FromSeq != first || r.Checked != more+1 {
			t.Fatalf("VerifyAuditFrom = %+v, want OK from checkpoint %d, %d checked", r, first, more+1)
		}
		r = must[store.VerifyResult](t)(cp.VerifyAuditFrom(t.Context(), from))
		if !r.OK || r.FromSeq != first+more || r.Checked != 1 {
			t.Fatalf("VerifyAuditFrom at the head = %+v, want OK from checkpoint %d", r, first+more)
		}
		if n := must[int64](t)(h.QueryInt64(t.Context(), `SELECT COUNT(*) FROM audit_checkpoints`)); n != 1 {
			t.Errorf("%d checkpoints kept, want 1 (older ones dropped)", n)
		}
		for _, tc := range []struct {
			head store.AuditHead
			ok   bool
		}{
			{store.AuditHead{Seq: 3, Hash: evs[2].Hash}, true},
			{store.AuditHead{Seq: first + more, Hash: evs[first+more-1].Hash}, true},
			{store.AuditHead{Seq: 3, Hash: evs[3].Hash}, false},
		} {
			r := must[store.VerifyResult](t)(cp.VerifyAuditFrom(t.Context(), store.AuditVerifyOptions{Head: &tc.head, FromCheckpoint: true}))
			if r.OK != tc.ok {
				t.Errorf("VerifyAuditFrom(head %d) = %+v, want OK %v", tc.head.Seq, r, tc.ok)
			}
		}
	})

	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, h Harness, evs []store.AuditEvent)
		broken int64
	}{
		{"event after the checkpoint edited", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET outcome = 'denied' WHERE seq = ?`, first+2)
		}, first + 2},
		{"checkpoint event edited", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET outcome = 'denied' WHERE seq = ?`, first)
		}, first},
		{"head moved back before the checkpoint", func(t *testing.T, h Harness, evs []store.AuditEvent) {
			exec(t, h, `DELETE FROM audit_events WHERE seq > ?`, first-2)
			exec(t, h, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, first-2, evs[first-3].Hash)
		}, first - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, cp, evs := setup(t)
			tc.tamper(t, h, evs)
			r := must[store.VerifyResult](t)(cp.VerifyAuditFrom(t.Context(), from))
			if r.OK || r.FirstBrokenSeq != tc.broken || r.Reason == "" {
				t.Fatalf("VerifyAuditFrom after tampering = %+v, want first broken seq %d", r, tc.broken)
			}
		})
	}

	t.Run("unkeyed store keeps no checkpoint", func(t *testing.T) {
		h := harness(t, open(t))
		cp, ok := h.(store.AuditCheckpointer)
		if !ok {
			t.Skipf("%T does not implement store.AuditCheckpointer", h)
		}
		for i := range 3 {
			appendAudit(t, h, event(i))
		}
		for range 2 {
			r := must[store.VerifyResult](t)(cp.VerifyAuditFrom(t.Context(), store.AuditVerifyOptions{FromCheckpoint: true, SaveCheckpoint: true}))
			if !r.OK || r.FromSeq != 0 || r.Checked != 3 || r.Keyed {
				t.Fatalf("VerifyAuditFrom unkeyed = %+v, want OK from event 1", r)
			}
		}
		if n := must[int64](t)(h.QueryInt64(t.Context(), `SELECT COUNT(*) FROM audit_checkpoints`)); n != 0 {
			t.Errorf("%d checkpoints saved without an audit key", n)
		}
	})
}
