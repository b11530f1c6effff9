package deploy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
)

// stallingRecords is the store as seen by a process that stalls (a long
// GC pause, a frozen VM): while stalled is set, it cannot renew its lease.
type stallingRecords struct {
	deploy.Records
	stalled *atomic.Bool
}

func (r stallingRecords) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if r.stalled.Load() {
		return store.Lease{}, context.DeadlineExceeded
	}
	return r.Records.RenewLease(ctx, name, holder, ttl)
}

// lateBackend delivers its first upload late: the process stalls with the
// request on the wire, and the request lands when it resumes, even though
// the process meanwhile gave the upload up.
type lateBackend struct {
	*backend.Memory
	first   atomic.Bool
	stalled *atomic.Bool
	release chan struct{}
}

func (b *lateBackend) Upload(ctx context.Context, ns string, s backend.Script) error {
	if b.first.CompareAndSwap(false, true) {
		b.stalled.Store(true)
		<-b.release
		b.stalled.Store(false)
		return b.Memory.Upload(context.WithoutCancel(ctx), ns, s)
	}
	return b.Memory.Upload(ctx, ns, s)
}

// TestStaleLeaseHolderCannotOverwrite: a deploy stalls with its upload in
// flight until its lease expires; another deploy of the service takes the
// lease and makes version 2 live; then the stale upload of version 1 lands.
// The stale holder's completion is refused by the lease fence, version 2
// stays live, and the namespace serves version 2 again.
func TestStaleLeaseHolderCannotOverwrite(t *testing.T) {
	var stalled atomic.Bool
	late := &lateBackend{Memory: backend.NewMemory(), stalled: &stalled, release: make(chan struct{})}
	f := newFixture(t, withBackend(late), withConfig(func(c *deploy.Config) { c.LeaseTTL = time.Second }))
	ctx := context.Background()
	stale := f.newService(stallingRecords{Records: f.store, stalled: &stalled})

	staleErr := make(chan error, 1)
	go func() {
		_, err := stale.Deploy(ctx, f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("v1")})
		staleErr <- err
	}()
	for !stalled.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	v2 := f.mustDeploy("production", "gateway", "v2") // waits for the stale lease to expire
	close(late.release)
	err := <-staleErr
	wantErr(t, err, deploy.ErrLeaseLost)

	live, gerr := f.store.GetLive(ctx, "production", "gateway")
	if gerr != nil || live.ID != v2.ID {
		t.Fatalf("live = %s (%v), want version 2 %s", live.ID, gerr, v2.ID)
	}
	items := f.list("production", "gateway")
	if len(items) != 2 || items[1].Version != 1 || items[1].Status != store.StatusFailed {
		t.Fatalf("deployments %+v", items)
	}
	if id, version := f.namespaceHolds("dotdo-production", "gateway"); id != v2.ID || version != "2" {
		t.Fatalf("namespace holds deployment %s version %s, want version 2 (%s)", id, version, v2.ID)
	}
	if pending, _, _ := f.store.ListPending(ctx, store.Page{}); len(pending) != 0 {
		t.Fatalf("pending: %+v", pending)
	}
}

// TestReconcileManyPending: Reconcile resolves every pending deployment of
// a service, even more than a page holds.
func TestReconcileManyPending(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	ctx := context.Background()
	v1 := f.mustDeploy("production", "gateway", "v1")
	const n = store.MaxPageSize + 20
	for range n {
		if _, _, err := f.store.BeginDeployment(ctx, store.NewDeployment{
			Service: "gateway", Environment: "production", Namespace: "dotdo-production",
			ScriptSHA256: v1.ScriptSHA256, ScriptSize: v1.ScriptSize, MainModule: "index.js",
		}); err != nil {
			t.Fatal(err)
		}
	}
	report, err := f.svc.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Resolved) != n {
		t.Fatalf("resolved %d of %d pending deployments", len(report.Resolved), n)
	}
	if pending, _, _ := f.store.ListPending(ctx, store.Page{}); len(pending) != 0 {
		t.Fatalf("%d still pending", len(pending))
	}
}
