package store

import "time"

// Options configures a backend. Build it with BuildOptions from Option
// values; backends' Open functions accept ...Option.
type Options struct {
	// Now is the clock; defaults to time.Now. Times are stored with
	// microsecond precision in UTC.
	Now func() time.Time
	// VerifyBatchSize is how many audit events VerifyAudit reads per query.
	VerifyBatchSize int
	// MaxBlobSize is the largest blob PutBlob accepts.
	MaxBlobSize int
	// AuditKey keys the audit chain (AuditMAC); nil links it with plain
	// SHA-256.
	AuditKey []byte
}

// Option changes Options.
type Option func(*Options)

// WithClock makes the store read the time from now instead of time.Now,
// so lease expiry can be tested without sleeping.
func WithClock(now func() time.Time) Option {
	return func(o *Options) { o.Now = now }
}

// WithVerifyBatchSize sets how many audit events VerifyAudit reads per query.
func WithVerifyBatchSize(n int) Option {
	return func(o *Options) { o.VerifyBatchSize = n }
}

// WithMaxBlobSize sets the largest blob PutBlob accepts.
func WithMaxBlobSize(n int) Option {
	return func(o *Options) { o.MaxBlobSize = n }
}

// WithAuditKey links the audit chain with HMAC-SHA-256 MACs under key, a
// secret kept outside the database (see AuditMAC). key is copied.
func WithAuditKey(key []byte) Option {
	return func(o *Options) { o.AuditKey = append([]byte(nil), key...) }
}

// BuildOptions applies opts over the defaults.
func BuildOptions(opts ...Option) Options {
	o := Options{Now: time.Now, VerifyBatchSize: 1000, MaxBlobSize: DefaultMaxBlobSize}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.VerifyBatchSize <= 0 {
		o.VerifyBatchSize = 1000
	}
	if o.MaxBlobSize <= 0 {
		o.MaxBlobSize = DefaultMaxBlobSize
	}
	return o
}

// Timestamp returns t as stored: UTC, truncated to the microsecond.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}
