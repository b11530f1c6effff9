// Package server serves the platform's Connect services with the plumbing
// that every one of them shares: an http.Server with explicit timeouts,
// unencrypted HTTP/2 so that plain-text gRPC clients work, the standard gRPC
// health and reflection services, optional REST transcoding through vanguard,
// JSON logs and a graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"time"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/vanguard"

	"github.com/dot-do/platform/internal/protoimage"
)

// Default timeouts of the http.Server. They bound slow clients; the write
// timeout is generous because a deploy of a large worker streams its body
// and then waits for the namespace upload.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 120 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Server serves a set of Connect services on one address.
type Server struct {
	name      string
	logger    *slog.Logger
	mux       *http.ServeMux
	services  []registered
	rest      bool
	noReflect bool
	wrap      []func(http.Handler) http.Handler
	httpSrv   *http.Server
	health    *grpchealth.StaticChecker
	shutdown  time.Duration
	write     time.Duration
	streams   map[string]bool
}

type registered struct {
	path    string
	handler http.Handler
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger; slog.Default() otherwise.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithREST serves the registered services through vanguard, so that their
// google.api.http annotations answer REST requests next to Connect, gRPC and
// gRPC-Web.
func WithREST() Option { return func(s *Server) { s.rest = true } }

// WithoutReflection serves no gRPC reflection, for a public listener that
// should not describe the platform's API to anyone who asks.
func WithoutReflection() Option { return func(s *Server) { s.noReflect = true } }

// WithMiddleware wraps the root handler (innermost first), for example to
// adapt requests before the REST transcoder sees them.
func WithMiddleware(m func(http.Handler) http.Handler) Option {
	return func(s *Server) { s.wrap = append(s.wrap, m) }
}

// WithWriteTimeout sets how long the server may take to write a response,
// for a service whose handlers may legitimately wait longer than
// DefaultWriteTimeout (a deploy waiting for a lease and an upload).
func WithWriteTimeout(d time.Duration) Option { return func(s *Server) { s.write = d } }

// WithUnboundedStreams lifts the read and write deadlines of the server
// for requests to paths (exact paths, such as a procedure's
// "/pkg.Service/Method"): server-streaming RPCs that last as long as their
// client keeps them, such as a watch. Such a handler must end by itself
// when the server shuts down, as Shutdown waits for it.
func WithUnboundedStreams(paths ...string) Option {
	return func(s *Server) {
		if s.streams == nil {
			s.streams = map[string]bool{}
		}
		for _, p := range paths {
			s.streams[p] = true
		}
	}
}

// WithShutdownTimeout bounds how long Serve waits for in-flight requests
// once its context is done.
func WithShutdownTimeout(d time.Duration) Option { return func(s *Server) { s.shutdown = d } }

// New returns a Server named name (for logs). Register services, then call
// Serve or ListenAndServe.
func New(name string, opts ...Option) *Server {
	s := &Server{
		name:     name,
		logger:   slog.Default(),
		mux:      http.NewServeMux(),
		shutdown: DefaultShutdownTimeout,
		write:    DefaultWriteTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register mounts a generated Connect handler at its path, as returned by a
// New...ServiceHandler function. The service is reported by health checks
// and reflection.
func (s *Server) Register(path string, h http.Handler) {
	s.services = append(s.services, registered{path: path, handler: h})
}

// Handle mounts a plain HTTP handler on the server's mux, outside health and
// reflection (for example /metrics or a non-RPC API).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServiceNames returns the fully-qualified names of the registered services.
func (s *Server) ServiceNames() []string {
	names := make([]string, 0, len(s.services))
	for _, r := range s.services {
		names = append(names, serviceName(r.path))
	}
	sort.Strings(names)
	return names
}

// Health returns the health checker, so that a service can report itself
// NOT_SERVING, for example while its store is unreachable. It is valid after
// Handler has been called.
func (s *Server) Health() *grpchealth.StaticChecker { return s.health }

// Handler builds the server's root handler: the registered services, health,
// reflection (unless WithoutReflection) and the plain handlers.
func (s *Server) Handler() (http.Handler, error) {
	names := s.ServiceNames()
	s.health = grpchealth.NewStaticChecker(names...)
	s.mux.Handle(grpchealth.NewHandler(s.health))
	if !s.noReflect {
		// Reflection lists the standard services too, and describes ours
		// from the buf image, which keeps the doc comments.
		listed := append(slices.Clone(names), grpchealth.HealthV1ServiceName, grpcreflect.ReflectV1ServiceName, grpcreflect.ReflectV1AlphaServiceName)
		reflector := grpcreflect.NewReflector(grpcreflect.NamerFunc(func() []string { return listed }),
			grpcreflect.WithDescriptorResolver(protoimage.Resolver()))
		s.mux.Handle(grpcreflect.NewHandlerV1(reflector))
		s.mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	}
	h, err := s.root()
	if err != nil {
		return nil, err
	}
	if len(s.streams) > 0 {
		h = unbounded(h, s.streams)
	}
	for _, m := range s.wrap {
		h = m(h)
	}
	return h, nil
}

func (s *Server) root() (http.Handler, error) {
	if !s.rest {
		for _, r := range s.services {
			s.mux.Handle(r.path, r.handler)
		}
		return s.mux, nil
	}
	services := make([]*vanguard.Service, 0, len(s.services))
	for _, r := range s.services {
		services = append(services, vanguard.NewService(r.path, r.handler))
	}
	transcoder, err := vanguard.NewTranscoder(services, vanguard.WithUnknownHandler(s.mux))
	if err != nil {
		return nil, fmt.Errorf("server %s: rest transcoder: %w", s.name, err)
	}
	return transcoder, nil
}

// unbounded clears the connection's (HTTP/1.1) or stream's (HTTP/2) read
// and write deadlines for requests to paths.
func unbounded(next http.Handler, paths map[string]bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if paths[r.URL.Path] {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// ListenAndServe listens on addr and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.name, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish within the shutdown timeout, and
// returns nil on a clean stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	h, err := s.Handler()
	if err != nil {
		ln.Close()
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.httpSrv = &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      s.write,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.logger.Info("serving", "addr", ln.Addr().String(), "services", s.ServiceNames())
	errc := make(chan error, 1)
	go func() { errc <- s.httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server %s: %w", s.name, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	err = s.httpSrv.Shutdown(shutdownCtx)
	if err != nil {
		// The grace period is over: close the connections, which cancels
		// the requests still running.
		s.httpSrv.Close()
	}
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("server %s: shutdown: %w", s.name, err)
	}
	s.logger.Info("stopped")
	return nil
}

// serviceName turns a handler path such as "/dotdo.db.v1.DBService/" into
// the service's name.
func serviceName(path string) string {
	n := len(path)
	start, end := 0, n
	if n > 0 && path[0] == '/' {
		start = 1
	}
	if end > start && path[end-1] == '/' {
		end--
	}
	return path[start:end]
}
