package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestDevExportsDispatcherMetrics: under `dotdo dev`, after requests
// through the dispatcher to a deployed worker, to an unknown worker and to
// a host no rule routes, the dispatcher's series (the ones the alert rules
// of ops/prometheus read) are on its /metrics, scraped over HTTP as
// Prometheus does, with their labels and counts; the deployment is on the
// deploy service's.
func TestDevExportsDispatcherMetrics(t *testing.T) {
	need(t)
	ok(t, "deploy", "--service", "queue", "--env", "production", "--file", writeWorker(t, "queue"))
	get := func(host string) int {
		t.Helper()
		status, _ := send(t, http.MethodGet, host, "/probe", "")
		return status
	}
	for deadline := time.Now().Add(10 * time.Second); get("queue.do") != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatal("queue.do never answered 200 through the dispatcher")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, host := range []string{"nope.do", "nowhere.example"} {
		if s := get(host); s != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", host, s)
		}
	}

	disp := scrapeMetrics(t, platform.operatorURL) // the operator listener, not the public one
	for _, c := range []struct {
		family string
		labels map[string]string
		min    float64 // counter value or histogram sample count
	}{
		{"dotdo_dispatcher_requests_total", map[string]string{"worker": "queue", "status": "200"}, 1},
		{"dotdo_dispatcher_requests_total", map[string]string{"worker": "", "status": "404"}, 2},
		{"dotdo_dispatcher_request_duration_seconds", map[string]string{"worker": "queue", "status": "200"}, 1},
		{"dotdo_dispatcher_worker_not_found_total", map[string]string{"reason": "not_found"}, 2},
		// Started at zero for the allow-listed workers: present, not counted.
		{"dotdo_dispatcher_upstream_errors_total", map[string]string{"worker": "queue", "kind": "unreachable"}, 0},
	} {
		m := findSeries(t, disp, c.family, c.labels)
		if m == nil {
			continue
		}
		v := m.GetCounter().GetValue()
		if m.GetHistogram() != nil {
			v = float64(m.GetHistogram().GetSampleCount())
		}
		if v < c.min || (c.min == 0 && v != 0) {
			t.Errorf("%s%v = %v, want at least %v", c.family, c.labels, v, c.min)
		}
		if scope := labelsOf(m)["otel_scope_name"]; scope != "github.com/dot-do/platform/services/dispatcher" {
			t.Errorf("%s%v has otel_scope_name %q", c.family, c.labels, scope)
		}
	}

	dep := scrapeMetrics(t, platform.apiURL)
	if m := findSeries(t, dep, "dotdo_deployments_total", map[string]string{"outcome": "live", "environment": "production", "kind": "deploy"}); m != nil && m.GetCounter().GetValue() < 1 {
		t.Errorf("dotdo_deployments_total{live, production, deploy} = %v, want at least 1", m.GetCounter().GetValue())
	}
	for name := range dep {
		if strings.HasPrefix(name, "dotdo_dispatcher_") {
			t.Errorf("the deploy service's /metrics has the dispatcher's %s", name)
		}
	}
}

// scrapeMetrics reads base's /metrics as Prometheus does.
func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s/metrics: %d %s", base, res.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", base, err)
	}
	return families
}

// findSeries returns the series of family whose labels include want ("":
// the label is absent or empty, as in PromQL), or reports its absence.
func findSeries(t *testing.T, families map[string]*dto.MetricFamily, family string, want map[string]string) *dto.Metric {
	t.Helper()
	f := families[family]
	if f == nil {
		var have []string
		for name := range families {
			if strings.HasPrefix(name, "dotdo_") {
				have = append(have, name)
			}
		}
		t.Errorf("no %s on /metrics (the platform's there: %v)", family, have)
		return nil
	}
	for _, m := range f.GetMetric() {
		l := labelsOf(m)
		match := true
		for k, v := range want {
			match = match && l[k] == v
		}
		if match {
			return m
		}
	}
	t.Errorf("%s has no series with %v", family, want)
	return nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
