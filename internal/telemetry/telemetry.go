// Package telemetry sets up OpenTelemetry for the platform's binaries:
// tracing that follows a request across services (W3C trace context and
// baggage), exported over OTLP only when the standard OTEL_* environment
// asks for it, and metrics exposed for Prometheus at /metrics from a
// registry of the service's own.
//
// A binary calls Setup once, before it builds its Connect handlers and
// clients, and Shutdown on its way out:
//
//	tel, err := telemetry.Setup(ctx, "deploy", telemetry.WithLogger(logger))
//	if err != nil { ... }
//	defer tel.Shutdown(context.WithoutCancel(ctx))
//	if addr := os.Getenv(telemetry.EnvMetricsAddr); addr != "" {
//		go tel.ListenAndServeMetrics(ctx, addr) // its own port, off the public one
//	} else {
//		srv.Handle(telemetry.MetricsPath, tel.MetricsHandler())
//	}
//
// The interceptors of package rpc (otelconnect) then use the global
// providers that Setup installed. Plain HTTP handlers and clients (the
// dispatcher's proxy, the runtime's API) are wrapped with HTTPHandler,
// PublicHTTPHandler and HTTPTransport. Where several services share one
// process (`dotdo dev`), each may instead get a Telemetry of its own from
// New and pass OtelconnectOptions to its interceptors, so that every span
// and every series names the service that produced it.
//
// The platform's own metrics live with the services that record them
// (services/<name>/metrics.go: their names, attributes and the series they
// start at zero), created through Instruments on the MeterProvider each
// service is handed explicitly: no service records on the global provider.
// ops/prometheus/alerts.yml uses their names.
//
// Environment honoured (see the OpenTelemetry specification for each):
//
//   - OTEL_TRACES_EXPORTER: "otlp" or "none". When unset, spans are exported
//     over OTLP if OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and nowhere otherwise.
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: "http/protobuf" (the default) or
//     "grpc".
//   - OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,
//     INSECURE,CERTIFICATE,...}: read by the exporter itself.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: the sampler; the default
//     is parentbased_always_on when spans go somewhere (an exporter or a span
//     processor), else parentbased_always_off: trace ids still exist for
//     logs and propagation, and nothing that no one reads is recorded.
//   - OTEL_BSP_*: the batch span processor.
//   - OTEL_RESOURCE_ATTRIBUTES: extra resource attributes, for example
//     deployment.environment.name=staging. OTEL_SERVICE_NAME is ignored:
//     service.name is always "dotdo-<service>".
//   - OTEL_SDK_DISABLED=true: nothing is exported (trace ids still exist,
//     for logs and propagation).
//
// The resource carries service.name, service.namespace ("dotdo"),
// service.version when the build knows one, the SDK's description and the
// host name. It never carries the process's command line or environment,
// which can hold secrets.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ServiceNamespace is the service.namespace of every platform service, and
// the prefix of its service.name ("dotdo-deploy").
const ServiceNamespace = "dotdo"

// InstrumentationName names the tracer of the platform's own spans
// (Tracer). The services' metrics are recorded on meters named after their
// packages (see Instruments).
const InstrumentationName = "github.com/dot-do/platform"

// MetricsPath is where a service serves its Prometheus metrics.
const MetricsPath = "/metrics"

// EnvMetricsAddr is the environment variable the binaries read for a
// dedicated metrics listener (see ListenAndServeMetrics). docker-compose.yml
// sets it to 0.0.0.0:9464 on every service.
const EnvMetricsAddr = "DOTDO_METRICS_ADDR"

// DefaultMetricsPort is the port of the dedicated metrics listener in
// docker-compose.yml and ops/prometheus/prometheus.yml (the port the
// OpenTelemetry Prometheus exporter conventionally uses).
const DefaultMetricsPort = 9464

// Trace exporter names, as TraceExporter reports them.
const (
	ExporterNone     = "none"
	ExporterOTLPHTTP = "otlp/http"
	ExporterOTLPGRPC = "otlp/grpc"
	ExporterCustom   = "custom" // WithSpanExporter
)

// Telemetry is one service's OpenTelemetry: its tracer and meter providers,
// propagator and Prometheus registry.
type Telemetry struct {
	service    string
	resource   *resource.Resource
	tp         *sdktrace.TracerProvider
	mp         *sdkmetric.MeterProvider
	propagator propagation.TextMapPropagator
	// traceHeaders are the propagator's headers, canonical.
	traceHeaders []string
	registry     *prometheus.Registry
	metrics      http.Handler
	exporter     string
	logger       *slog.Logger

	shutdownOnce sync.Once
	shutdownErr  error
}

type options struct {
	version        string
	attrs          []attribute.KeyValue
	spanProcessors []sdktrace.SpanProcessor
	spanExporter   sdktrace.SpanExporter
	logger         *slog.Logger
	noRuntime      bool
}

// Option configures New and Setup.
type Option func(*options)

// WithVersion sets service.version; by default it is the main module's
// version from the build information, when the build has one.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithAttributes adds resource attributes. They must not be secrets.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(o *options) { o.attrs = append(o.attrs, attrs...) }
}

// WithSpanProcessor adds a span processor next to the exporter chosen from
// the environment, for example tracetest.NewSpanRecorder() in tests.
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.spanProcessors = append(o.spanProcessors, sp) }
}

// WithSpanExporter exports spans to e (batched) instead of the exporter the
// environment would choose.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.spanExporter = e }
}

// WithLogger sets the logger on which Setup reports the chosen exporter and
// on which OpenTelemetry's internal errors (a collector that cannot be
// reached, say) are logged once Install has run; slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithoutRuntimeMetrics leaves the Go runtime and process collectors
// (go_*, process_*) out of the registry.
func WithoutRuntimeMetrics() Option { return func(o *options) { o.noRuntime = true } }

// Setup builds the service's telemetry with New and installs it as
// OpenTelemetry's global tracer provider, meter provider and propagator, so
// that otelconnect's interceptors (and otel.Tracer, otel.Meter) use it.
// service is the short name ("deploy"); service.name becomes
// "dotdo-deploy". Call Shutdown before the process exits, to flush spans.
func Setup(ctx context.Context, service string, opts ...Option) (*Telemetry, error) {
	t, err := New(ctx, service, opts...)
	if err != nil {
		return nil, err
	}
	t.Install()
	return t, nil
}

// New builds the service's telemetry without touching the globals: a
// TracerProvider that always records (so that trace ids exist for logs and
// propagation) and exports as the environment says, the W3C trace context
// and baggage propagator, and a MeterProvider read by a Prometheus exporter
// registered on a registry of its own (served by MetricsHandler).
func New(ctx context.Context, service string, opts ...Option) (*Telemetry, error) {
	if service == "" {
		return nil, errors.New("telemetry: empty service name")
	}
	o := options{logger: slog.Default(), version: buildVersion()}
	for _, f := range opts {
		f(&o)
	}
	res, err := newResource(ctx, service, o)
	if err != nil {
		return nil, err
	}

	t := &Telemetry{
		service:    service,
		resource:   res,
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		logger:     o.logger,
	}
	for _, f := range t.propagator.Fields() {
		t.traceHeaders = append(t.traceHeaders, http.CanonicalHeaderKey(f))
	}

	// Traces.
	exporter, name, err := spanExporter(ctx, o)
	if err != nil {
		return nil, err
	}
	t.exporter = name
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exporter == nil && len(o.spanProcessors) == 0 && os.Getenv("OTEL_TRACES_SAMPLER") == "" {
		// Nothing would read a recorded span: ids still exist (for logs
		// and propagation), and a sampled caller's trace still records.
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	if exporter != nil {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exporter))
	}
	for _, sp := range o.spanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	t.tp = sdktrace.NewTracerProvider(tpOpts...)

	// Metrics.
	t.registry = prometheus.NewRegistry()
	if !o.noRuntime {
		if err := t.registry.Register(collectors.NewGoCollector()); err != nil {
			return nil, fmt.Errorf("telemetry: go collector: %w", err)
		}
		if err := t.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, fmt.Errorf("telemetry: process collector: %w", err)
		}
	}
	promExporter, err := otelprom.New(
		otelprom.WithRegisterer(t.registry),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		_ = t.tp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExporter))
	t.metrics = promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(o.logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return t, nil
}

// Install makes t OpenTelemetry's global tracer provider, meter provider,
// propagator and error handler.
func (t *Telemetry) Install() {
	otel.SetTracerProvider(t.tp)
	otel.SetMeterProvider(t.mp)
	otel.SetTextMapPropagator(t.propagator)
	logger := t.logger
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err.Error())
	}))
	logger.Info("telemetry", "service", t.ServiceName(), "traces", t.exporter, "metrics", MetricsPath)
}

// ServiceName returns the resource's service.name, "dotdo-<service>".
func (t *Telemetry) ServiceName() string { return ServiceNamespace + "-" + t.service }

// Resource returns the resource that describes the service on every span
// and in target_info.
func (t *Telemetry) Resource() *resource.Resource { return t.resource }

// TracerProvider returns the service's tracer provider.
func (t *Telemetry) TracerProvider() *sdktrace.TracerProvider { return t.tp }

// MeterProvider returns the service's meter provider, read by
// MetricsHandler: hand it to the service (its Config or options) for the
// service's own metrics.
func (t *Telemetry) MeterProvider() *sdkmetric.MeterProvider { return t.mp }

// Propagator returns the W3C trace context and baggage propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// Tracer returns the tracer for the platform's own spans.
func (t *Telemetry) Tracer() trace.Tracer { return t.tp.Tracer(InstrumentationName) }

// Registry returns the Prometheus registry MetricsHandler serves, for
// collectors that are not OpenTelemetry instruments.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// TraceExporter reports where spans go: ExporterNone, ExporterOTLPHTTP or
// ExporterOTLPGRPC, or ExporterCustom for WithSpanExporter.
func (t *Telemetry) TraceExporter() string { return t.exporter }

// OtelconnectOptions returns the otelconnect options that make an
// interceptor use t's providers and propagator rather than the globals, for
// processes that run several services (`dotdo dev`).
func (t *Telemetry) OtelconnectOptions() []otelconnect.Option {
	return []otelconnect.Option{
		otelconnect.WithTracerProvider(t.tp),
		otelconnect.WithMeterProvider(t.mp),
		otelconnect.WithPropagator(t.propagator),
	}
}

// MetricsHandler serves the service's metrics in the Prometheus text
// format; mount it at MetricsPath.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// ListenAndServeMetrics serves MetricsHandler at MetricsPath on its own
// listener at addr until ctx is done. Services whose main port is public or
// whose every path belongs to someone else (the dispatcher routes all paths
// to workers) expose their metrics this way, on an address Prometheus can
// reach and the internet cannot.
func (t *Telemetry) ListenAndServeMetrics(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("telemetry: metrics listener: %w", err)
	}
	return t.ServeMetrics(ctx, ln)
}

// ServeMetrics is ListenAndServeMetrics on an open listener, which it
// closes.
func (t *Telemetry) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, t.metrics)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(t.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("telemetry: metrics server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; err == nil && serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	return err
}

// Shutdown flushes the spans not yet exported and stops both providers. It
// is safe to call more than once; later calls return the first result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		t.shutdownErr = errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
		if t.shutdownErr != nil {
			t.shutdownErr = fmt.Errorf("telemetry: shutdown: %w", t.shutdownErr)
		}
	})
	return t.shutdownErr
}

// newResource describes the service. Deliberately absent: process command
// line, owner and environment, which can hold secrets.
func newResource(ctx context.Context, service string, o options) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		semconv.ServiceName(ServiceNamespace + "-" + service),
		semconv.ServiceNamespace(ServiceNamespace),
	}
	if o.version != "" {
		attrs = append(attrs, semconv.ServiceVersion(o.version))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME, overridden below)
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(o.attrs...),
		resource.WithAttributes(attrs...), // last: service.name always wins
	)
	if err != nil {
		if res == nil || !errors.Is(err, resource.ErrPartialResource) {
			return nil, fmt.Errorf("telemetry: resource: %w", err)
		}
		// A detector failed (an ill-formed OTEL_RESOURCE_ATTRIBUTES, say):
		// keep what was detected and say so.
		o.logger.Warn("telemetry: resource partly detected", "err", err.Error())
	}
	return res, nil
}

// spanExporter chooses the span exporter from the environment and names it.
func spanExporter(ctx context.Context, o options) (sdktrace.SpanExporter, string, error) {
	if o.spanExporter != nil {
		return o.spanExporter, ExporterCustom, nil
	}
	env := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return nil, ExporterNone, nil
	}
	switch kind := strings.ToLower(env("OTEL_TRACES_EXPORTER")); kind {
	case "none":
		return nil, ExporterNone, nil
	case "":
		if env("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, ExporterNone, nil
		}
	case "otlp":
	default:
		return nil, "", fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q is not supported (want otlp or none)", kind)
	}
	protocol := env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		e, err := newOTLPHTTP(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("telemetry: otlp/http exporter: %w", err)
		}
		return e, ExporterOTLPHTTP, nil
	case "grpc":
		e, err := newOTLPGRPC(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("telemetry: otlp/grpc exporter: %w", err)
		}
		return e, ExporterOTLPGRPC, nil
	default:
		return nil, "", fmt.Errorf("telemetry: OTLP protocol %q is not supported (want http/protobuf or grpc)", protocol)
	}
}

// buildVersion is the main module's version, when the build records one.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return ""
}
