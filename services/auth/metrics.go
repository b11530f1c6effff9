package auth

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/telemetry"
)

// MeterName is the instrumentation scope of the auth service's metrics (the
// otel_scope_name label of their series).
const MeterName = "github.com/dot-do/platform/services/auth"

// MetricAttempts counts the authentications of API keys that the
// AuthService's Authenticate and Authorize calls make, once per call, by
// outcome (AttrOutcome, an AttemptOutcome), on the provider WithMeterProvider
// gives. ops/prometheus/alerts.yml reads it as
// dotdo_auth_attempts_total{outcome}.
const MetricAttempts = "dotdo.auth.attempts"

// AttrOutcome is the attribute (Prometheus label) of MetricAttempts.
const AttrOutcome = "outcome"

// AttemptOutcome is the outcome of an authentication, the value of
// AttrOutcome.
type AttemptOutcome string

// Outcomes of an authentication.
const (
	// AttemptSuccess: the key is valid and, for Authorize, has the
	// permission.
	AttemptSuccess AttemptOutcome = "success"
	// AttemptUnauthenticated: a missing, malformed, unknown, wrong,
	// expired or revoked key (ErrUnauthenticated).
	AttemptUnauthenticated AttemptOutcome = "unauthenticated"
	// AttemptPermissionDenied: a valid key without the permission or
	// environment (ErrPermissionDenied).
	AttemptPermissionDenied AttemptOutcome = "permission_denied"
	// AttemptThrottled: refused because the client made too many failed
	// attempts (ErrThrottled).
	AttemptThrottled AttemptOutcome = "throttled"
	// AttemptError: the check could not be made (store unreachable, ...).
	AttemptError AttemptOutcome = "error"
)

// attemptOutcomes lists every AttemptOutcome, for the series started at
// zero.
var attemptOutcomes = []AttemptOutcome{AttemptSuccess, AttemptUnauthenticated, AttemptPermissionDenied, AttemptThrottled, AttemptError}

// attemptOutcome classifies the error of Authenticate or Authorize.
func attemptOutcome(err error) AttemptOutcome {
	switch {
	case err == nil:
		return AttemptSuccess
	case errors.Is(err, ErrUnauthenticated):
		return AttemptUnauthenticated
	case errors.Is(err, errkind.Permission):
		return AttemptPermissionDenied
	case errors.Is(err, ErrThrottled):
		return AttemptThrottled
	}
	return AttemptError
}

// metrics are the auth service's instruments.
type metrics struct {
	attempts metric.Int64Counter
}

// newMetrics creates the auth service's instruments on mp (nil: recorded
// nowhere) and starts every outcome's series at zero, so that rate() and
// increase() see the first failure after start-up.
func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	in := telemetry.NewInstruments(mp, MeterName)
	m := &metrics{attempts: in.Counter(MetricAttempts, "{attempt}", "Authentications of API keys, by outcome.")}
	for _, o := range attemptOutcomes {
		m.attempts.Add(context.Background(), 0, metric.WithAttributes(attribute.String(AttrOutcome, string(o))))
	}
	return m, in.Err()
}

// attempt counts one authentication that ended with err.
func (m *metrics) attempt(ctx context.Context, err error) {
	m.attempts.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrOutcome, string(attemptOutcome(err)))))
}
