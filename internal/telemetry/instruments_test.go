package telemetry_test

import (
	"context"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/telemetry"
)

// TestInstrumentsExposition: instruments made through Instruments reach
// the service's /metrics under the Prometheus names the alert rules are
// written against (dots to underscores, _total on counters, the unit on
// histograms), with the scope they were created in.
func TestInstrumentsExposition(t *testing.T) {
	clearOTelEnv(t)
	tel, _ := newTelemetry(t, "instruments")
	ctx := context.Background()
	in := telemetry.NewInstruments(tel.MeterProvider(), "example.com/svc")
	c := in.Counter("dotdo.test.things", "{thing}", "Things.")
	h := in.Histogram("dotdo.test.thing.duration", "s", "Time per thing.", []float64{0.1, 1})
	if err := in.Err(); err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 2, metric.WithAttributes(attribute.String("kind", "a")))
	h.Record(ctx, 0.5)

	f := scrape(t, tel.MetricsHandler())
	for name, typ := range map[string]dto.MetricType{
		"dotdo_test_things_total":           dto.MetricType_COUNTER,
		"dotdo_test_thing_duration_seconds": dto.MetricType_HISTOGRAM,
	} {
		fam := f[name]
		if fam == nil {
			t.Fatalf("%s missing from /metrics (have %v)", name, names(f))
		}
		if fam.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, fam.GetType(), typ)
		}
		if scope := labels(fam.GetMetric()[0])["otel_scope_name"]; scope != "example.com/svc" {
			t.Errorf("%s has otel_scope_name %q", name, scope)
		}
	}
	if got := f["dotdo_test_things_total"].GetMetric()[0]; labels(got)["kind"] != "a" || got.GetCounter().GetValue() != 2 {
		t.Errorf("dotdo_test_things_total = %v %v, want {kind=a} 2", labels(got), got.GetCounter().GetValue())
	}
}

// TestInstrumentsWithoutProvider: a service handed no provider records
// nowhere, without error and without the global provider.
func TestInstrumentsWithoutProvider(t *testing.T) {
	in := telemetry.NewInstruments(nil, "example.com/svc")
	in.Counter("dotdo.test.things", "{thing}", "Things.").Add(context.Background(), 1)
	in.Histogram("dotdo.test.thing.duration", "s", "Time per thing.", []float64{1}).Record(context.Background(), 1)
	if err := in.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestInstrumentsError: an instrument the SDK refuses is reported, named,
// and the first error is kept.
func TestInstrumentsError(t *testing.T) {
	clearOTelEnv(t)
	tel, _ := newTelemetry(t, "instruments-error")
	in := telemetry.NewInstruments(tel.MeterProvider(), "example.com/svc")
	in.Counter("not a name!", "{thing}", "Bad.").Add(context.Background(), 1)
	in.Counter("also bad!", "{thing}", "Bad.")
	if err := in.Err(); err == nil || !strings.Contains(err.Error(), "not a name!") {
		t.Fatalf("Err() = %v, want the first bad name", err)
	}
}
