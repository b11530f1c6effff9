package auth

import (
	"log/slog"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults used by New.
const (
	// DefaultCacheTTL is how long a validated key is cached. It is also the
	// upper bound on how long a revocation or expiry change made through a
	// different Service instance (another replica, the CLI, direct DB
	// edits) can go unnoticed by this one.
	DefaultCacheTTL = 10 * time.Second
	// DefaultCacheSize is the maximum number of cached keys.
	DefaultCacheSize = 10_000
	// DefaultRotationGrace is how long the old key keeps working after
	// RotateKey when the caller passes grace 0.
	DefaultRotationGrace = 24 * time.Hour
	// DefaultTouchInterval is the minimum time between LastUsedAt writes for
	// one key.
	DefaultTouchInterval = time.Minute
	// sideEffectTimeout bounds audit and touch writes.
	sideEffectTimeout = 5 * time.Second
)

type config struct {
	now           func() time.Time
	cacheTTL      time.Duration
	cacheSize     int
	throttle      ThrottleConfig
	pepper        []byte
	rotationGrace time.Duration
	touchInterval time.Duration
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

// Option configures a Service.
type Option func(*config)

// WithClock sets the time source (default time.Now). Tests inject a fake.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithCacheTTL sets how long validated keys are cached (default
// DefaultCacheTTL). It bounds how stale a revocation made elsewhere can be.
// A TTL <= 0 disables the cache: every authentication reads the store.
func WithCacheTTL(ttl time.Duration) Option {
	return func(c *config) { c.cacheTTL = ttl }
}

// WithCacheSize sets the maximum number of cached keys (default
// DefaultCacheSize); the least recently used entry is evicted first.
func WithCacheSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.cacheSize = n
		}
	}
}

// WithThrottle configures the failed-attempt throttle (default
// DefaultThrottle). MaxFailures <= 0 disables it; zero Window, Cooldown or
// MaxClients take the DefaultThrottle values.
func WithThrottle(cfg ThrottleConfig) Option {
	return func(c *config) {
		if cfg.Window <= 0 {
			cfg.Window = DefaultThrottle.Window
		}
		if cfg.Cooldown <= 0 {
			cfg.Cooldown = DefaultThrottle.Cooldown
		}
		if cfg.MaxClients <= 0 {
			cfg.MaxClients = DefaultThrottle.MaxClients
		}
		c.throttle = cfg
	}
}

// WithPepper keys secret hashes with a server-side secret (HMAC-SHA-256), so
// that a copy of the key table alone can not be used to verify guesses.
// Changing or removing the pepper invalidates every existing key. The slice
// is copied.
func WithPepper(pepper []byte) Option {
	return func(c *config) { c.pepper = slices.Clone(pepper) }
}

// WithRotationGrace sets the default grace period of RotateKey (default
// DefaultRotationGrace).
func WithRotationGrace(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.rotationGrace = d
		}
	}
}

// WithTouchInterval sets the minimum time between LastUsedAt writes per key
// (default DefaultTouchInterval).
func WithTouchInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.touchInterval = d
		}
	}
}

// WithLogger sets the logger for best-effort failures (audit sink and
// last-used writes). Default slog.Default(). Nothing secret is ever logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithMeterProvider records the service's metrics (MetricAttempts) on mp.
// Without it they are recorded nowhere; the global OpenTelemetry provider is
// never used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}
