package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/otelconnect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/internal/testsupport"
)

// clearOTelEnv unsets every variable that could make a test export spans
// somewhere or sample differently.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(k, "")
	}
}

// newTelemetry builds a non-global Telemetry for service with a span
// recorder.
func newTelemetry(t *testing.T, service string, opts ...telemetry.Option) (*telemetry.Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), service, append([]telemetry.Option{telemetry.WithSpanProcessor(rec), telemetry.WithoutRuntimeMetrics()}, opts...)...)
	if err != nil {
		t.Fatalf("New(%q): %v", service, err)
	}
	shutdownAtEnd(t, tel, context.Background())
	return tel, rec
}

// shutdownAtEnd shuts tel down with ctx when t ends, and fails t when that
// fails.
func shutdownAtEnd(t *testing.T, tel *telemetry.Telemetry, ctx context.Context) {
	t.Helper()
	t.Cleanup(func() {
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// h2cClient speaks HTTP/2 without TLS, as the platform's services do.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// startServer serves one Connect handler over HTTP/1.1 and h2c.
func startServer(t *testing.T, path string, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewUnstartedServer(mux)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// interceptor builds an otelconnect interceptor as package rpc does:
// handlers trust the caller's trace context.
func interceptor(t *testing.T, handler bool, opts ...otelconnect.Option) connect.Interceptor {
	t.Helper()
	if handler {
		opts = append(opts, otelconnect.WithTrustRemote())
	}
	i, err := otelconnect.NewInterceptor(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// forwardingChecker answers a health check by asking the next service.
type forwardingChecker struct{ next *grpchealth.Client }

func (c forwardingChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	return c.next.Check(ctx, req)
}

// chain starts service B (a plain health handler) and service A, whose
// health handler calls B, each instrumented with opts(name). It returns A's
// URL.
func chain(t *testing.T, opts func(service string) []otelconnect.Option) string {
	t.Helper()
	bPath, bHandler := grpchealth.NewHandler(grpchealth.NewStaticChecker(),
		connect.WithInterceptors(interceptor(t, true, opts("b")...)))
	bURL := startServer(t, bPath, bHandler)
	// A calls B over gRPC on h2c, as deploy calls auth and db.
	toB := grpchealth.NewClient(h2cClient(), bURL, connect.WithGRPC(),
		connect.WithInterceptors(interceptor(t, false, opts("a")...)))
	aPath, aHandler := grpchealth.NewHandler(forwardingChecker{toB},
		connect.WithInterceptors(interceptor(t, true, opts("a")...)))
	return startServer(t, aPath, aHandler)
}

func serviceOf(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Resource().Attributes() {
		if kv.Key == "service.name" {
			return kv.Value.AsString()
		}
	}
	return ""
}

func findSpan(t *testing.T, spans []sdktrace.ReadOnlySpan, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %v span, got %d of %d spans", kind, len(found), len(spans))
	}
	return found[0]
}

// TestOneTraceAcrossServices calls A, whose handler calls B, each service
// with its own providers (as in `dotdo dev`), and checks that the four
// spans form one trace: caller -> A server -> A client -> B server.
func TestOneTraceAcrossServices(t *testing.T) {
	clearOTelEnv(t)
	tels := map[string]*telemetry.Telemetry{}
	recs := map[string]*tracetest.SpanRecorder{}
	for _, name := range []string{"caller", "a", "b"} {
		tels[name], recs[name] = newTelemetry(t, name)
	}
	aURL := chain(t, func(s string) []otelconnect.Option { return tels[s].OtelconnectOptions() })

	client := grpchealth.NewClient(http.DefaultClient, aURL,
		connect.WithInterceptors(interceptor(t, false, tels["caller"].OtelconnectOptions()...)))
	res, err := client.Check(context.Background(), &grpchealth.CheckRequest{})
	if err != nil {
		t.Fatalf("Check through A: %v", err)
	}
	if res.Status != grpchealth.StatusServing {
		t.Fatalf("status %v, want SERVING", res.Status)
	}

	caller := findSpan(t, recs["caller"].Ended(), trace.SpanKindClient)
	aServer := findSpan(t, recs["a"].Ended(), trace.SpanKindServer)
	aClient := findSpan(t, recs["a"].Ended(), trace.SpanKindClient)
	bServer := findSpan(t, recs["b"].Ended(), trace.SpanKindServer)

	traceID := caller.SpanContext().TraceID()
	if !traceID.IsValid() {
		t.Fatal("caller span has no trace id")
	}
	links := []struct {
		name          string
		child, parent sdktrace.ReadOnlySpan
		service       string
	}{
		{"A server <- caller", aServer, caller, "dotdo-a"},
		{"A client <- A server", aClient, aServer, "dotdo-a"},
		{"B server <- A client", bServer, aClient, "dotdo-b"},
	}
	for _, l := range links {
		if got := l.child.SpanContext().TraceID(); got != traceID {
			t.Errorf("%s: trace id %s, want %s", l.name, got, traceID)
		}
		if got, want := l.child.Parent().SpanID(), l.parent.SpanContext().SpanID(); got != want {
			t.Errorf("%s: parent span %s, want %s", l.name, got, want)
		}
		if got := serviceOf(l.child); got != l.service {
			t.Errorf("%s: service.name %q, want %q", l.name, got, l.service)
		}
		if got, want := l.child.Name(), "grpc.health.v1.Health/Check"; got != want {
			t.Errorf("%s: span name %q, want %q", l.name, got, want)
		}
	}
	if !bServer.Parent().IsRemote() || !aServer.Parent().IsRemote() {
		t.Error("server spans should have remote parents (propagated over the wire)")
	}
}

// TestSetupInstallsGlobals checks the production wiring: Setup, then
// otelconnect interceptors with default options (as package rpc builds
// them) trace through the globals and feed /metrics.
func TestSetupInstallsGlobals(t *testing.T) {
	clearOTelEnv(t)
	oldTP, oldMP, oldProp, oldEH := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator(), otel.GetErrorHandler()
	t.Cleanup(func() {
		otel.SetTracerProvider(oldTP)
		otel.SetMeterProvider(oldMP)
		otel.SetTextMapPropagator(oldProp)
		otel.SetErrorHandler(oldEH)
	})
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.Setup(context.Background(), "deploy", telemetry.WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	shutdownAtEnd(t, tel, context.Background())
	if got := otel.GetTracerProvider(); got != tel.TracerProvider() {
		t.Fatalf("global tracer provider is %T, not Setup's", got)
	}
	if tel.TraceExporter() != telemetry.ExporterNone {
		t.Errorf("TraceExporter() = %q without OTEL endpoint, want none", tel.TraceExporter())
	}
	fields := otel.GetTextMapPropagator().Fields()
	slices.Sort(fields)
	if strings.Join(fields, ",") != "baggage,traceparent,tracestate" {
		t.Errorf("propagator fields %v, want traceparent, tracestate, baggage", fields)
	}

	noOpts := func(string) []otelconnect.Option { return nil }
	aURL := chain(t, noOpts)
	client := grpchealth.NewClient(http.DefaultClient, aURL, connect.WithInterceptors(interceptor(t, false)))
	if _, err := client.Check(context.Background(), &grpchealth.CheckRequest{}); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("recorded %d spans, want 4", len(spans))
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != spans[0].SpanContext().TraceID() {
			t.Errorf("span %s %v is in another trace", s.Name(), s.SpanKind())
		}
		if got := serviceOf(s); got != "dotdo-deploy" {
			t.Errorf("service.name %q, want dotdo-deploy", got)
		}
	}

	families := scrape(t, tel.MetricsHandler())
	h := families["rpc_server_call_duration_seconds"]
	if h == nil || h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no rpc_server_call_duration_seconds histogram in /metrics; have %v", names(families))
	}
	// Two server calls: caller -> A over Connect, A -> B over gRPC
	// (rpc_system_name tells the protocols apart).
	var calls uint64
	for _, m := range h.GetMetric() {
		l := labels(m)
		if l["rpc_method"] == "grpc.health.v1.Health/Check" && l["rpc_response_status_code"] == "OK" {
			calls += m.GetHistogram().GetSampleCount()
		}
	}
	if calls != 2 {
		t.Errorf("rpc_server_call_duration_seconds counts %d Health/Check OK calls, want 2: %v", calls, h)
	}
	if families["rpc_client_call_duration_seconds"] == nil {
		t.Error("no rpc_client_call_duration_seconds in /metrics")
	}
	if families["go_goroutines"] == nil {
		t.Error("no go runtime metrics in /metrics")
	}
	ti := families["target_info"]
	if ti == nil || labels(ti.GetMetric()[0])["service_name"] != "dotdo-deploy" {
		t.Errorf("target_info should name service dotdo-deploy: %v", ti)
	}
}

// TestOTLPExportFromEnvironment exports to a fake OTLP/HTTP collector named
// by OTEL_EXPORTER_OTLP_ENDPOINT and checks the resource it receives.
func TestOTLPExportFromEnvironment(t *testing.T) {
	clearOTelEnv(t)
	const secret = "dotdo_internal_not-a-real-secret-0123456789"
	t.Setenv("DOTDO_INTERNAL_TOKEN", secret)
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	t.Setenv("OTEL_SERVICE_NAME", "not-this")

	var mu sync.Mutex
	var got []*coltracepb.ExportTraceServiceRequest
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out) // the exporter reports a short answer itself
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	tel, err := telemetry.New(context.Background(), "auth", telemetry.WithVersion("v1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	if tel.TraceExporter() != telemetry.ExporterOTLPHTTP {
		t.Fatalf("TraceExporter() = %q, want %q", tel.TraceExporter(), telemetry.ExporterOTLPHTTP)
	}
	_, span := tel.Tracer().Start(context.Background(), "work")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("collector received nothing")
	}
	rs := got[0].GetResourceSpans()[0]
	attrs := map[string]string{}
	for _, kv := range rs.GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		if strings.Contains(kv.GetValue().String(), secret) {
			t.Errorf("resource attribute %s carries a secret", kv.GetKey())
		}
		if strings.HasPrefix(kv.GetKey(), "process.command") {
			t.Errorf("resource has %s, which can carry secrets", kv.GetKey())
		}
	}
	want := map[string]string{
		"service.name":                "dotdo-auth",
		"service.namespace":           "dotdo",
		"service.version":             "v1.2.3",
		"deployment.environment.name": "test",
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("resource %s = %q, want %q (all: %v)", k, attrs[k], v, attrs)
		}
	}
	if n := rs.GetScopeSpans()[0].GetSpans()[0].GetName(); n != "work" {
		t.Errorf("exported span %q, want work", n)
	}
}

// TestNoExporterStillTraces: without OTLP settings nothing is exported and
// nothing is recorded, but spans have ids, so that logs carry trace ids and
// calls propagate them; a caller's sampled trace still records.
func TestNoExporterStillTraces(t *testing.T) {
	clearOTelEnv(t)
	tel, err := telemetry.New(context.Background(), "db")
	if err != nil {
		t.Fatal(err)
	}
	shutdownAtEnd(t, tel, context.Background())
	if tel.TraceExporter() != telemetry.ExporterNone {
		t.Fatalf("TraceExporter() = %q, want none", tel.TraceExporter())
	}
	ctx, span := tel.Tracer().Start(context.Background(), "work")
	defer span.End()
	sc := span.SpanContext()
	if !sc.IsValid() || sc.IsSampled() || span.IsRecording() {
		t.Fatalf("span context %v (recording %v): want valid, and not sampled when nothing reads spans", sc, span.IsRecording())
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: sc.SpanID(), TraceFlags: trace.FlagsSampled, Remote: true})
	_, child := tel.Tracer().Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "child")
	if !child.SpanContext().IsSampled() {
		t.Error("a sampled caller's trace does not record")
	}
	child.End()
	carrier := propagation.HeaderCarrier{}
	tel.Propagator().Inject(ctx, carrier)
	if tp := carrier.Get("traceparent"); !strings.Contains(tp, sc.TraceID().String()) {
		t.Errorf("traceparent %q does not carry trace %s", tp, sc.TraceID())
	}
}

// TestSamplerFromEnvironment: OTEL_TRACES_SAMPLER is honoured.
func TestSamplerFromEnvironment(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	tel, rec := newTelemetry(t, "runtime")
	_, span := tel.Tracer().Start(context.Background(), "work")
	span.End()
	if sc := span.SpanContext(); !sc.TraceID().IsValid() || sc.IsSampled() {
		t.Errorf("always_off: span context %v, want a trace id and not sampled", sc)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("always_off recorded %d spans", n)
	}
}

func TestExporterChoice(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"nothing set", nil, telemetry.ExporterNone, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, telemetry.ExporterOTLPHTTP, ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, telemetry.ExporterOTLPGRPC, ""},
		{"traces protocol wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, telemetry.ExporterOTLPHTTP, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}, telemetry.ExporterNone, ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}, telemetry.ExporterNone, ""},
		{"otlp without endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, telemetry.ExporterOTLPHTTP, ""},
		{"unsupported exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "", "zipkin"},
		{"unsupported protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "", "http/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			tel, err := telemetry.New(context.Background(), "x", telemetry.WithoutRuntimeMetrics())
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Nothing was exported, so shutting down must not wait on the
			// unreachable endpoint.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t.Cleanup(cancel)
			shutdownAtEnd(t, tel, ctx)
			if got := tel.TraceExporter(); got != c.want {
				t.Errorf("TraceExporter() = %q, want %q", got, c.want)
			}
		})
	}
}

func TestNewRejectsEmptyName(t *testing.T) {
	if _, err := telemetry.New(context.Background(), ""); err == nil {
		t.Fatal("New with an empty service name succeeded")
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	clearOTelEnv(t)
	tel, err := telemetry.New(context.Background(), "x", telemetry.WithoutRuntimeMetrics())
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestServeMetrics(t *testing.T) {
	clearOTelEnv(t)
	tel, _ := newTelemetry(t, "dispatcher")
	// Serve's cleanup cancels the context and fails the test unless
	// ServeMetrics then returns nil.
	base := testsupport.Serve(t, testsupport.ServeFunc(tel.ServeMetrics))

	res, err := http.Get(base + telemetry.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "target_info") {
		t.Errorf("GET /metrics: %d %q", res.StatusCode, body)
	}
	res, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404 (only /metrics is served)", res.StatusCode)
	}
}

func TestListenAndServeMetricsBadAddr(t *testing.T) {
	clearOTelEnv(t)
	tel, _ := newTelemetry(t, "x")
	err := tel.ListenAndServeMetrics(context.Background(), "256.0.0.1:http")
	if err == nil {
		t.Fatal("want a listen error")
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("error %v does not wrap the listen error", err)
	}
}

// scrape reads h as Prometheus does and parses the text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, telemetry.MetricsPath, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func names(f map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	return out
}
