package workerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"
)

// ScheduledError is a scheduled handler that failed: it threw, or the
// worker has none. Message is the worker's error, for the operator.
type ScheduledError struct {
	// Message is the error the handler threw.
	Message string
}

// Error describes the failure.
func (e *ScheduledError) Error() string { return "scheduled handler failed: " + e.Message }

// Scheduled runs the scheduled() handler of the worker version key for cron
// (a cron expression, or "" for a trigger by hand) at scheduledTime, in the
// version's process (started if none runs), under the worker's limits. It
// returns once the handler and its waitUntil work have finished. A handler
// that throws, or a worker without one, gives a *ScheduledError.
func (s *Supervisor) Scheduled(ctx context.Context, key Key, cron string, scheduledTime time.Time) error {
	start := time.Now()
	outcome, err := s.scheduled(ctx, key, cron, scheduledTime)
	if s.opt.OnInvocation != nil {
		s.opt.OnInvocation(Invocation{Key: key, Start: start, Duration: time.Since(start), Outcome: outcome, Cron: cron, Scheduled: true})
	}
	return err
}

func (s *Supervisor) scheduled(ctx context.Context, key Key, cron string, at time.Time) (string, error) {
	in, err := s.acquire(ctx, key)
	if err != nil {
		var se *StartupError
		if errors.As(err, &se) {
			return OutcomeException, err
		}
		return OutcomeError, err
	}
	defer s.release(in)
	q := url.Values{"cron": {cron}, "time": {strconv.FormatInt(at.UnixMilli(), 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://cron/?"+q.Encode(), nil)
	if err != nil {
		return OutcomeError, err
	}
	sock := filepath.Join(in.dir, cronSocket)
	client := &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dialer.DialContext(ctx, "unix", sock) },
		DisableKeepAlives: true,
	}}
	res, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return OutcomeCanceled, ctx.Err()
		}
		select {
		case <-in.done:
		case <-time.After(limitWait):
		}
		switch in.endReason() {
		case endExceededCPU:
			return OutcomeExceededCPU, fmt.Errorf("%w: the scheduled handler exceeded its CPU time limit", ErrLimit)
		case endExceededMemory:
			return OutcomeExceededMemory, fmt.Errorf("%w: the scheduled handler exceeded its memory limit", ErrLimit)
		}
		return OutcomeError, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 16<<10))
	if res.StatusCode != http.StatusOK {
		return OutcomeException, &ScheduledError{Message: string(body)}
	}
	return OutcomeOK, nil
}
