package deploy

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// MeterName is the instrumentation scope of the deploy service's metrics
// (the otel_scope_name label of their series), the name of its tracer too.
const MeterName = tracerName

// The deploy service's metrics, recorded on the provider WithMeterProvider
// gives. The comments give the names Prometheus sees;
// ops/prometheus/alerts.yml uses them and ops/prometheus/README.md
// documents them.
const (
	// MetricDeployments counts the deployments (deploys and rollbacks)
	// that reached a final state, by outcome (AttrOutcome, a
	// DeploymentOutcome), environment (AttrEnvironment, a configured one)
	// and kind (AttrKind: "deploy" or "rollback", store.Kind). A
	// deployment left pending is counted when Reconcile, or the next
	// deploy of its service, settles it.
	// Prometheus: dotdo_deployments_total{outcome, environment, kind}.
	MetricDeployments = "dotdo.deployments"
	// MetricDeploymentDuration is the time from the pending record to the
	// final state, in seconds, with the attributes of MetricDeployments
	// (not recorded for a deployment Reconcile settles, whose start was
	// another process's).
	// Prometheus: dotdo_deployment_duration_seconds{outcome, environment, kind}.
	MetricDeploymentDuration = "dotdo.deployment.duration"
)

// Attribute keys of the deploy service's metrics (Prometheus label names).
const (
	// AttrOutcome is the DeploymentOutcome.
	AttrOutcome = "outcome"
	// AttrEnvironment is the deployment's environment.
	AttrEnvironment = "environment"
	// AttrKind is the deployment's store.Kind.
	AttrKind = "kind"
)

// DeploymentOutcome is the final state of a deployment, the value of
// AttrOutcome.
type DeploymentOutcome string

// Final states of a deployment.
const (
	// DeploymentLive: uploaded and recorded live.
	DeploymentLive DeploymentOutcome = "live"
	// DeploymentFailed: recorded pending, then failed for a reason of the
	// platform's: the namespace backend unreachable, failing or refusing
	// the credential, the audit trail or the store failing, a deploy
	// interrupted by a crash. Alerts fire on these.
	DeploymentFailed DeploymentOutcome = "failed"
	// DeploymentRejected: recorded pending, then failed because the
	// namespace backend refused the script itself (backend.ErrRejected: it
	// does not parse or throws at start-up). The deployer's fault, not the
	// platform's.
	DeploymentRejected DeploymentOutcome = "rejected"
)

// deploymentBuckets span a fast local upload to a slow Cloudflare one, in
// seconds.
var deploymentBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// metrics are the deploy service's instruments.
type metrics struct {
	deployments metric.Int64Counter
	duration    metric.Float64Histogram
}

// newMetrics creates the deploy service's instruments on mp (nil: recorded
// nowhere) and starts the deployment counter's series at zero for every
// outcome and kind in each of envs, so that increase() sees the first
// failure after start-up.
func newMetrics(mp metric.MeterProvider, envs []config.Environment) (*metrics, error) {
	in := telemetry.NewInstruments(mp, MeterName)
	m := &metrics{
		deployments: in.Counter(MetricDeployments, "{deployment}",
			"Deployments that reached a final state, by outcome, environment and kind."),
		duration: in.Histogram(MetricDeploymentDuration, "s",
			"Time from the pending record to the final state of a deployment.", deploymentBuckets),
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	for _, e := range envs {
		for _, k := range []store.Kind{store.KindDeploy, store.KindRollback} {
			for _, o := range []DeploymentOutcome{DeploymentLive, DeploymentFailed, DeploymentRejected} {
				m.deployments.Add(context.Background(), 0, attrs(e.Name, k, o))
			}
		}
	}
	return m, nil
}

func attrs(env string, kind store.Kind, outcome DeploymentOutcome) metric.MeasurementOption {
	return metric.WithAttributes(
		attribute.String(AttrOutcome, string(outcome)),
		attribute.String(AttrEnvironment, env),
		attribute.String(AttrKind, string(kind)),
	)
}

// deployment counts d, which reached its final state (err is the error
// its deploy or rollback returns), and records how long it took (not when
// elapsed is negative).
func (m *metrics) deployment(ctx context.Context, d store.Deployment, err error, elapsed time.Duration) {
	outcome := DeploymentLive
	switch {
	case errors.Is(err, backend.ErrRejected):
		outcome = DeploymentRejected
	case err != nil || d.Status != store.StatusLive:
		outcome = DeploymentFailed
	}
	a := attrs(d.Environment, d.Kind, outcome)
	m.deployments.Add(ctx, 1, a)
	if elapsed >= 0 {
		m.duration.Record(ctx, elapsed.Seconds(), a)
	}
}
