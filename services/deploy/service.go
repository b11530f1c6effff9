// Package deploy is the public Deploy API of the dotdo platform: the domain
// of deploying workers into the dispatch namespaces of environments, rolling
// them back and auditing every step (Service), the operators' key and audit
// actions (Admin), and their Connect handlers (handler.go, the only files
// that know about Connect and the generated protos).
//
// A deploy authorizes the caller's API key, validates the worker, stores it
// as one content-addressed bundle, and then, under a lease on the
// (environment, service) pair held in the database, records a pending
// deployment with the next version, writes an audit event (fail closed: no
// audit, no upload), uploads the worker tagged with its deployment id and
// version, and records the outcome (live, superseding the previous live
// deployment, or failed) with a second audit event. A deployment left
// pending by a crash is resolved by Reconcile, or by the next deploy of the
// same service, by reading the tags of the script the namespace holds.
package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// Authorizer checks API keys. *auth.Service satisfies it in process; the
// platform implements it over the AuthService client.
type Authorizer interface {
	// Authenticate returns the principal of token (a bearer API key) for
	// client, the caller's address, which throttles failed attempts.
	Authenticate(ctx context.Context, token, client string) (authz.Principal, error)
	// Authorize authenticates token and checks that its key has perm on
	// env ("" for permissions that are not environment-scoped).
	Authorize(ctx context.Context, token string, perm authz.Permission, env, client string) (authz.Principal, error)
}

// Records is the persistence the Deploy API needs: deployments, script
// bundles, the audit log, leases, routing tables and dispatch Worker
// deployments. A store.Store satisfies it in process; the platform
// implements it over the DBService client.
type Records interface {
	store.Deployments
	store.Blobs
	store.Audit
	store.Leases
	store.RouteTables
	store.DispatchWorkers
}

// Caller is who makes a request: the bearer token and where it comes from.
// It never prints its token.
type Caller struct {
	// Token is the API key from the Authorization header, without
	// "Bearer ". It is a secret.
	Token string
	// Client identifies the caller's address (the peer IP), for throttling
	// and the audit log.
	Client string
	// RequestID is the request's id, for the audit log, when known.
	RequestID string
}

// String describes c without its token.
func (c Caller) String() string { return "caller " + c.Client }

// GoString is String, so %#v does not print the token either.
func (c Caller) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the token.
func (c Caller) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client", c.Client), slog.String("request_id", c.RequestID))
}

// Option configures a Service or an Admin.
type Option func(*options)

type options struct {
	logger        *slog.Logger
	now           func() time.Time
	meterProvider metric.MeterProvider
}

// WithLogger sets the logger; slog.Default() otherwise. Nothing secret is
// logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock; time.Now otherwise.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMeterProvider records a Service's metrics (MetricDeployments,
// MetricDeploymentDuration) on mp. Without it they are recorded nowhere;
// the global OpenTelemetry provider is never used.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

func buildOptions(opts []Option) options {
	o := options{logger: slog.Default(), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}

const tracerName = "github.com/dot-do/platform/services/deploy"

// Service is the deploy domain. It is safe for concurrent use; create it
// with New.
type Service struct {
	cfg     Config
	envs    map[string]config.Environment
	authz   Authorizer
	rec     Records
	backend backend.Backend
	log     *slog.Logger
	now     func() time.Time
	tracer  trace.Tracer
	locks   keyedMutex
	auditor auditor
	metrics *metrics
	health  healthCache
}

// New returns a Service deploying with cfg (zero fields take their
// defaults) through authz, rec and b.
func New(cfg Config, authz Authorizer, rec Records, b backend.Backend, opts ...Option) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	envs := make(map[string]config.Environment, len(cfg.Environments))
	for _, e := range cfg.Environments {
		envs[e.Name] = e
	}
	m, err := newMetrics(o.meterProvider, cfg.Environments)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return &Service{
		cfg:     cfg,
		envs:    envs,
		authz:   authz,
		rec:     rec,
		backend: b,
		log:     o.logger,
		now:     o.now,
		tracer:  otel.Tracer(tracerName),
		auditor: auditor{audit: rec, log: o.logger},
		metrics: m,
	}, nil
}

// Config returns the service's configuration with its defaults applied.
func (s *Service) Config() Config { return s.cfg }

// environment returns the configured environment name, or an
// InvalidArgument naming field.
func (s *Service) environment(field, name string) (config.Environment, error) {
	if e, ok := s.envs[name]; ok {
		return e, nil
	}
	names := make([]string, len(s.cfg.Environments))
	for i, e := range s.cfg.Environments {
		names[i] = e.Name
	}
	return config.Environment{}, invalid(field, "unknown environment %q (configured: %s)", name, joinQuoted(names))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
