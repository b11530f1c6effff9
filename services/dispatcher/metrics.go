package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/telemetry"
)

// MeterName is the instrumentation scope of the dispatcher's metrics (the
// otel_scope_name label of their series).
const MeterName = "github.com/dot-do/platform/services/dispatcher"

// The dispatcher's metrics, recorded on Config.MeterProvider. The comments
// give the names Prometheus sees (dots become underscores, counters end in
// _total, the unit of a histogram is appended); ops/prometheus/alerts.yml
// uses them, and ops/prometheus/README.md documents them. Label values come
// from small fixed sets: allow-listed (or live) worker names, HTTP status
// codes, the error codes and kinds below; never a raw host or path.
const (
	// MetricRequests counts the requests the dispatcher answered, by
	// worker (AttrWorker, "" when no rule picked one) and HTTP status
	// (AttrStatus; StatusClientClosed when the client went away first).
	// Prometheus: dotdo_dispatcher_requests_total{worker, status}.
	MetricRequests = "dotdo.dispatcher.requests"
	// MetricDuration is the time from a request's arrival to the end of
	// its response, in seconds, by worker and status.
	// Prometheus: dotdo_dispatcher_request_duration_seconds{worker, status}.
	MetricDuration = "dotdo.dispatcher.request.duration"
	// MetricNotFound counts the requests the dispatcher answered 404, by
	// reason (AttrReason: ReasonNotFound when no rule routed the request to
	// an allowed worker, ReasonNoLiveVersion when the worker has nothing
	// live). Prometheus: dotdo_dispatcher_worker_not_found_total{reason}.
	MetricNotFound = "dotdo.dispatcher.worker_not_found"
	// MetricUpstreamErrors counts the requests routed to a worker that the
	// runtime did not answer, by worker and kind (AttrKind:
	// UpstreamUnreachable, UpstreamTimeout, UpstreamError). An answer of
	// the runtime, even a 5xx, is the worker's and is not counted.
	// Prometheus: dotdo_dispatcher_upstream_errors_total{worker, kind}.
	MetricUpstreamErrors = "dotdo.dispatcher.upstream_errors"
	// MetricRefreshErrors counts the failed or broken watches of the
	// routing state (live versions and routing table): each one is
	// followed, after a backoff, by a new watch and its snapshot.
	// Prometheus: dotdo_dispatcher_refresh_errors_total.
	MetricRefreshErrors = "dotdo.dispatcher.refresh.errors"
)

// Attribute keys of the dispatcher's metrics (Prometheus label names).
const (
	// AttrWorker is the worker a request was routed to.
	AttrWorker = "worker"
	// AttrStatus is the HTTP status code of the answer.
	AttrStatus = "status"
	// AttrReason is why a request got 404: the code of its JSON error.
	AttrReason = "reason"
	// AttrKind is how the runtime failed a request.
	AttrKind = "kind"
)

// Values of AttrReason: the codes of the dispatcher's 404 answers.
const (
	// ReasonNotFound: no rule routes the request to an allowed worker.
	ReasonNotFound = "not_found"
	// ReasonNoLiveVersion: the worker has no live version.
	ReasonNoLiveVersion = "no_live_version"
)

// Values of AttrKind.
const (
	// UpstreamUnreachable: the runtime could not be reached.
	UpstreamUnreachable = "unreachable"
	// UpstreamTimeout: the runtime did not answer within UpstreamTimeout.
	UpstreamTimeout = "timeout"
	// UpstreamError: the runtime failed while handling the request.
	UpstreamError = "error"
)

// StatusClientClosed is the status recorded (never sent) for a request
// whose client went away before the response started.
const StatusClientClosed = 499

// durationBuckets suit a proxy in front of workers: from 0.25 ms to 30 s.
var durationBuckets = []float64{0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// metrics are the dispatcher's instruments, one set per Dispatcher.
type metrics struct {
	requests       metric.Int64Counter
	duration       metric.Float64Histogram
	notFound       metric.Int64Counter
	upstreamErrors metric.Int64Counter
	refreshErrors  metric.Int64Counter

	// attrs caches the attribute sets of (worker, status), so that the
	// request path builds no set; a worker's go when the routing table
	// drops it (forget).
	attrs sync.Map // attrKey -> metric.MeasurementOption
}

type attrKey struct {
	worker string
	status int
}

// newMetrics creates the dispatcher's instruments on mp (nil: recorded
// nowhere).
func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	in := telemetry.NewInstruments(mp, MeterName)
	m := &metrics{
		requests: in.Counter(MetricRequests, "{request}", "Requests answered by the dispatcher, by worker and status."),
		duration: in.Histogram(MetricDuration, "s", "Time from a request's arrival to the end of its response, by worker and status.",
			durationBuckets),
		notFound:       in.Counter(MetricNotFound, "{request}", "Requests answered 404 by the dispatcher, by reason."),
		upstreamErrors: in.Counter(MetricUpstreamErrors, "{request}", "Requests the runtime did not answer, by worker and kind."),
		refreshErrors:  in.Counter(MetricRefreshErrors, "{error}", "Failed or broken watches of the routing state."),
	}
	if err := in.Err(); err != nil {
		return nil, fmt.Errorf("dispatcher: metrics: %w", err)
	}
	return m, nil
}

// initSeries creates the error counters' series at zero (the upstream
// errors for each of workers, the allow-list), so that rate() and
// increase() see the first error after start-up.
func (m *metrics) initSeries(ctx context.Context, workers []string) {
	for _, r := range []string{ReasonNotFound, ReasonNoLiveVersion} {
		m.notFound.Add(ctx, 0, metric.WithAttributes(attribute.String(AttrReason, r)))
	}
	for _, w := range workers {
		for _, k := range []string{UpstreamUnreachable, UpstreamTimeout, UpstreamError} {
			m.upstreamErrors.Add(ctx, 0, metric.WithAttributes(attribute.String(AttrWorker, w), attribute.String(AttrKind, k)))
		}
	}
	m.refreshErrors.Add(ctx, 0)
}

// request records one finished request.
func (m *metrics) request(ctx context.Context, worker string, status int, elapsed time.Duration) {
	k := attrKey{worker, status}
	opt, ok := m.attrs.Load(k)
	if !ok {
		opt, _ = m.attrs.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String(AttrWorker, worker), attribute.Int(AttrStatus, status))))
	}
	o := opt.(metric.MeasurementOption)
	m.requests.Add(ctx, 1, o)
	m.duration.Record(ctx, elapsed.Seconds(), o)
}

// forget drops the cached attribute sets of workers, which the routing
// table no longer names. (The meter provider keeps their series at their
// last values: OpenTelemetry's SDK cannot delete a series.)
func (m *metrics) forget(workers []string) {
	if len(workers) == 0 {
		return
	}
	gone := make(map[string]bool, len(workers))
	for _, w := range workers {
		gone[w] = true
	}
	m.attrs.Range(func(k, _ any) bool {
		if gone[k.(attrKey).worker] {
			m.attrs.Delete(k)
		}
		return true
	})
}

// notFoundReason counts one 404 answer of the dispatcher's.
func (m *metrics) notFoundReason(ctx context.Context, reason string) {
	m.notFound.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrReason, reason)))
}

// upstreamError counts one request to worker that the runtime failed.
func (m *metrics) upstreamError(ctx context.Context, worker, kind string) {
	m.upstreamErrors.Add(ctx, 1, metric.WithAttributes(attribute.String(AttrWorker, worker), attribute.String(AttrKind, kind)))
}
