package telemetry

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Instruments creates the metric instruments of one service on the meter of
// its instrumentation scope, and keeps the first error, so that a service's
// metrics.go declares its instruments one after the other and checks once.
// The instruments themselves, their names, attributes and InitSeries live
// in the service's package (services/<name>/metrics.go); this is only the
// plumbing.
//
// Each service is handed its metric.MeterProvider explicitly (through its
// Config or options, from Telemetry.MeterProvider); a nil provider records
// nothing. No service reads OpenTelemetry's global provider.
type Instruments struct {
	meter metric.Meter
	err   error
}

// NewInstruments returns an Instruments on mp's meter named scope, the
// instrumenting package's import path (Prometheus shows it as the
// otel_scope_name label). A nil mp is a no-op provider.
func NewInstruments(mp metric.MeterProvider, scope string) *Instruments {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	return &Instruments{meter: mp.Meter(scope)}
}

// Counter creates an Int64Counter. Prometheus names it after name with
// dots turned into underscores and "_total" appended; a unit in braces
// ("{request}") adds no suffix.
func (in *Instruments) Counter(name, unit, description string) metric.Int64Counter {
	c, err := in.meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(description))
	if err != nil || c == nil {
		in.fail(name, err)
		if c == nil {
			c = noop.Int64Counter{}
		}
	}
	return c
}

// Histogram creates a Float64Histogram with the given bucket boundaries.
// Prometheus names it after name with dots turned into underscores and the
// unit appended ("_seconds" for "s").
func (in *Instruments) Histogram(name, unit, description string, buckets []float64) metric.Float64Histogram {
	h, err := in.meter.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(description),
		metric.WithExplicitBucketBoundaries(buckets...))
	if err != nil || h == nil {
		in.fail(name, err)
		if h == nil {
			h = noop.Float64Histogram{}
		}
	}
	return h
}

// Err returns the first error met creating an instrument, naming it, or
// nil.
func (in *Instruments) Err() error { return in.err }

func (in *Instruments) fail(name string, err error) {
	if in.err != nil {
		return
	}
	if err == nil {
		err = errors.New("no instrument")
	}
	in.err = fmt.Errorf("telemetry: instrument %s: %w", name, err)
}
