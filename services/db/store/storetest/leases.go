package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

func testLeases(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	// Two processes sharing the database and a clock.
	a, b := h.Reopen(t, store.WithClock(clk.Now)), h.Reopen(t, store.WithClock(clk.Now))
	name := store.DeployLeaseName("prod", "api")
	ttl := 30 * time.Second

	l := must[store.Lease](t)(a.AcquireLease(ctx, name, "A", ttl))
	wantEqual(t, l, store.Lease{Name: name, Holder: "A", Token: 1, AcquiredAt: epoch, ExpiresAt: epoch.Add(ttl)})
	wantEqual(t, must[store.Lease](t)(b.GetLease(ctx, name)), l)

	// Contention: B cannot take or touch A's lease.
	_, err := b.AcquireLease(ctx, name, "B", ttl)
	wantErr(t, err, errkind.Conflict)
	if !strings.Contains(err.Error(), `"A"`) {
		t.Errorf("lease held error does not name the holder: %v", err)
	}
	_, err = b.RenewLease(ctx, name, "B", ttl)
	wantErr(t, err, errkind.Conflict)
	wantErr(t, b.ReleaseLease(ctx, name, "B"), errkind.Conflict)

	// Re-acquiring extends without changing hands.
	clk.Advance(10 * time.Second)
	l = must[store.Lease](t)(a.AcquireLease(ctx, name, "A", ttl))
	wantEqual(t, l, store.Lease{Name: name, Holder: "A", Token: 1, AcquiredAt: epoch, ExpiresAt: clk.Now().Add(ttl)})
	// Renewing extends too.
	clk.Advance(10 * time.Second)
	l = must[store.Lease](t)(a.RenewLease(ctx, name, "A", time.Minute))
	if !l.ExpiresAt.Equal(clk.Now().Add(time.Minute)) || l.Token != 1 {
		t.Fatalf("renewed lease: %+v", l)
	}
	// Still held just before expiry...
	clk.Advance(time.Minute - time.Microsecond)
	_, err = b.AcquireLease(ctx, name, "B", ttl)
	wantErr(t, err, errkind.Conflict)
	// ...and taken over at expiry, with a new fencing token.
	clk.Advance(time.Microsecond)
	l = must[store.Lease](t)(b.AcquireLease(ctx, name, "B", ttl))
	wantEqual(t, l, store.Lease{Name: name, Holder: "B", Token: 2, AcquiredAt: clk.Now(), ExpiresAt: clk.Now().Add(ttl)})
	// A lost it.
	_, err = a.RenewLease(ctx, name, "A", ttl)
	wantErr(t, err, errkind.Conflict)
	wantErr(t, a.ReleaseLease(ctx, name, "A"), errkind.Conflict)

	// Release frees it for anyone; releasing again is a no-op.
	if err := b.ReleaseLease(ctx, name, "B"); err != nil {
		t.Fatal(err)
	}
	if l := must[store.Lease](t)(a.GetLease(ctx, name)); l.Holder != "" || l.Held(clk.Now()) {
		t.Fatalf("released lease: %+v", l)
	}
	if err := b.ReleaseLease(ctx, name, "B"); err != nil {
		t.Fatal(err)
	}
	_, err = b.RenewLease(ctx, name, "B", ttl)
	wantErr(t, err, errkind.Precondition)
	l = must[store.Lease](t)(a.AcquireLease(ctx, name, "A", ttl))
	if l.Holder != "A" || l.Token != 3 {
		t.Fatalf("lease after release: %+v", l)
	}
	// A holder whose lease expired cannot renew it, even if nobody took it.
	clk.Advance(ttl)
	_, err = a.RenewLease(ctx, name, "A", ttl)
	wantErr(t, err, errkind.Precondition)
	// It can acquire it again, as a new tenure.
	if l := must[store.Lease](t)(a.AcquireLease(ctx, name, "A", ttl)); l.Token != 4 || !l.AcquiredAt.Equal(clk.Now()) {
		t.Fatalf("re-acquired expired lease: %+v", l)
	}

	// Leases are independent of each other.
	must[store.Lease](t)(b.AcquireLease(ctx, store.DeployLeaseName("prod", "web"), "B", ttl))

	_, err = a.RenewLease(ctx, "missing", "A", ttl)
	wantErr(t, err, errkind.NotFound)
	wantErr(t, a.ReleaseLease(ctx, "missing", "A"), errkind.NotFound)
	_, err = a.GetLease(ctx, "missing")
	wantErr(t, err, errkind.NotFound)
	for _, tc := range []struct {
		name, holder string
		ttl          time.Duration
	}{{"", "A", ttl}, {name, "", ttl}, {name, "A", 0}, {name, "A", -time.Second}, {name, "A", store.MaxLeaseTTL + 1}} {
		_, err := a.AcquireLease(ctx, tc.name, tc.holder, tc.ttl)
		wantErr(t, err, errkind.Invalid)
	}
}

func testLeaseContention(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	procs := []store.Store{h.Reopen(t, store.WithClock(clk.Now)), h.Reopen(t, store.WithClock(clk.Now))}
	const n = 20
	errs := make([]error, n)
	parallel(n, func(i int) {
		_, errs[i] = procs[i%2].AcquireLease(ctx, "deploy/prod/api", string(rune('a'+i)), time.Minute)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errkind.Conflict):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d contenders acquired the lease", won, n)
	}
}
