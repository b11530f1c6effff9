package db_test

import (
	"testing"

	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

// TestVerifyAuditFromCheckpoint checks VerifyAuditLog over the wire: a
// walk that verifies a keyed chain records a checkpoint at its head, and
// from_checkpoint resumes after it.
func TestVerifyAuditFromCheckpoint(t *testing.T) {
	ctx := t.Context()
	st := sqlitetest.Open(t).Reopen(t, store.WithAuditKey([]byte("0123456789abcdef0123456789abcdef")))
	rs := remote.New(serve(t, st, nil, 0))
	appendN := func(n int) {
		for range n {
			if _, err := st.AppendAudit(ctx, store.AuditEvent{Action: "deploy.begin", Outcome: "success"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(3)
	if r, err := rs.VerifyAudit(ctx, nil); err != nil || !r.OK || r.Checked != 3 || r.FromSeq != 0 || !r.Keyed {
		t.Fatalf("VerifyAudit = %+v, %v; want OK, keyed, 3 checked from event 1", r, err)
	}
	appendN(2)
	r, err := rs.VerifyAuditFrom(ctx, store.AuditVerifyOptions{FromCheckpoint: true})
	if err != nil || !r.OK || r.FromSeq != 3 || r.Checked != 3 {
		t.Fatalf("VerifyAuditFrom = %+v, %v; want OK from the checkpoint at 3, 3 checked (it and 2 more)", r, err)
	}
}
