package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

const leaseCols = `name, holder, token, acquired_at, expires_at`

func scanLease(r interface{ Scan(...any) error }) (store.Lease, error) {
	var l store.Lease
	var acquired, expires int64
	if err := r.Scan(&l.Name, &l.Holder, &l.Token, &acquired, &expires); err != nil {
		return l, err
	}
	l.AcquiredAt, l.ExpiresAt = fromMicros(acquired), fromMicros(expires)
	return l, nil
}

func checkLease(name, holder string, ttl time.Duration) error {
	if name == "" || holder == "" {
		return fmt.Errorf("lease name and holder are required: %w", errkind.Invalid)
	}
	if len(name) > 4*store.MaxNameLen || len(holder) > store.MaxNameLen {
		return fmt.Errorf("lease name or holder too long: %w", errkind.Invalid)
	}
	if ttl < time.Millisecond || ttl > store.MaxLeaseTTL {
		return fmt.Errorf("lease ttl %v is not between 1ms and %v: %w", ttl, store.MaxLeaseTTL, errkind.Invalid)
	}
	return nil
}

// AcquireLease implements store.Leases with one conditional upsert: insert
// the lease, or take it over when it is ours, released or expired.
func (e *Engine) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	now := e.now()
	nowUS, expUS := micros(now), micros(now.Add(ttl))
	var l store.Lease
	err := e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		// All SET expressions read the row as it was before the update.
		l, err = scanLease(tx.QueryRow(ctx, `INSERT INTO leases (`+leaseCols+`) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ? THEN leases.token ELSE leases.token + 1 END,
	acquired_at = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ? THEN leases.acquired_at ELSE excluded.acquired_at END,
	holder = excluded.holder,
	expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.holder = '' OR leases.expires_at <= ?
RETURNING `+leaseCols, name, holder, nowUS, expUS, nowUS, nowUS, nowUS))
		return err
	})
	if errors.Is(err, ErrNoRows) {
		return store.Lease{}, e.leaseHeldError(ctx, name, "acquire")
	}
	if err != nil {
		return store.Lease{}, fmt.Errorf("acquire lease %q: %w", name, err)
	}
	return l, nil
}

// leaseHeldError describes who holds the lease name.
func (e *Engine) leaseHeldError(ctx context.Context, name, op string) error {
	l, err := e.GetLease(ctx, name)
	if err != nil {
		return fmt.Errorf("%s lease %q: held by another holder: %w", op, name, errkind.Conflict)
	}
	return fmt.Errorf("%s lease %q: held by %q until %s: %w", op, name, l.Holder, l.ExpiresAt.Format(time.RFC3339Nano), errkind.Conflict)
}

// RenewLease implements store.Leases.
func (e *Engine) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	now := e.now()
	var l store.Lease
	err := e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		l, err = scanLease(tx.QueryRow(ctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ? RETURNING `+leaseCols,
			micros(now.Add(ttl)), name, holder, micros(now)))
		return err
	})
	if errors.Is(err, ErrNoRows) {
		return store.Lease{}, e.lostLeaseError(ctx, name, holder, now, "renew")
	}
	if err != nil {
		return store.Lease{}, fmt.Errorf("renew lease %q: %w", name, err)
	}
	return l, nil
}

// lostLeaseError explains why holder does not hold name at now.
func (e *Engine) lostLeaseError(ctx context.Context, name, holder string, now time.Time, op string) error {
	l, err := e.GetLease(ctx, name)
	switch {
	case err != nil:
		return fmt.Errorf("%s lease: %w", op, err)
	case l.Holder != holder && l.Held(now):
		return fmt.Errorf("%s lease %q: held by %q until %s: %w", op, name, l.Holder, l.ExpiresAt.Format(time.RFC3339Nano), errkind.Conflict)
	case l.Holder == holder:
		return fmt.Errorf("%s lease %q: the lease of %q expired at %s: %w", op, name, holder, l.ExpiresAt.Format(time.RFC3339Nano), errkind.Precondition)
	default:
		return fmt.Errorf("%s lease %q: not held by %q (released or taken over): %w", op, name, holder, errkind.Precondition)
	}
}

// ReleaseLease implements store.Leases. The row is kept (holder emptied) so
// Token keeps increasing across holders.
func (e *Engine) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := checkLease(name, holder, time.Second); err != nil {
		return err
	}
	now := e.now()
	var n int64
	err := e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE leases SET holder = '', expires_at = ? WHERE name = ? AND holder = ?`, micros(now), name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %q: %w", name, err)
	}
	if n == 1 {
		return nil
	}
	l, err := e.GetLease(ctx, name)
	switch {
	case err != nil:
		return fmt.Errorf("release lease: %w", err)
	case l.Held(now):
		return fmt.Errorf("release lease %q: held by %q, not %q: %w", name, l.Holder, holder, errkind.Conflict)
	}
	return nil // nobody holds it: nothing to release
}

// GetLease implements store.Leases.
func (e *Engine) GetLease(ctx context.Context, name string) (store.Lease, error) {
	l, err := scanLease(e.d.Reader().QueryRow(ctx, `SELECT `+leaseCols+` FROM leases WHERE name = ?`, name))
	if errors.Is(err, ErrNoRows) {
		return l, fmt.Errorf("lease %q: %w", name, errkind.NotFound)
	}
	if err != nil {
		return l, fmt.Errorf("lease %q: %w", name, err)
	}
	return l, nil
}
