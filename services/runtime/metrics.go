package runtime

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// MeterName is the instrumentation scope of the runtime's metrics.
const MeterName = "github.com/dot-do/platform/services/runtime"

// The runtime's per-worker metrics, recorded on Config.MeterProvider for
// every invocation (a request or a scheduled event) of a stored worker, so
// that label values come from known workers only. Prometheus names in the
// comments; ops/prometheus/alerts.yml uses them.
const (
	// MetricInvocations counts invocations by namespace, worker and
	// outcome (AttrOutcome: ok, exception, exceededCpu, exceededMemory,
	// canceled, error).
	// Prometheus: dotdo_worker_invocations_total{namespace, worker, outcome}.
	MetricInvocations = "dotdo.worker.invocations"
	// MetricDuration is an invocation's wall time, in seconds, by
	// namespace and worker.
	// Prometheus: dotdo_worker_invocation_duration_seconds{namespace, worker}.
	MetricDuration = "dotdo.worker.invocation.duration"
	// MetricExceptions counts invocations that ended with an uncaught
	// exception (or failed to start), by namespace and worker.
	// Prometheus: dotdo_worker_exceptions_total{namespace, worker}.
	MetricExceptions = "dotdo.worker.exceptions"
)

// Attribute keys of the runtime's metrics.
const (
	AttrNamespace = "namespace"
	AttrWorker    = "worker"
	AttrOutcome   = "outcome"
)

// Outcomes lists the values of AttrOutcome.
var Outcomes = []string{workerd.OutcomeOK, workerd.OutcomeException, workerd.OutcomeExceededCPU,
	workerd.OutcomeExceededMemory, workerd.OutcomeCanceled, workerd.OutcomeError}

var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type metrics struct {
	invocations metric.Int64Counter
	duration    metric.Float64Histogram
	exceptions  metric.Int64Counter
	// attrs caches attribute sets by (namespace, worker, outcome); a
	// worker's go when it is deleted (forget, forgetNamespace).
	attrs sync.Map
}

type attrKey struct{ namespace, worker, outcome string }

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	in := telemetry.NewInstruments(mp, MeterName)
	m := &metrics{
		invocations: in.Counter(MetricInvocations, "{invocation}", "Invocations of each worker, by outcome."),
		duration:    in.Histogram(MetricDuration, "s", "Wall time of each worker's invocations.", durationBuckets),
		exceptions:  in.Counter(MetricExceptions, "{invocation}", "Invocations of each worker that ended with an uncaught exception."),
	}
	if err := in.Err(); err != nil {
		return nil, fmt.Errorf("runtime: metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) set(k attrKey) metric.MeasurementOption {
	opt, ok := m.attrs.Load(k)
	if !ok {
		attrs := []attribute.KeyValue{attribute.String(AttrNamespace, k.namespace), attribute.String(AttrWorker, k.worker)}
		if k.outcome != "" {
			attrs = append(attrs, attribute.String(AttrOutcome, k.outcome))
		}
		opt, _ = m.attrs.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(attrs...)))
	}
	return opt.(metric.MeasurementOption)
}

// invocation records one invocation, and reports whether it was the
// first of its worker (since the worker was last forgotten).
func (m *metrics) invocation(inv workerd.Invocation) (first bool) {
	ctx := context.Background()
	ns, w := inv.Key.Namespace, inv.Key.Script
	if _, seen := m.attrs.Load(attrKey{ns, w, ""}); !seen {
		first = true
		m.initSeries(ns, w)
	}
	m.invocations.Add(ctx, 1, m.set(attrKey{ns, w, inv.Outcome}))
	m.duration.Record(ctx, inv.Duration.Seconds(), m.set(attrKey{ns, w, ""}))
	if inv.Outcome == workerd.OutcomeException {
		m.exceptions.Add(ctx, 1, m.set(attrKey{ns, w, ""}))
	}
	return first
}

// initSeries starts the exception counter and the outcome series of a
// worker at zero (at its first invocation), so that rate() and increase()
// see its first failure.
func (m *metrics) initSeries(namespace, worker string) {
	ctx := context.Background()
	for _, o := range Outcomes {
		m.invocations.Add(ctx, 0, m.set(attrKey{namespace, worker, o}))
	}
	m.exceptions.Add(ctx, 0, m.set(attrKey{namespace, worker, ""}))
}

// forget drops the cached attribute sets of a deleted worker. (The meter
// provider keeps the worker's series, at their last values, until the
// process restarts: OpenTelemetry's SDK cannot delete a series.)
func (m *metrics) forget(namespace, worker string) {
	m.attrs.Delete(attrKey{namespace, worker, ""})
	for _, o := range Outcomes {
		m.attrs.Delete(attrKey{namespace, worker, o})
	}
}

// forgetNamespace drops the cached attribute sets of the workers of a
// deleted namespace.
func (m *metrics) forgetNamespace(namespace string) {
	m.attrs.Range(func(k, _ any) bool {
		if k.(attrKey).namespace == namespace {
			m.attrs.Delete(k)
		}
		return true
	})
}
