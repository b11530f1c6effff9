package telemetry

import (
	"net/http"

	"github.com/felixge/httpsnoop"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The data plane (the dispatcher and the runtime's invocation endpoint)
// serves every request of every tenant worker, so its tracing costs as
// little as a request that is not sampled allows: a span that does not
// record costs its ids and nothing else (no attributes, no wrapped writer),
// and no http.server metrics are recorded, since the dispatcher and the
// runtime count requests in their own metrics.

// traceparent is the W3C header; a request without it has no trace
// context to read.
const traceparent = "Traceparent"

// PublicHTTPHandler wraps a handler that faces the internet (the
// dispatcher): each request starts a trace of its own, linked to the
// caller's trace context rather than continuing it, so that outsiders
// cannot choose the platform's trace ids or sampling. The span, when it
// records, carries the method, path and status.
func (t *Telemetry) PublicHTTPHandler(h http.Handler, operation string) http.Handler {
	tracer := t.Tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer)}
		if _, ok := r.Header[traceparent]; ok {
			remote := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
			}
		}
		ctx, span := tracer.Start(r.Context(), operation, opts...)
		t.serveTraced(w, r.WithContext(ctx), span, h)
	})
}

// DataPlaneHandler wraps the runtime's invocation endpoint served over
// HTTP: the request's span continues the caller's trace (the dispatcher's,
// sent by HTTPTransport).
func (t *Telemetry) DataPlaneHandler(h http.Handler, operation string) http.Handler {
	tracer := t.Tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if _, ok := r.Header[traceparent]; ok {
			ctx = t.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		ctx, span := tracer.Start(ctx, operation, trace.WithSpanKind(trace.SpanKindServer))
		t.serveTraced(w, r.WithContext(ctx), span, h)
	})
}

// InProcess runs serve, for a request that another service hands to this
// one in the same process with no HTTP hop (the runtime under the
// dispatcher in `dotdo dev`): the trace context of the request's context
// (the caller's span) replaces whatever trace headers the request carries,
// as HTTPTransport would have on the wire, and serve runs under a span that
// is the caller's child. When the caller's span does not record, neither
// would the child: no span is made at all.
func (t *Telemetry) InProcess(w http.ResponseWriter, r *http.Request, operation string, serve http.HandlerFunc) {
	for _, k := range t.traceHeaders {
		delete(r.Header, k)
	}
	ctx := r.Context()
	t.propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	if !trace.SpanFromContext(ctx).IsRecording() {
		serve(w, r)
		return
	}
	ctx, span := t.Tracer().Start(ctx, operation, trace.WithSpanKind(trace.SpanKindServer))
	t.serveTraced(w, r.WithContext(ctx), span, serve)
}

// serveTraced runs h under span, and records on it (when it records) the
// request's method and path and the response's status.
func (t *Telemetry) serveTraced(w http.ResponseWriter, r *http.Request, span trace.Span, h http.Handler) {
	defer span.End()
	if !span.IsRecording() {
		h.ServeHTTP(w, r)
		return
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", t.ServiceName()),
	)
	status := 0
	w = httpsnoop.Wrap(w, httpsnoop.Hooks{
		WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
			return func(code int) {
				if status == 0 {
					status = code
				}
				next(code)
			}
		},
		Write: func(next httpsnoop.WriteFunc) httpsnoop.WriteFunc {
			return func(b []byte) (int, error) {
				if status == 0 {
					status = http.StatusOK
				}
				return next(b)
			}
		},
	})
	h.ServeHTTP(w, r)
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
