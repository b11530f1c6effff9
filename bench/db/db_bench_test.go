package db_test

import (
	"fmt"
	"testing"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
)

var backends = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"sqlite", func(b *testing.B) store.Store { return sqlitetest.Open(b) }},
	{"postgres", func(b *testing.B) store.Store { return pgtest.Open(b) }}, // skips when unreachable
}

func auditEvent(i int) store.AuditEvent {
	return store.AuditEvent{
		Actor: "key_bench", ActorName: "bench", Action: "deploy.begin", Resource: fmt.Sprint("prod/svc", i%8),
		Outcome: "success", Detail: map[string]string{"version": fmt.Sprint(i), "commit": "0123456789abcdef"},
		RequestID: fmt.Sprint("req-", i),
	}
}

func perSecond(b *testing.B, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchmarkAudit measures sequential AppendAudit calls (one transaction each).
func BenchmarkAudit(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if _, err := s.AppendAudit(ctx, auditEvent(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			perSecond(b, "appends/s")
		})
	}
}

// BenchmarkAuditParallel measures AppendAudit from 8 goroutines per CPU,
// all contending for the chain head.
func BenchmarkAuditParallel(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := b.Context()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.AppendAudit(ctx, auditEvent(i)); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			perSecond(b, "appends/s")
		})
	}
}

// BenchmarkVerifyAudit measures VerifyAudit over a chain of b.N events
// (appended untimed), so ns/op is the cost of verifying one event.
func BenchmarkVerifyAudit(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := b.Context()
			b.StopTimer()
			for i := range b.N {
				if _, err := s.AppendAudit(ctx, auditEvent(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			r, err := s.VerifyAudit(ctx, nil)
			if err != nil || !r.OK || r.Checked != int64(b.N) {
				b.Fatalf("VerifyAudit = %+v, %v", r, err)
			}
			b.StopTimer()
			perSecond(b, "events/s")
		})
	}
}

// BenchmarkDeploy measures BeginDeployment + CompleteDeployment(live) of one
// service, each deploy superseding the previous one.
func BenchmarkDeploy(b *testing.B) {
	sha := store.SHA256Hex([]byte("export default {}"))
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := b.Context()
			nd := store.NewDeployment{Environment: "prod", Service: "api", ScriptSHA256: sha, ScriptSize: 17,
				Metadata: map[string]string{"commit": "0123456789abcdef"}, ActorKeyID: "key_bench"}
			for b.Loop() {
				d, _, err := s.BeginDeployment(ctx, nd)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusLive}); err != nil {
					b.Fatal(err)
				}
			}
			perSecond(b, "deploys/s")
		})
	}
}
