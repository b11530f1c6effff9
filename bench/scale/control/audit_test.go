package control

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

// auditKey keys the measured chains, as a production store's is.
var auditKey = []byte("scale-audit-key-0123456789abcdef")

// resumeEvents is how many events are appended between a checkpoint and
// the verification resumed from it.
const resumeEvents = 100

// auditHarness is a store with raw access to seed its audit log in bulk.
type auditHarness interface {
	Reopen(tb testing.TB, opts ...store.Option) store.Store
	seed(ctx context.Context, n int) (store.AuditHead, error)
}

type pgAudit struct{ *pgtest.Harness }

func (h pgAudit) seed(ctx context.Context, n int) (store.AuditHead, error) {
	return h.CopyAudit(ctx, auditKey, n)
}

type sqliteAudit struct{ *sqlitetest.Harness }

func (h sqliteAudit) seed(ctx context.Context, n int) (store.AuditHead, error) {
	return h.InsertAudit(ctx, auditKey, n)
}

func testAuditCurve(t *testing.T, sz sizes) {
	tb := newTable(t, "Audit log growth (keyed chain, HMAC-SHA-256)",
		"store", "events", "seed s", "appends/s", "full verify s", "verified events/s", "RSS before MiB", "peak RSS MiB", "peak Go heap MiB", "resumed verify ms (+100 events)")
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			open := func(t *testing.T) auditHarness {
				if kind == "postgres" {
					return pgAudit{pgtest.Open(t)}
				}
				return sqliteAudit{sqlitetest.Open(t)}
			}
			// The append rate on an empty log, the reference.
			s := open(t).Reopen(t, store.WithAuditKey(auditKey))
			lat := appendN(t, s, sz.appends)
			tb.add(kind, 0, "-", rate(sz.appends, lat), "-", "-", "-", "-", "-", "-")
			for _, n := range sz.events {
				t.Run(fmt.Sprint(n), func(t *testing.T) { auditAtSize(t, tb, kind, open(t), n, sz.appends) })
			}
		})
	}
}

func auditAtSize(t *testing.T, tb *table, kind string, h auditHarness, n, appends int) {
	ctx := t.Context()
	start := time.Now()
	head, err := h.seed(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Since(start)
	if head.Seq != int64(n) {
		t.Fatalf("seeded head %+v, want seq %d", head, n)
	}
	s := h.Reopen(t, store.WithAuditKey(auditKey))
	lat := appendN(t, s, appends)

	var res store.VerifyResult
	var verr error
	var took time.Duration
	mem := measureMemory(func() {
		start := time.Now()
		res, verr = s.VerifyAudit(ctx, &head)
		took = time.Since(start)
	})
	total := int64(n + appends)
	if verr != nil || !res.OK || res.Checked != total || !res.Keyed {
		t.Fatalf("VerifyAudit = %+v, %v; want OK, keyed, %d checked", res, verr, total)
	}

	cp, ok := s.(store.AuditCheckpointer)
	if !ok {
		t.Fatalf("%T does not keep audit checkpoints", s)
	}
	save := store.AuditVerifyOptions{FromCheckpoint: true, SaveCheckpoint: true}
	if res, err := cp.VerifyAuditFrom(ctx, save); err != nil || !res.OK || res.FromSeq != 0 {
		t.Fatalf("first VerifyAuditFrom = %+v, %v; want OK from event 1", res, err)
	}
	appendN(t, s, resumeEvents)
	start = time.Now()
	res, err = cp.VerifyAuditFrom(ctx, save)
	resumed := time.Since(start)
	if err != nil || !res.OK || res.FromSeq != total || res.Checked != resumeEvents+1 {
		t.Fatalf("resumed VerifyAuditFrom = %+v, %v; want OK from checkpoint %d, %d checked", res, err, total, resumeEvents+1)
	}
	tb.add(kind, n, fmt.Sprintf("%.1f", seed.Seconds()), rate(appends, lat), fmt.Sprintf("%.2f", took.Seconds()),
		fmt.Sprintf("%.0f", float64(total)/took.Seconds()), mib(mem.rssBefore), mib(mem.rssPeak), mib(int64(mem.heapPeak>>10)), ms(resumed))
}

// appendN appends n events to s one after the other and returns their
// latencies.
func appendN(t *testing.T, s store.Store, n int) latencies {
	return timeN(t, n, func(i int) error {
		_, err := s.AppendAudit(t.Context(), store.AuditEvent{Actor: "key_scale", ActorName: "scale", Action: "deploy.begin",
			Resource: fmt.Sprintf("production/w%05d", i), Outcome: "success", Detail: map[string]string{"version": fmt.Sprint(i)}})
		return err
	})
}

// rate returns n calls of total duration sum(lat) as calls per second.
func rate(n int, lat latencies) string {
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return fmt.Sprintf("%.0f", float64(n)/sum.Seconds())
}
