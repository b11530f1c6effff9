package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newOTLPHTTP returns an OTLP/HTTP span exporter configured by the
// OTEL_EXPORTER_OTLP_* environment alone. It does not connect until the
// first export.
func newOTLPHTTP(ctx context.Context) (sdktrace.SpanExporter, error) {
	return otlptracehttp.New(ctx)
}

// newOTLPGRPC returns an OTLP/gRPC span exporter configured by the
// OTEL_EXPORTER_OTLP_* environment alone. It does not connect until the
// first export.
func newOTLPGRPC(ctx context.Context) (sdktrace.SpanExporter, error) {
	return otlptracegrpc.New(ctx)
}
