// Package prometheus_test checks the Prometheus side of the platform's
// operations: the alert rules are valid and pass their promtool unit tests,
// the scrape configuration is valid and reaches every service's metrics
// port, and every metric and label the rules use is one the platform
// emits: the tests scrape what the services' own code (auth, deploy,
// dispatcher, each with its metrics.go) records, so the rules, the README
// and the code cannot drift apart.
package prometheus_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/otelconnect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/deploytest"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
	"github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// promtoolInstall is how to get promtool on Debian and Ubuntu.
const promtoolInstall = "apt-get install -y --no-install-recommends prometheus"

// promtool returns promtool's path, or skips the test with a clear
// message.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("promtool is not installed, so %s did NOT run (install it with `%s`)", t.Name(), promtoolInstall)
	}
	return p
}

func runPromtool(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := runPromtool(t, nil, "check", "rules", "alerts.yml")
	t.Log(out)
}

func TestPromtoolTestRules(t *testing.T) {
	out := runPromtool(t, nil, "test", "rules", "alerts_test.yml")
	t.Log(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	out := runPromtool(t, nil, "check", "config", "prometheus.yml")
	t.Log(out)
}

// TestPromtoolCheckMetrics lints what a service exposes, as Prometheus
// would scrape it.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool(t)
	_, body := emitAll(t)
	// Only the platform's own families: the Go runtime's and
	// OpenTelemetry's target_info follow their own conventions.
	var own bytes.Buffer
	for _, line := range strings.SplitAfter(string(body), "\n") {
		if strings.Contains(line, "dotdo_") || strings.Contains(line, "rpc_") {
			own.WriteString(line)
		}
	}
	out := runPromtool(t, own.Bytes(), "check", "metrics")
	t.Log(out)
}

// alertRules reads alerts.yml.
func alertRules(t *testing.T) []struct{ Alert, Expr string } {
	t.Helper()
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []struct{ Alert, Expr string }
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return rules
}

var (
	// selectorRE finds a metric name followed by its matchers or range.
	selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*(\[[^\]]*\])?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	byRE       = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	wordsRE    = regexp.MustCompile(`^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$`)
)

// selector is one vector selector of a rule.
type selector struct {
	metric   string
	matchers [][3]string // label, op, value
}

// selectors returns the vector selectors of a PromQL expression: the names
// followed by matchers or a range (the rules always have one or the other).
func selectors(expr string) []selector {
	var out []selector
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		if m[2] == "" && m[3] == "" {
			continue // a function, keyword or label name
		}
		s := selector{metric: m[1]}
		for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			s.matchers = append(s.matchers, [3]string{mm[1], mm[2], mm[3]})
		}
		out = append(out, s)
	}
	return out
}

// emitAll runs the services that record the platform's own metrics, each
// on the meter provider of one service's telemetry as boot hands it: auth
// and deploy start their series at zero, deploy makes one deployment, the
// dispatcher answers one request that no rule routes, and the runtime runs
// a worker twice (once throwing). It also makes one
// instrumented Connect call, then returns the parsed and raw scrape of
// /metrics.
func emitAll(t *testing.T) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	ctx := context.Background()
	tel, err := telemetry.New(ctx, "ops-test", telemetry.WithoutRuntimeMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("telemetry Shutdown: %v", err)
		}
	})
	mp := tel.MeterProvider()

	auth.New(sqlitetest.Open(t), auth.WithMeterProvider(mp), auth.WithLogger(testsupport.QuietLogger()))

	authz, keys := deploytest.Auth(t)
	svc, err := deploy.New(deploy.Config{}, authz, deploytest.Store(t), backend.NewMemory(),
		deploy.WithMeterProvider(mp), deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EnsureConfiguredNamespaces(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Deploy(ctx, deploy.Caller{Token: keys.Deployer, Client: "127.0.0.1"}, deploy.DeployInput{
		Service: "gateway", Environment: "production", Script: []byte(`export default { fetch() { return new Response("ok") } }`),
	}); err != nil {
		t.Fatal(err)
	}

	d, err := dispatcher.New(dispatcher.Config{InvokeToken: "ops-test", MeterProvider: mp, Logger: testsupport.QuietLogger()}, nothingLive{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	d.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://nope.do/", nil))

	// The runtime counts each worker's invocations: one ok, one that throws.
	if _, err := workerd.FindBinary("", ""); err != nil {
		t.Skipf("skipping: the runtime's metrics need workerd: %v", err)
	}
	rt, err := runtime.New(ctx, runtime.Config{DataDir: t.TempDir(), APIToken: "ops-api", InvokeToken: "ops-invoke",
		MeterProvider: mp, Logger: testsupport.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rtSrv := httptest.NewServer(rt.Handler())
	defer rtSrv.Close()
	v := dispatchertest.UploadTo(t, rtSrv.URL, "ops-api", "dotdo-production", "gateway",
		`export default { fetch(req) { if (new URL(req.url).pathname === "/throw") throw new Error("x"); return new Response("ok") } }`)
	for _, path := range []string{"/", "/throw"} {
		rt.Invoke(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil), "dotdo-production", "gateway", v, "gateway.do", "https")
	}

	interceptor, err := otelconnect.NewInterceptor(append(tel.OtelconnectOptions(), otelconnect.WithTrustRemote())...)
	if err != nil {
		t.Fatal(err)
	}
	path, h := grpchealth.NewHandler(grpchealth.NewStaticChecker(), connect.WithInterceptors(interceptor))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if _, err := grpchealth.NewClient(srv.Client(), srv.URL).Check(ctx, &grpchealth.CheckRequest{}); err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, telemetry.MetricsPath, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	tel.MetricsHandler().ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families, body
}

// nothingLive is a dispatcher's source of routing state with nothing live
// and no table stored.
type nothingLive struct{}

func (nothingLive) WatchEnvironment(_ context.Context, _ string, fn func(store.WatchEvent) error) error {
	return fn(store.WatchEvent{Snapshot: true})
}

// familyOf maps a series name to its metric family: a histogram's
// _count, _sum and _bucket series belong to the histogram.
func familyOf(families map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := families[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_count", "_sum", "_bucket"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := families[base]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
				return f
			}
		}
	}
	return nil
}

// rpcCodes are the values otelconnect gives rpc_response_status_code.
func rpcCodes() []string {
	codes := []string{"OK"}
	for c := connect.CodeCanceled; c <= connect.CodeUnauthenticated; c++ {
		codes = append(codes, strings.ToUpper(c.String()))
	}
	return codes
}

// TestAlertsUseEmittedMetrics checks every selector of alerts.yml against
// what the platform's instruments really expose: the metric exists, every
// matched label exists on it, every literal value it matches is one the
// platform produces, and every aggregation label exists.
func TestAlertsUseEmittedMetrics(t *testing.T) {
	families, _ := emitAll(t)
	// Labels Prometheus adds itself, and the series it synthesizes.
	scrapeLabels := map[string]bool{"job": true, "instance": true}
	synthetic := map[string]bool{"up": true}

	for _, r := range alertRules(t) {
		sels := selectors(r.Expr)
		if len(sels) == 0 {
			t.Errorf("%s: found no selector in %q", r.Alert, r.Expr)
		}
		var used []*dto.MetricFamily
		for _, s := range sels {
			if synthetic[s.metric] {
				continue
			}
			f := familyOf(families, s.metric)
			if f == nil {
				t.Errorf("%s: %s is not emitted by the platform (see services/<name>/metrics.go)", r.Alert, s.metric)
				continue
			}
			used = append(used, f)
			have := map[string]map[string]bool{}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if have[l.GetName()] == nil {
						have[l.GetName()] = map[string]bool{}
					}
					have[l.GetName()][l.GetValue()] = true
				}
			}
			if f.GetName() == "rpc_server_call_duration_seconds" {
				for _, c := range rpcCodes() {
					have["rpc_response_status_code"][c] = true
				}
			}
			for _, m := range s.matchers {
				label, op, value := m[0], m[1], m[2]
				if scrapeLabels[label] {
					continue
				}
				if have[label] == nil {
					t.Errorf("%s: %s has no label %q", r.Alert, s.metric, label)
					continue
				}
				if (op == "=" || op == "=~") && wordsRE.MatchString(value) {
					for _, v := range strings.Split(value, "|") {
						if !have[label][v] {
							t.Errorf("%s: %s{%s} never takes the value %q", r.Alert, s.metric, label, v)
						}
					}
				}
			}
		}
		for _, m := range byRE.FindAllStringSubmatch(r.Expr, -1) {
			for _, label := range strings.Split(m[1], ",") {
				label = strings.TrimSpace(label)
				for _, f := range used {
					found := false
					for _, s := range f.GetMetric() {
						for _, l := range s.GetLabel() {
							found = found || l.GetName() == label
						}
					}
					if !found {
						t.Errorf("%s: aggregates by %q, which %s does not have", r.Alert, label, f.GetName())
					}
				}
			}
		}
	}
}

// TestDeployAPIMethodMatcher: the Deploy API alert's rpc_method regexp
// matches the methods of DeployService and AdminService and nothing of the
// internal services.
func TestDeployAPIMethodMatcher(t *testing.T) {
	var re *regexp.Regexp
	for _, r := range alertRules(t) {
		if r.Alert != "DeployAPIHighErrorRate" {
			continue
		}
		for _, s := range selectors(r.Expr) {
			for _, m := range s.matchers {
				if m[0] == "rpc_method" && m[1] == "=~" {
					// PromQL string escapes, then Prometheus anchors the regexp.
					unq, err := strconv.Unquote(`"` + m[2] + `"`)
					if err != nil {
						t.Fatal(err)
					}
					re = regexp.MustCompile("^(?:" + unq + ")$")
				}
			}
		}
	}
	if re == nil {
		t.Fatal("DeployAPIHighErrorRate has no rpc_method=~ matcher")
	}
	for _, svc := range []string{deployv1connect.DeployServiceName, deployv1connect.AdminServiceName} {
		if m := svc + "/Deploy"; !re.MatchString(m) {
			t.Errorf("rpc_method matcher %s misses %s", re, m)
		}
	}
	for _, svc := range []string{authv1connect.AuthServiceName, dbv1connect.DBServiceName, dispatcherv1connect.DispatcherServiceName, "grpc.health.v1.Health"} {
		if m := svc + "/Check"; re.MatchString(m) {
			t.Errorf("rpc_method matcher %s also matches %s", re, m)
		}
	}
}

// TestScrapeConfigCoversServices: prometheus.yml scrapes each of the five
// services on the metrics port, under the job name the alerts expect.
func TestScrapeConfigCoversServices(t *testing.T) {
	b, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("rule_files %v does not load alerts.yml", cfg.RuleFiles)
	}
	jobs := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			jobs[sc.JobName] = append(jobs[sc.JobName], s.Targets...)
		}
	}
	port := strconv.Itoa(telemetry.DefaultMetricsPort)
	for _, svc := range []string{"deploy", "auth", "db", "dispatcher", "runtime"} {
		job := telemetry.ServiceNamespace + "-" + svc
		want := svc + ":" + port
		if !slices.Contains(jobs[job], want) {
			t.Errorf("job %s scrapes %v, want %s", job, jobs[job], want)
		}
	}
}

// ownMetricRE finds the platform's own metric names in README.md.
var ownMetricRE = regexp.MustCompile("`(dotdo_[a-z0-9_]+)`")

// TestReadmeListsEmittedMetrics: README.md documents exactly the
// platform's own metric families that the services emit.
func TestReadmeListsEmittedMetrics(t *testing.T) {
	families, _ := emitAll(t)
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range ownMetricRE.FindAllStringSubmatch(string(b), -1) {
		documented[m[1]] = true
	}
	for name := range families {
		if strings.HasPrefix(name, "dotdo_") && !documented[name] {
			t.Errorf("%s is emitted but not documented in README.md", name)
		}
	}
	for name := range documented {
		if familyOf(families, name) == nil {
			t.Errorf("README.md documents %s, which no service emits", name)
		}
	}
}
