// Package logging builds the platform's slog loggers: JSON lines on stderr,
// each with the service's name and, inside a traced request, its trace and
// span ids.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// New returns a JSON logger for service writing to w at level. The level
// comes from DOTDO_LOG_LEVEL (debug, info, warn, error) when level is nil.
func New(w io.Writer, service string, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = LevelFromEnv()
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(traceHandler{h}).With("service", service)
}

// LevelFromEnv reads DOTDO_LOG_LEVEL; info when unset or unknown.
func LevelFromEnv() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(os.Getenv("DOTDO_LOG_LEVEL")))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// traceHandler adds trace_id and span_id to records logged with a context
// that carries a valid span.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
