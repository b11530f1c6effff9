// Package telemetrytest reads back, in tests, the metrics a service
// records on the meter provider it is handed.
package telemetrytest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Recorder is a MeterProvider whose recorded values a test collects: hand
// it to a service as its provider, then call Collect.
type Recorder struct {
	*sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	reader := sdkmetric.NewManualReader()
	return &Recorder{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), reader: reader}
}

// Values are the collected data points of a Recorder.
type Values struct {
	// Points holds each series' value (a counter's sum, a histogram's
	// sample count) by "name key=value key=value ..." with the attributes
	// sorted by key: "dotdo.dispatcher.requests status=404 worker=db".
	Points map[string]int64
	// Scopes holds the instrumentation scope of each metric, by name.
	Scopes map[string]string
}

// Total returns the sum of the values of every series of the metric name.
func (v Values) Total(name string) int64 {
	var n int64
	for k, p := range v.Points {
		if k == name || strings.HasPrefix(k, name+" ") {
			n += p
		}
	}
	return n
}

// Expect reports, as errors of t, every series of want (keys as in
// Points) that is missing or whose value differs: a want of 0 asks for a
// series that exists at zero.
func (v Values) Expect(t testing.TB, want map[string]int64) {
	t.Helper()
	for key, n := range want {
		if got, ok := v.Points[key]; !ok || got != n {
			t.Errorf("%s = %d (present: %t), want %d; all: %v", key, got, ok, n, v.Points)
		}
	}
}

// Collect reads every metric recorded so far.
func (r *Recorder) Collect(t testing.TB) Values {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	v := Values{Points: map[string]int64{}, Scopes: map[string]string{}}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			v.Scopes[m.Name] = sm.Scope.Name
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range data.DataPoints {
					v.Points[key(m.Name, p.Attributes.ToSlice())] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range data.DataPoints {
					v.Points[key(m.Name, p.Attributes.ToSlice())] += int64(p.Count)
				}
			}
		}
	}
	return v
}

func key(name string, attrs []attribute.KeyValue) string {
	var b strings.Builder
	b.WriteString(name)
	for _, kv := range attrs {
		b.WriteString(" " + string(kv.Key) + "=" + kv.Value.String())
	}
	return b.String()
}
