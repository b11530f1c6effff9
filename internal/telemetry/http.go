package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// HTTPHandler wraps a plain HTTP handler (the runtime's API and invocation
// endpoint) so that each request gets a server span that continues the
// caller's trace, and is measured in http.server.request.duration
// (http_server_request_duration_seconds). operation names the spans when
// the request matched no ServeMux pattern. The server.address attribute is
// the service's name, never the request's Host header, so that clients
// cannot grow the metrics without bound.
func (t *Telemetry) HTTPHandler(h http.Handler, operation string) http.Handler {
	return otelhttp.NewHandler(h, operation, t.httpOptions()...)
}

// HTTPTransport wraps base (http.DefaultTransport when nil) so that each
// request gets a client span and carries the trace context to the next
// service, as the dispatcher's proxy to the runtime needs. Connect clients
// do not need it: otelconnect does the same for them.
func (t *Telemetry) HTTPTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		otelhttp.WithPropagators(t.propagator))
}

func (t *Telemetry) httpOptions() []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithServerName(t.ServiceName()),
	}
}
