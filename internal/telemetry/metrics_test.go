package telemetry_test

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dot-do/platform/internal/telemetry"
)

// TestInstrumentsExposition records on every platform instrument and
// checks the Prometheus names and labels that ops/prometheus/alerts.yml and
// its README rely on.
func TestInstrumentsExposition(t *testing.T) {
	clearOTelEnv(t)
	tel, _ := newTelemetry(t, "all")
	ctx := context.Background()

	am, err := telemetry.NewAuthMetrics(tel.Meter())
	if err != nil {
		t.Fatal(err)
	}
	dm, err := telemetry.NewDeployMetrics(tel.Meter())
	if err != nil {
		t.Fatal(err)
	}
	xm, err := telemetry.NewDispatcherMetrics(tel.Meter())
	if err != nil {
		t.Fatal(err)
	}

	am.RecordAttempt(ctx, telemetry.AuthSuccess)
	am.RecordAttempt(ctx, telemetry.AuthUnauthenticated)
	am.RecordAttempt(ctx, telemetry.AuthUnauthenticated)
	dm.RecordDeployment(ctx, "production", telemetry.KindDeploy, telemetry.DeploymentLive, 1500*time.Millisecond)
	dm.RecordDeployment(ctx, "production", telemetry.KindRollback, telemetry.DeploymentFailed, -1)
	xm.RecordRequest(ctx, "gateway", 200, 3*time.Millisecond)
	xm.RecordRequest(ctx, "", 404, time.Millisecond)
	xm.RecordWorkerNotFound(ctx)
	xm.RecordRequest(ctx, "db", 502, 20*time.Millisecond)
	xm.RecordUpstreamError(ctx, "db")

	f := scrape(t, tel.MetricsHandler())
	checks := []struct {
		family string
		typ    dto.MetricType
		labels map[string]string
		value  float64 // counter value or histogram sample count
	}{
		{"dotdo_auth_attempts_total", dto.MetricType_COUNTER, map[string]string{"outcome": "success"}, 1},
		{"dotdo_auth_attempts_total", dto.MetricType_COUNTER, map[string]string{"outcome": "unauthenticated"}, 2},
		{"dotdo_deployments_total", dto.MetricType_COUNTER, map[string]string{"outcome": "live", "environment": "production", "kind": "deploy"}, 1},
		{"dotdo_deployments_total", dto.MetricType_COUNTER, map[string]string{"outcome": "failed", "environment": "production", "kind": "rollback"}, 1},
		{"dotdo_deployment_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"outcome": "live", "environment": "production", "kind": "deploy"}, 1},
		{"dotdo_dispatcher_requests_total", dto.MetricType_COUNTER, map[string]string{"worker": "gateway", "status": "200"}, 1},
		{"dotdo_dispatcher_requests_total", dto.MetricType_COUNTER, map[string]string{"worker": "", "status": "404"}, 1},
		{"dotdo_dispatcher_requests_total", dto.MetricType_COUNTER, map[string]string{"worker": "db", "status": "502"}, 1},
		{"dotdo_dispatcher_request_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"worker": "gateway"}, 1},
		{"dotdo_dispatcher_worker_not_found_total", dto.MetricType_COUNTER, nil, 1},
		{"dotdo_dispatcher_upstream_errors_total", dto.MetricType_COUNTER, map[string]string{"worker": "db"}, 1},
	}
	for _, c := range checks {
		fam := f[c.family]
		if fam == nil {
			t.Errorf("%s missing from /metrics (have %v)", c.family, names(f))
			continue
		}
		if fam.GetType() != c.typ {
			t.Errorf("%s is a %v, want %v", c.family, fam.GetType(), c.typ)
		}
		var got *dto.Metric
		for _, m := range fam.GetMetric() {
			if matches(labels(m), c.labels) {
				got = m
			}
		}
		if got == nil {
			t.Errorf("%s has no series with %v", c.family, c.labels)
			continue
		}
		var v float64
		switch c.typ {
		case dto.MetricType_COUNTER:
			v = got.GetCounter().GetValue()
		case dto.MetricType_HISTOGRAM:
			v = float64(got.GetHistogram().GetSampleCount())
		}
		if v != c.value {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, v, c.value)
		}
	}
	// A failed rollback without a known start records no duration.
	for _, m := range f["dotdo_deployment_duration_seconds"].GetMetric() {
		if labels(m)["outcome"] == "failed" {
			t.Error("a negative elapsed time was recorded")
		}
	}
}

// matches reports whether have holds every label of want, "" meaning
// absent, as in PromQL.
func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// TestNilMetricsRecordNothing: services may leave their metrics nil.
func TestNilMetricsRecordNothing(t *testing.T) {
	ctx := context.Background()
	var am *telemetry.AuthMetrics
	var dm *telemetry.DeployMetrics
	var xm *telemetry.DispatcherMetrics
	am.RecordAttempt(ctx, telemetry.AuthError)
	dm.RecordDeployment(ctx, "staging", telemetry.KindDeploy, telemetry.DeploymentLive, time.Second)
	xm.RecordRequest(ctx, "w", 200, time.Second)
	xm.RecordWorkerNotFound(ctx)
	xm.RecordUpstreamError(ctx, "w")
}

// TestMetricsOnGlobalMeter: a nil meter means the global meter provider,
// the one Setup installs.
func TestMetricsOnGlobalMeter(t *testing.T) {
	if _, err := telemetry.NewAuthMetrics(nil); err != nil {
		t.Error(err)
	}
	if _, err := telemetry.NewDeployMetrics(nil); err != nil {
		t.Error(err)
	}
	if _, err := telemetry.NewDispatcherMetrics(nil); err != nil {
		t.Error(err)
	}
}

// TestInitSeries: the zero series exist before anything happens.
func TestInitSeries(t *testing.T) {
	clearOTelEnv(t)
	tel, _ := newTelemetry(t, "init")
	ctx := context.Background()
	am, _ := telemetry.NewAuthMetrics(tel.Meter())
	dm, _ := telemetry.NewDeployMetrics(tel.Meter())
	xm, _ := telemetry.NewDispatcherMetrics(tel.Meter())
	am.InitSeries(ctx)
	dm.InitSeries(ctx, "production", "staging")
	xm.InitSeries(ctx, "gateway", "db")

	f := scrape(t, tel.MetricsHandler())
	for family, want := range map[string]int{
		"dotdo_auth_attempts_total":               5,
		"dotdo_deployments_total":                 2 * 2 * 3,
		"dotdo_dispatcher_worker_not_found_total": 1,
		"dotdo_dispatcher_upstream_errors_total":  2,
	} {
		ms := f[family].GetMetric()
		if len(ms) != want {
			t.Errorf("%s: %d series, want %d", family, len(ms), want)
		}
		for _, m := range ms {
			if v := m.GetCounter().GetValue(); v != 0 {
				t.Errorf("%s%v = %v, want 0", family, labels(m), v)
			}
		}
	}
	var nilDM *telemetry.DeployMetrics
	nilDM.InitSeries(ctx, "production")
}
