package boot

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/dispatcher"
)

// DispatcherConfig configures the dispatcher.
type DispatcherConfig struct {
	Common
	// Addr is where the dispatcher takes HTTP traffic for the workers.
	Addr string
	// Environment is the environment served, and Namespace its dispatch
	// namespace (from Environments when empty).
	Environment, Namespace string
	// Environments maps environments to namespaces, as
	// "production=dotdo-production,staging=..." (config.ParseEnvironments).
	Environments string
	// DBURL is the db service that pushes the live versions and routing
	// table (WatchEnvironment).
	DBURL string
	// RuntimeURL is the runtime whose invocation endpoint runs the workers.
	RuntimeURL string
	// UpstreamTimeout bounds the wait for a worker's response headers.
	UpstreamTimeout time.Duration
	// StreamTimeout bounds how long a forwarded body may make no progress.
	StreamTimeout time.Duration

	// local, when set (by Dev), is the runtime in this process, which the
	// dispatcher then calls directly instead of at RuntimeURL.
	local *localRuntime
}

// RegisterFlags registers the dispatcher's flags on fs.
func (c *DispatcherConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_DISPATCHER_ADDR", config.DefaultDispatcherAddr, "address for the workers' HTTP traffic")
	config.String(fs, &c.Environment, "environment", "DOTDO_DISPATCHER_ENVIRONMENT", config.DefaultEnvironment, "environment whose workers are served")
	config.String(fs, &c.Namespace, "namespace", "DOTDO_DISPATCHER_NAMESPACE", "", "dispatch namespace of the environment (default from -environments)")
	registerEnvironments(fs, &c.Environments)
	config.String(fs, &c.DBURL, "db-url", "DOTDO_DB_URL", "http://"+config.DefaultDBAddr, "base URL of the db service")
	config.String(fs, &c.RuntimeURL, "runtime-url", "DOTDO_RUNTIME_URL", "http://"+config.DefaultRuntimeAddr, "base URL of the runtime")
	config.Duration(fs, &c.UpstreamTimeout, "upstream-timeout", "DOTDO_UPSTREAM_TIMEOUT", 60*time.Second, "wait for a worker's response headers")
	config.Duration(fs, &c.StreamTimeout, "stream-timeout", "DOTDO_STREAM_TIMEOUT", dispatcher.DefaultStreamTimeout, "longest wait for progress of a forwarded request or response body")
}

// namespace is the configured namespace, or the environment's among
// Environments (the default list when empty).
func (c *DispatcherConfig) namespace() (string, error) {
	if c.Namespace != "" {
		return c.Namespace, nil
	}
	envs := config.DefaultEnvironments()
	if c.Environments != "" {
		var err error
		if envs, err = config.ParseEnvironments(c.Environments); err != nil {
			return "", fmt.Errorf("dispatcher: %w", err)
		}
	}
	e, ok := config.FindEnvironment(envs, c.Environment)
	if !ok {
		return "", fmt.Errorf("dispatcher: environment %q is not among the configured environments (%s)", c.Environment, config.FormatEnvironments(envs))
	}
	return e.Namespace, nil
}

// Dispatcher builds the dispatcher, which watches its environment's live
// versions and routing table on the db service.
func (c *DispatcherConfig) Dispatcher(ctx context.Context, logger *slog.Logger) (*dispatcher.Dispatcher, error) {
	tok, err := c.Token()
	if err != nil {
		return nil, err
	}
	ns, err := c.namespace()
	if err != nil {
		return nil, err
	}
	invokeToken, err := c.InvokeToken()
	if err != nil {
		return nil, err
	}
	dbClient, err := rpc.NewClient(dbv1connect.NewDBServiceClient, c.DBURL, c.rpcOptions(logger, rpc.WithInternalToken(tok))...)
	if err != nil {
		return nil, err
	}
	cfg := dispatcher.Config{
		Environment:     c.Environment,
		Namespace:       ns,
		RuntimeURL:      c.RuntimeURL,
		InvokeToken:     invokeToken,
		UpstreamTimeout: c.UpstreamTimeout,
		StreamTimeout:   c.StreamTimeout,
		Logger:          logger,
		MeterProvider:   c.meterProvider(),
	}
	if c.Telemetry != nil {
		cfg.WrapTransport = c.Telemetry.HTTPTransport
	}
	if c.local != nil {
		if cfg.Runtime, err = c.local.wait(ctx); err != nil {
			return nil, err
		}
	}
	return dispatcher.New(cfg, remote.New(dbClient))
}

// Server serves d's traffic, with Resolve, health and reflection at the
// listener's own address (and /metrics there when not on a listener of its
// own).
func (c *DispatcherConfig) Server(logger *slog.Logger, d *dispatcher.Dispatcher) (*server.Server, error) {
	opts, err := rpc.HandlerOptions(c.rpcOptions(logger)...)
	if err != nil {
		return nil, err
	}
	var extra []string
	if c.mountsMetrics(true) {
		extra = append(extra, "/metrics")
	}
	sopts := []server.Option{server.WithLogger(logger), server.WithMiddleware(dispatcher.Middleware(d, extra...))}
	if c.Telemetry != nil {
		// A trace of its own per request, linked to the caller's.
		sopts = append(sopts, server.WithMiddleware(func(h http.Handler) http.Handler { return c.Telemetry.PublicHTTPHandler(h, "dispatch") }))
	}
	srv := server.New("dispatcher", sopts...)
	srv.Register(dispatcherv1connect.NewDispatcherServiceHandler(dispatcher.NewHandler(d), opts...))
	c.mountMetrics(srv, true)
	return srv, nil
}

// Run serves the dispatcher until ctx is done.
func (c *DispatcherConfig) Run(ctx context.Context, logger *slog.Logger) error {
	d, err := c.Dispatcher(ctx, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	go func() {
		if err := d.Run(ctx); err != nil {
			logger.Error("dispatcher watch stopped", "err", err.Error())
		}
	}()
	srv, err := c.Server(logger, d)
	if err != nil {
		return err
	}
	c.listenMetrics(ctx, logger)
	return srv.ListenAndServe(ctx, c.Addr)
}
