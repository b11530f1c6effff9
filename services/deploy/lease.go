package deploy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

// keyedMutex serializes the goroutines of this process per key, so that at
// most one of them at a time asks the database for a given lease (the
// process has one holder id, and a holder that acquires its own lease again
// merely extends it). Waiters are served in arrival order.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int
}

// lock takes the lock of key, or gives up when ctx is done.
func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// withLease runs fn while holding the deploy lease of (env, service): first
// this process's lock of the pair, then the lease in the database, waited
// for up to LeaseWait and renewed every third of LeaseTTL while fn runs.
// fn gets the fence of its holding (holder and token), with which it
// fences its upload (checkFence) and its completion (store.Outcome.Lease):
// a process that stalled past its lease while another took over cannot
// record an outcome over the newer deploy.
//
// fn runs with a context that is detached from ctx's cancellation: once a
// deploy holds the lease it finishes, and records its outcome, even if the
// client goes away. The context ends when the lease cannot be renewed (with
// cause ErrLeaseLost) or after UploadTimeout plus a minute.
func (s *Service) withLease(ctx context.Context, env, service string, fn func(ctx context.Context, fence store.LeaseFence) error) error {
	ctx, span := s.tracer.Start(ctx, "deploy.lease")
	name := store.DeployLeaseName(env, service)
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		span.End()
		return err
	}
	defer unlock()
	lease, err := s.acquire(ctx, name, env, service)
	if err != nil {
		span.End()
		return err
	}
	span.End()
	fence := store.LeaseFence{Holder: lease.Holder, Token: lease.Token}

	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	// Bound the detached work: every step has to end even if a dependency
	// hangs.
	work, stop := context.WithTimeout(work, s.cfg.UploadTimeout+time.Minute)
	defer stop()
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		s.renew(work, name, done, cancel)
	}()
	err = fn(work, fence)
	close(done)
	<-renewed
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	if rerr := s.rec.ReleaseLease(rctx, name, s.cfg.HolderID); rerr != nil {
		// The lease expires by itself; the next holder waits at most
		// LeaseTTL.
		s.log.WarnContext(ctx, "release deploy lease", "lease", name, "err", rerr.Error())
	}
	return err
}

// acquire takes the lease name, retrying with jittered backoff while
// another holder has it.
func (s *Service) acquire(ctx context.Context, name, env, service string) (store.Lease, error) {
	deadline := time.Now().Add(s.cfg.LeaseWait)
	backoff := 5 * time.Millisecond
	for {
		l, err := s.rec.AcquireLease(ctx, name, s.cfg.HolderID, s.cfg.LeaseTTL)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, errkind.Conflict) {
			return store.Lease{}, fmt.Errorf("acquire deploy lease of %s in %s: %w", service, env, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if time.Now().Add(wait).After(deadline) {
			return store.Lease{}, fmt.Errorf("another deploy of %s in %s has been running for over %v; try again later: %w",
				service, env, s.cfg.LeaseWait, errkind.Conflict)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return store.Lease{}, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 250*time.Millisecond)
	}
}

// renew extends the lease every third of its TTL until done is closed. When
// the lease is taken by someone else, or cannot be renewed before it
// expires, it cancels the work with ErrLeaseLost.
func (s *Service) renew(ctx context.Context, name string, done <-chan struct{}, cancel context.CancelCauseFunc) {
	ttl := s.cfg.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		rctx, rcancel := context.WithTimeout(ctx, ttl/3)
		_, err := s.rec.RenewLease(rctx, name, s.cfg.HolderID, ttl)
		rcancel()
		switch {
		case err == nil:
			last = time.Now()
		case errors.Is(err, errkind.Conflict), errors.Is(err, errkind.Precondition), errors.Is(err, errkind.NotFound),
			// Give up while the lease is still ours: the next attempt
			// could not finish before it expires.
			time.Since(last) >= ttl-ttl/3:
			s.log.ErrorContext(ctx, "deploy lease lost", "lease", name, "err", err.Error())
			cancel(fmt.Errorf("%w: %s: %v", ErrLeaseLost, name, err))
			return
		default:
			s.log.WarnContext(ctx, "renew deploy lease", "lease", name, "err", err.Error())
		}
	}
}

// checkFence renews the lease of (env, service) and checks that it is
// still fence's holding, right before an upload: a process that stalled
// past its lease, while another took it over, does not upload over the
// newer deploy. (An upload already in flight when the process stalls
// cannot be recalled; its completion is refused by the fence, and
// Reconcile repairs the namespace.)
func (s *Service) checkFence(ctx context.Context, env, service string, fence store.LeaseFence) error {
	name := store.DeployLeaseName(env, service)
	l, err := s.rec.RenewLease(ctx, name, fence.Holder, s.cfg.LeaseTTL)
	if err == nil && l.Token != fence.Token {
		err = fmt.Errorf("lease token %d, want %d", l.Token, fence.Token)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrLeaseLost, name, err)
	}
	return nil
}
