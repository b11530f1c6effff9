package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/tail"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/deploy/backend"
)

// Defaults of LogsConfig.
const (
	// DefaultMaxTailsPerKey bounds the tails one API key may have open.
	DefaultMaxTailsPerKey = 5
	// DefaultTailLifetime is how long a tail may last.
	DefaultTailLifetime = 4 * time.Hour
	// DefaultTailReauthorize is how often an open tail's key is checked
	// again (a key revoked meanwhile ends its tails).
	DefaultTailReauthorize = 30 * time.Second
)

// LogsConfig configures Logs.
type LogsConfig struct {
	// Environments are the environments and their namespaces.
	Environments []config.Environment
	// Source is where invocations come from; nil when the backend offers
	// no live tail.
	Source backend.TailSource
	// MaxTailsPerKey bounds the tails one key may have open at once
	// (DefaultMaxTailsPerKey when 0).
	MaxTailsPerKey int
	// Lifetime bounds how long a tail lasts (DefaultTailLifetime when 0).
	Lifetime time.Duration
	// Reauthorize is how often an open tail's key is checked again
	// (DefaultTailReauthorize when 0).
	Reauthorize time.Duration
}

// Logs is the live tail of workers (the TailWorker RPC): each tail is
// authorized by logs.read on its environment, filtered as `wrangler tail`
// filters, bounded per key and in time, and ended when its key loses the
// permission.
type Logs struct {
	cfg   LogsConfig
	envs  map[string]config.Environment
	authz Authorizer
	log   *slog.Logger

	mu   sync.Mutex
	open map[string]int // key id -> tails open
	// stop ends every tail (Stop).
	stop     chan struct{}
	stopOnce sync.Once
}

// Stop ends every open tail, so that a server shutting down need not wait
// for them; their clients see the stream end.
func (l *Logs) Stop() { l.stopOnce.Do(func() { close(l.stop) }) }

// NewLogs returns the live tail over cfg.Source, checking callers with az.
func NewLogs(cfg LogsConfig, az Authorizer, opts ...Option) *Logs {
	if cfg.MaxTailsPerKey <= 0 {
		cfg.MaxTailsPerKey = DefaultMaxTailsPerKey
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultTailLifetime
	}
	if cfg.Reauthorize <= 0 {
		cfg.Reauthorize = DefaultTailReauthorize
	}
	envs := map[string]config.Environment{}
	for _, e := range cfg.Environments {
		envs[e.Name] = e
	}
	return &Logs{cfg: cfg, envs: envs, authz: az, log: buildOptions(opts).logger, open: map[string]int{}, stop: make(chan struct{})}
}

// TailInput is what to tail and which invocations to keep.
type TailInput struct {
	// Service is the worker.
	Service string
	// Environment is where it runs ("production" when empty).
	Environment string
	// Filter selects invocations.
	Filter tail.Filter
}

// TailItem is one thing a tail sends: its start (Started set, with
// ExpiresAt), an event, or a count of events lost.
type TailItem struct {
	Started   bool
	ExpiresAt time.Time
	Event     *tail.Event
	Dropped   int64
}

// ErrTailEnded is why a tail ended when it reached its lifetime.
var ErrTailEnded = errkind.New(errkind.Exhausted, "the tail reached its maximum lifetime; start it again")

// Tail streams the invocations of in.Service to send until ctx ends (the
// client went away, or the server stops), the tail's lifetime passes
// (ErrTailEnded), the caller's key loses logs.read, or the source ends.
// A send that blocks holds back only this tail: the source drops what it
// cannot deliver and Tail reports the count.
func (l *Logs) Tail(ctx context.Context, c Caller, in TailInput, send func(TailItem) error) error {
	if in.Environment == "" {
		in.Environment = "production"
	}
	if err := checkService(in.Service); err != nil {
		return err
	}
	env, ok := l.envs[in.Environment]
	if !ok {
		return invalid("environment", "unknown environment %q", in.Environment)
	}
	p, err := l.authz.Authorize(ctx, c.Token, authz.PermLogsRead, env.Name, c.Client)
	if err != nil {
		return err
	}
	if l.cfg.Source == nil {
		return errkind.Errorf(errkind.Precondition,
			"live tail needs the local runtime: Cloudflare's API offers no live tail of dispatch-namespace scripts (their logs go to the platform's tail consumer; see README)")
	}
	release, err := l.admit(p.KeyID)
	if err != nil {
		return err
	}
	defer release()

	ctx, cancel := context.WithTimeoutCause(ctx, l.cfg.Lifetime, ErrTailEnded)
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	stream, err := l.cfg.Source.Tail(ctx, env.Namespace, in.Service)
	if err != nil {
		return err
	}
	defer stream.Close()
	// A key revoked (or narrowed) while the tail is open ends it.
	revoked := make(chan error, 1)
	go l.watchKey(ctx, c, env.Name, revoked, stream)

	l.log.Info("tail opened", "service", in.Service, "environment", env.Name, "key_id", p.KeyID, "caller", c)
	deadline, _ := ctx.Deadline()
	if err := send(TailItem{Started: true, ExpiresAt: deadline}); err != nil {
		return err
	}
	defer l.log.Info("tail closed", "service", in.Service, "environment", env.Name, "key_id", p.KeyID)
	for {
		m, err := stream.Next()
		if err != nil {
			select {
			case rerr := <-revoked:
				return rerr
			default:
			}
			if cause := context.Cause(ctx); cause != nil {
				if errors.Is(cause, ErrTailEnded) {
					return ErrTailEnded
				}
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errkind.Errorf(errkind.Unavailable, "the runtime ended the tail")
			}
			return errkind.Errorf(errkind.Unavailable, "tail source: %w", err)
		}
		if m.Lost > 0 {
			if err := send(TailItem{Dropped: m.Lost}); err != nil {
				return err
			}
		}
		if m.Event == nil || !in.Filter.Match(m.Event) {
			continue
		}
		m.Event.Environment = env.Name
		if err := send(TailItem{Event: m.Event}); err != nil {
			return err
		}
	}
}

// admit counts one more tail of keyID, or refuses it past the bound.
func (l *Logs) admit(keyID string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[keyID] >= l.cfg.MaxTailsPerKey {
		return nil, errkind.Errorf(errkind.Exhausted, "key %q has %d tails open, the most allowed; close one first", keyID, l.cfg.MaxTailsPerKey)
	}
	l.open[keyID]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.open[keyID]--; l.open[keyID] <= 0 {
			delete(l.open, keyID)
		}
	}, nil
}

// watchKey checks the caller's key every Reauthorize while ctx lasts; when
// the check fails, it reports why on revoked and closes the stream.
func (l *Logs) watchKey(ctx context.Context, c Caller, env string, revoked chan<- error, stream backend.TailStream) {
	t := time.NewTicker(l.cfg.Reauthorize)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := l.authz.Authorize(ctx, c.Token, authz.PermLogsRead, env, c.Client)
		kind := errkind.Of(err)
		if err == nil || kind != errkind.Unauthenticated && kind != errkind.Permission {
			continue // still allowed, or the check could not be made: keep going
		}
		revoked <- fmt.Errorf("the tail's key lost its permission: %w", err)
		_ = stream.Close()
		return
	}
}
