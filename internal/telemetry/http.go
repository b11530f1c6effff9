package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
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

// PublicHTTPHandler is HTTPHandler for a handler that faces the internet
// (the dispatcher): each request starts a trace of its own, linked to the
// caller's trace context rather than continuing it, so that outsiders
// cannot choose the platform's trace ids or sampling.
func (t *Telemetry) PublicHTTPHandler(h http.Handler, operation string) http.Handler {
	opts := append(t.httpOptions(), otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }))
	return otelhttp.NewHandler(h, operation, opts...)
}

// InProcessHTTPHandler is HTTPHandler for a handler that another service
// calls in the same process, with no HTTP hop (the runtime under the
// dispatcher in `dotdo dev`): the trace context of the request's context
// (the caller's span) replaces whatever trace headers the request carries,
// as HTTPTransport would have on the wire, so the handler's span is the
// caller's child.
func (t *Telemetry) InProcessHTTPHandler(h http.Handler, operation string) http.Handler {
	traced := t.HTTPHandler(h, operation)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range t.propagator.Fields() {
			r.Header.Del(k)
		}
		t.propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
		traced.ServeHTTP(w, r)
	})
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
