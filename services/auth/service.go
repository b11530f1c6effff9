package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
)

// Service authenticates API keys, authorizes them against the RBAC policy and
// manages their life cycle. It is safe for concurrent use. Create it with New.
//
// Caching: a successfully validated token is cached (keyed by SHA-256 of the
// full token, never the token itself) for the cache TTL (DefaultCacheTTL =
// 10 s), and never past the key's own ExpiresAt. Revoking, rotating or
// changing the expiry of a key through this Service drops its cache entry
// immediately; a change made anywhere else (another replica or process)
// takes effect here within at most the cache TTL. Call Invalidate to apply
// an external change sooner. The cache holds at most DefaultCacheSize keys
// (LRU eviction).
//
// Throttling: per (client, presented key id), and per client for malformed
// tokens; see ThrottleConfig and DefaultThrottle.
//
// Last use: every successful authentication (cache hit or miss) updates the
// key's LastUsedAt via Store.TouchAPIKey at most once per
// DefaultTouchInterval per key; the write is best-effort and its failure
// never fails the request.
type Service struct {
	store   Store
	now     func() time.Time
	pepper  []byte
	cache   *tokenCache // nil when disabled
	limiter *throttle   // nil when disabled
	touches *touchTracker
	grace   time.Duration
	log     *slog.Logger
	metrics *metrics
}

// New returns a Service that keeps its keys and audit events in st
// (required), configured by opts.
func New(st Store, opts ...Option) *Service {
	if st == nil {
		panic("auth.New: nil Store")
	}
	cfg := config{
		now:           time.Now,
		cacheTTL:      DefaultCacheTTL,
		cacheSize:     DefaultCacheSize,
		throttle:      DefaultThrottle,
		rotationGrace: DefaultRotationGrace,
		touchInterval: DefaultTouchInterval,
		logger:        slog.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Service{
		store:   st,
		now:     cfg.now,
		pepper:  cfg.pepper,
		touches: newTouchTracker(cfg.touchInterval, cfg.cacheSize),
		grace:   cfg.rotationGrace,
		log:     cfg.logger,
	}
	m, err := newMetrics(cfg.meterProvider)
	if err != nil {
		s.log.Warn("auth: metrics", "err", err.Error())
	}
	s.metrics = m
	if cfg.cacheTTL > 0 {
		s.cache = newTokenCache(cfg.cacheTTL, cfg.cacheSize)
	}
	if cfg.throttle.MaxFailures > 0 {
		s.limiter = newThrottle(cfg.throttle)
	}
	return s
}

// Authenticate validates a bearer token (without the "Bearer " prefix) for
// client (the remote IP or another stable caller id, used for throttling and
// auditing).
//
// It returns the key's Principal, or:
//   - *ThrottleError (ErrThrottled) if the (client, key id) pair of the
//     token, or for a malformed token the client's malformed tokens, is
//     cooling down (see ThrottleConfig); never for a token that verified
//     before, so a valid key is not refused because of others' failures;
//   - ErrUnauthenticated, unwrapped and with one fixed message, if the token
//     is missing, malformed, unknown, wrong, expired, revoked or its record
//     is corrupt; the reason goes only to the audit log, and the failure
//     (except a missing token) counts against the throttle;
//   - a wrapped store error if the key could not be looked up (not counted
//     as a failure; map it to Unavailable/Internal).
//
// Malformed tokens are rejected by apikey.Parse without touching the store.
// Secret hashes are compared in constant time.
func (s *Service) Authenticate(ctx context.Context, token, client string) (authz.Principal, error) {
	now := s.now()
	if token == "" {
		// Nothing to guess with: refused, not counted.
		return s.deny(ctx, now, client, "", "missing API key", "")
	}
	key, err := apikey.Parse(token)
	if err != nil {
		throttleKey := pairKey(client, "")
		if err := s.throttled(throttleKey, now); err != nil {
			return authz.Principal{}, err
		}
		return s.deny(ctx, now, client, "", "malformed API key", throttleKey)
	}

	var buf [apikey.TokenLen]byte // stack copy: avoids a heap allocation
	copy(buf[:], token)
	digest := tokenDigest(sha256.Sum256(buf[:]))
	var gen uint64
	if s.cache != nil {
		if p, ok := s.cache.get(digest, now); ok {
			s.touch(ctx, p.KeyID, now, time.Time{})
			return p.Clone(), nil
		}
		gen = s.cache.generation()
	}
	throttleKey := pairKey(client, key.ID)
	if s.limiter != nil && !s.limiter.known(key.ID, digest) {
		if err := s.throttled(throttleKey, now); err != nil {
			return authz.Principal{}, err
		}
	}

	rec, err := s.store.GetAPIKey(ctx, key.ID)
	switch {
	case errors.Is(err, errkind.NotFound):
		return s.deny(ctx, now, client, key.ID, "unknown key id", throttleKey)
	case err != nil:
		return authz.Principal{}, fmt.Errorf("auth: look up key %q: %w", key.ID, err)
	}
	// Verify the secret first, so that the state of a key (revoked,
	// expired) is only ever examined for the holder of its secret.
	if !apikey.VerifySecret(key.Secret, rec.SecretHash, s.pepper) {
		return s.deny(ctx, now, client, key.ID, "secret does not match", throttleKey)
	}
	switch {
	case rec.KeyID != key.ID:
		return s.deny(ctx, now, client, key.ID, fmt.Sprintf("store returned record %q for key id", rec.KeyID), throttleKey)
	case !rec.RevokedAt.IsZero():
		return s.deny(ctx, now, client, key.ID, "revoked at "+rec.RevokedAt.UTC().Format(time.RFC3339), throttleKey)
	case !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt):
		reason := "expired at " + rec.ExpiresAt.UTC().Format(time.RFC3339)
		if rec.ReplacedBy != "" {
			reason += " (rotated; replaced by " + rec.ReplacedBy + ")"
		}
		return s.deny(ctx, now, client, key.ID, reason, throttleKey)
	case !rec.Role.Valid():
		return s.deny(ctx, now, client, key.ID, fmt.Sprintf("stored role %q is invalid", rec.Role), throttleKey)
	}

	p := authz.PrincipalOf(rec)
	if s.cache != nil {
		s.cache.put(digest, p.Clone(), now, rec.ExpiresAt, gen)
	}
	if s.limiter != nil {
		s.limiter.verify(key.ID, digest)
	}
	s.touch(ctx, rec.KeyID, now, rec.LastUsedAt)
	return p, nil
}

// throttled returns a *ThrottleError when throttleKey is cooling down.
func (s *Service) throttled(throttleKey string, now time.Time) error {
	if s.limiter == nil {
		return nil
	}
	if wait, blocked := s.limiter.blocked(throttleKey, now); blocked {
		return &ThrottleError{RetryAfter: (wait + time.Second - 1).Truncate(time.Second)}
	}
	return nil
}

// Authorize authenticates token like Authenticate and then checks that the
// key has permission perm on environment env (see authz.Principal.Check:
// pass "" for permissions that are not environment-scoped, such as
// keys.manage and audit.read). A denial returns an *authz.PermissionError
// (kind errkind.Permission), whose message names the key id, the permission
// and, if it is the reason, the environment; it is also audited.
// On any error the returned Principal is the zero value.
func (s *Service) Authorize(ctx context.Context, token string, perm authz.Permission, env, client string) (authz.Principal, error) {
	p, err := s.Authenticate(ctx, token, client)
	if err != nil {
		return authz.Principal{}, err
	}
	if err := p.Check(perm, env); err != nil {
		s.audit(ctx, Event{
			Time: s.now(), Action: ActionAuthorize, Outcome: OutcomeDenied,
			KeyID: p.KeyID, Client: client, Reason: err.Error(),
		})
		return authz.Principal{}, err
	}
	return p, nil
}

// Invalidate drops any cached validation of keyID, so that the next request
// with it reads the store. Use it when learning about a change made elsewhere
// (e.g. a revocation broadcast); changes made through this Service do it
// automatically.
func (s *Service) Invalidate(keyID string) {
	if s.cache != nil {
		s.cache.invalidate(keyID)
	}
}

// deny records an authentication failure and returns ErrUnauthenticated.
// The failure counts against throttleKey, unless it is "".
func (s *Service) deny(ctx context.Context, now time.Time, client, keyID, reason, throttleKey string) (authz.Principal, error) {
	blocked := s.limiter != nil && throttleKey != "" && s.limiter.fail(throttleKey, now)
	s.audit(ctx, Event{
		Time: now, Action: ActionAuthenticate, Outcome: OutcomeDenied,
		KeyID: keyID, Client: client, Reason: reason,
	})
	if blocked {
		cfg := s.limiter.cfg
		what := "with key id " + keyID
		if keyID == "" {
			what = "with malformed keys"
		}
		s.audit(ctx, Event{
			Time: now, Action: ActionAuthenticate, Outcome: OutcomeThrottled, KeyID: keyID, Client: client,
			Reason: fmt.Sprintf("%d failed attempts %s within %s; blocked for %s", cfg.MaxFailures, what, cfg.Window, cfg.Cooldown),
		})
	}
	return authz.Principal{}, ErrUnauthenticated
}

// sideEffectContext detaches best-effort writes from request cancellation
// but bounds them in time.
func sideEffectContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sideEffectTimeout)
}

// audit appends ev to the audit log, logging (not returning) failures, so
// that a failing log never turns a denial into a success or the reverse.
func (s *Service) audit(ctx context.Context, ev Event) {
	ctx, cancel := sideEffectContext(ctx)
	defer cancel()
	if _, err := s.store.AppendAudit(ctx, ev.auditEvent()); err != nil {
		s.log.WarnContext(ctx, "auth: audit log failed",
			slog.String("action", ev.Action), slog.String("outcome", ev.Outcome),
			slog.String("key_id", ev.KeyID), slog.Any("error", err))
	}
}

// touch updates LastUsedAt if it is due (best-effort).
func (s *Service) touch(ctx context.Context, keyID string, now, stored time.Time) {
	if !s.touches.due(keyID, now, stored) {
		return
	}
	ctx, cancel := sideEffectContext(ctx)
	defer cancel()
	if err := s.store.TouchAPIKey(ctx, keyID, now); err != nil {
		s.log.WarnContext(ctx, "auth: updating key last-used time failed",
			slog.String("key_id", keyID), slog.Any("error", err))
	}
}
