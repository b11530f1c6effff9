package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/telemetry"
)

// MeterName is the instrumentation scope of the dispatcher's metrics.
const MeterName = "github.com/dot-do/platform/services/dispatcher"

// Metric names, recorded through the global MeterProvider (otel.Meter).
const (
	// MetricRequests counts requests by worker ("" when none was picked)
	// and HTTP status.
	MetricRequests = "dotdo.dispatcher.requests"
	// MetricDuration is the time from a request's arrival to the end of its
	// response, in seconds, by worker and status.
	MetricDuration = "dotdo.dispatcher.request.duration"
	// MetricNotFound counts requests answered 404 by the dispatcher, by
	// reason (the error code). The alert rules read it by this name.
	MetricNotFound = telemetry.MetricDispatcherWorkerNotFound
	// MetricUpstreamErrors counts requests the runtime did not answer, by
	// worker and kind (unreachable, timeout, error). The alert rules read
	// it by this name.
	MetricUpstreamErrors = telemetry.MetricDispatcherUpstreamErrors
	// MetricRefreshErrors counts failed reads of the live versions.
	MetricRefreshErrors = "dotdo.dispatcher.refresh.errors"
)

// StatusClientClosed is the status recorded (never sent) for a request
// whose client went away before the response started.
const StatusClientClosed = 499

// durationBuckets suit a proxy in front of workers: from 0.25 ms to 30 s.
var durationBuckets = []float64{0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

type metrics struct {
	requests       metric.Int64Counter
	duration       metric.Float64Histogram
	notFound       metric.Int64Counter
	upstreamErrors metric.Int64Counter
	refreshErrors  metric.Int64Counter

	// attrs caches the attribute sets of (worker, status), so that the
	// request path builds no set.
	attrs sync.Map // attrKey -> metric.MeasurementOption
}

type attrKey struct {
	worker string
	status int
}

func newMetrics() (*metrics, error) {
	m := otel.Meter(MeterName)
	var err error
	var errs [5]error
	out := &metrics{}
	out.requests, errs[0] = m.Int64Counter(MetricRequests, metric.WithDescription("Requests by worker and status."), metric.WithUnit("{request}"))
	out.duration, errs[1] = m.Float64Histogram(MetricDuration, metric.WithDescription("Request duration through the dispatcher."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...))
	out.notFound, errs[2] = m.Int64Counter(MetricNotFound, metric.WithDescription("Requests answered 404 by the dispatcher, by reason."), metric.WithUnit("{request}"))
	out.upstreamErrors, errs[3] = m.Int64Counter(MetricUpstreamErrors, metric.WithDescription("Requests the runtime did not answer, by worker and kind."), metric.WithUnit("{request}"))
	out.refreshErrors, errs[4] = m.Int64Counter(MetricRefreshErrors, metric.WithDescription("Failed reads of the live versions."), metric.WithUnit("{error}"))
	for _, e := range errs {
		if e != nil && err == nil {
			err = fmt.Errorf("dispatcher: metrics: %w", e)
		}
	}
	return out, err
}

// request records one finished request.
func (m *metrics) request(ctx context.Context, worker string, status int, elapsed time.Duration) {
	k := attrKey{worker, status}
	opt, ok := m.attrs.Load(k)
	if !ok {
		opt, _ = m.attrs.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("worker", worker), attribute.Int("status", status))))
	}
	o := opt.(metric.MeasurementOption)
	m.requests.Add(ctx, 1, o)
	m.duration.Record(ctx, elapsed.Seconds(), o)
}

func (m *metrics) notFoundReason(ctx context.Context, code string) {
	m.notFound.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", code)))
}

func (m *metrics) upstreamError(ctx context.Context, worker, kind string) {
	m.upstreamErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("worker", worker), attribute.String("kind", kind)))
}
