// Package testsupport holds the few helpers that the platform's tests,
// benchmarks and test-support packages share: a listener or a server on a
// free loopback port that stops when the test ends, a log buffer safe for
// concurrent writers, a logger that discards everything, and a file
// written with its directories.
//
// It imports only the standard library, so that any package may use it
// (internal/server's *Server is served through the Server interface it
// already satisfies). It is meant for _test.go files and test-support
// packages, never for production code.
package testsupport

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// QuietLogger returns a logger that discards everything.
func QuietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// LogBuffer is a bytes.Buffer safe for concurrent writers, such as the
// loggers of several goroutines or services. The zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count returns how many non-overlapping instances of substr were written
// so far.
func (l *LogBuffer) Count(substr string) int {
	return strings.Count(l.String(), substr)
}

// WriteFile writes content to path with perm, creating the missing parent
// directories (0o755) first, and fails tb when it cannot.
func WriteFile(tb testing.TB, path, content string, perm fs.FileMode) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		tb.Fatal(err)
	}
}

// Listen returns a TCP listener on a free loopback port, closed when tb
// ends (closing it earlier is fine).
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	tb.Cleanup(func() {
		// Serve has usually closed it already; a second Close only
		// reports that, which is no news.
		_ = ln.Close()
	})
	return ln
}

// FreeAddr returns a loopback address ("127.0.0.1:N") on which nothing
// listens, for a process or server that must be given its address before
// it starts. Another program may take the port in between, a race the
// tests accept. tb may be nil where there is none (TestMain): FreeAddr then
// panics when no port can be had.
func FreeAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if tb == nil {
			panic("testsupport: listen on loopback: " + err.Error())
		}
		tb.Helper()
		tb.Fatalf("listen on loopback: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil && tb != nil {
		tb.Fatalf("close the probe listener: %v", err)
	}
	return addr
}

// Server is what Serve runs: an *internal/server.Server, or a function
// wrapped in ServeFunc. Serve must return when ctx is canceled, with nil
// after a clean stop.
type Server interface {
	Serve(ctx context.Context, ln net.Listener) error
}

// ServeFunc adapts a function with Serve's signature (for example
// telemetry.Telemetry.ServeMetrics) to Server.
type ServeFunc func(ctx context.Context, ln net.Listener) error

// Serve calls f(ctx, ln).
func (f ServeFunc) Serve(ctx context.Context, ln net.Listener) error { return f(ctx, ln) }

// StopTimeout bounds how long the cleanup of Serve waits for the server to
// return once its context is canceled.
const StopTimeout = 30 * time.Second

// An Option changes how Serve runs a server.
type Option func(*serveOptions)

type serveOptions struct {
	idle []IdleCloser
}

// IdleCloser is a client whose idle connections can be closed, such as
// *http.Client or *http.Transport.
type IdleCloser interface {
	CloseIdleConnections()
}

// CloseIdle makes Serve close the idle connections of clients before it
// stops the server. An HTTP/2 server waits up to a second for its clients
// to close their connections after GOAWAY, so closing the idle ones first
// keeps tests fast when they call an h2c server through a pooled client
// (rpc.HTTPClient).
func CloseIdle(clients ...IdleCloser) Option {
	return func(o *serveOptions) { o.idle = append(o.idle, clients...) }
}

// Serve runs s on a free loopback port and returns its base URL
// ("http://127.0.0.1:N"). When tb ends, it cancels the server's context,
// waits (up to StopTimeout) for Serve to return, and reports an error it
// returned.
func Serve(tb testing.TB, s Server, opts ...Option) string {
	tb.Helper()
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	ln := Listen(tb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		for _, c := range o.idle {
			c.CloseIdleConnections()
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("serve on %s: %v", ln.Addr(), err)
			}
		case <-time.After(StopTimeout):
			tb.Errorf("serve on %s: still running %v after the stop", ln.Addr(), StopTimeout)
		}
	})
	return "http://" + ln.Addr().String()
}
