package storetest

import (
	"fmt"
	"iter"
	"time"

	"github.com/dot-do/platform/services/db/store"
)

// History describes a synthetic deployment history for bulk seeding (see
// pgtest.Harness.CopyDeployments): Rows deployments spread round-robin over
// every (environment, service) pair, oldest first, each pair's versions
// counting from 1. The last version of each pair is live, about 1 in 97
// earlier ones failed, about 1 in 4999 is still pending and the rest were
// superseded.
type History struct {
	Rows         int
	Environments []string
	Services     int
	// Start is the CreatedAt of row 0; rows are 1 ms apart.
	Start time.Time
}

// Pairs is the number of (environment, service) pairs.
func (h History) Pairs() int { return len(h.Environments) * h.Services }

// Pair returns the environment and service of pair p.
func (h History) Pair(p int) (env, service string) {
	return h.Environments[p%len(h.Environments)], fmt.Sprintf("svc-%04d", p/len(h.Environments))
}

// LastVersion returns the last version of pair p (0 when it has none).
func (h History) LastVersion(p int) int64 {
	if p >= h.Rows {
		return 0
	}
	return int64((h.Rows-1-p)/h.Pairs() + 1)
}

// Row returns deployment i (its ID is new at every call).
func (h History) Row(i int) store.Deployment {
	p := i % h.Pairs()
	env, svc := h.Pair(p)
	v := int64(i/h.Pairs() + 1)
	status := store.StatusSuperseded
	switch {
	case v == h.LastVersion(p):
		status = store.StatusLive
	case i%4999 == 4998:
		status = store.StatusPending
	case i%97 == 0:
		status = store.StatusFailed
	}
	at := h.Start.Add(time.Duration(i) * time.Millisecond)
	d := store.Deployment{
		ID: store.NewID("dep", at), Environment: env, Service: svc, Namespace: "dotdo-" + env, Version: v,
		Status: status, Kind: store.KindDeploy, ScriptSHA256: fmt.Sprintf("%064x", i), ScriptSize: 177152,
		MainModule: "index.js", CompatibilityDate: "2025-01-01", Metadata: map[string]string{"commit": fmt.Sprintf("%07x", i)},
		ActorKeyID: "key_seed", ActorName: "seed", CreatedAt: store.Timestamp(at),
	}
	if status != store.StatusPending {
		d.FinishedAt = d.CreatedAt.Add(time.Second)
	}
	if status == store.StatusFailed {
		d.Error = "upload failed"
	}
	return d
}

// AuditChain yields n events linked as AppendAudit links them under key
// (plain SHA-256 when key is empty), seq 1 to n, one millisecond apart from
// start, for bulk seeding an empty audit log. The last one is the head.
func AuditChain(key []byte, n int, start time.Time) iter.Seq[store.AuditEvent] {
	return func(yield func(store.AuditEvent) bool) {
		prev := store.AuditGenesisHash
		for i := range n {
			ev := event(i)
			ev.Seq, ev.Time, ev.PrevHash = int64(i+1), store.Timestamp(start.Add(time.Duration(i)*time.Millisecond)), prev
			ev.Hash = store.AuditMAC(key, ev)
			if !yield(ev) {
				return
			}
			prev = ev.Hash
		}
	}
}

// HistoryShapes are the filters of the deployment history's query shapes
// whose plans and speed are checked at scale (with History's environments
// and services): every combination of environment, service and status.
var HistoryShapes = []struct {
	Name   string
	Filter store.ListFilter
}{
	{"first page", store.ListFilter{}},
	{"environment", store.ListFilter{Environment: "staging"}},
	{"service", store.ListFilter{Service: "svc-0042"}},
	{"status failed", store.ListFilter{Status: store.StatusFailed}},
	{"status pending", store.ListFilter{Status: store.StatusPending}},
	{"environment, service", store.ListFilter{Environment: "production", Service: "svc-0042"}},
	{"environment, status", store.ListFilter{Environment: "production", Status: store.StatusFailed}},
	{"service, status", store.ListFilter{Service: "svc-0042", Status: store.StatusSuperseded}},
	{"environment, service, status", store.ListFilter{Environment: "production", Service: "svc-0042", Status: store.StatusPending}},
}
