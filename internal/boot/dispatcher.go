package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/dispatcher"
)

// DispatcherConfig configures the dispatcher.
type DispatcherConfig struct {
	Common
	// Addr is where the dispatcher takes HTTP traffic for the workers
	// (and answers the gRPC health check).
	Addr string
	// OperatorAddr is where it answers operators: Resolve, gRPC reflection
	// and health, and /metrics (unless MetricsAddr is set).
	OperatorAddr string
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
	config.String(fs, &c.OperatorAddr, "operator-addr", "DOTDO_DISPATCHER_OPERATOR_ADDR", config.DefaultDispatcherOperatorAddr, "address for operators: Resolve, reflection, /metrics")
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
	tok, err := c.Credential(credential.Dispatcher)
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

// Server serves d's traffic, the workers' HTTP on every path and host, and
// at the listener's own address the gRPC health check: nothing that
// describes the platform (no Resolve, reflection or /metrics: see
// OperatorServer).
func (c *DispatcherConfig) Server(logger *slog.Logger, d *dispatcher.Dispatcher) (*server.Server, error) {
	sopts := []server.Option{server.WithLogger(logger), server.WithoutReflection(), server.WithMiddleware(dispatcher.PublicMiddleware(d))}
	if c.Telemetry != nil {
		// A trace of its own per request, linked to the caller's.
		sopts = append(sopts, server.WithMiddleware(func(h http.Handler) http.Handler { return c.Telemetry.PublicHTTPHandler(h, "dispatch") }))
	}
	return server.New("dispatcher", sopts...), nil
}

// OperatorServer serves the operators' side of d: DispatcherService
// (Resolve), gRPC health and reflection, and /metrics when it has no
// listener of its own. It belongs on an address only operators reach
// (OperatorAddr, loopback by default).
func (c *DispatcherConfig) OperatorServer(logger *slog.Logger, d *dispatcher.Dispatcher) (*server.Server, error) {
	opts, err := rpc.HandlerOptions(c.rpcOptions(logger)...)
	if err != nil {
		return nil, err
	}
	srv := server.New("dispatcher-operator", server.WithLogger(logger))
	srv.Register(dispatcherv1connect.NewDispatcherServiceHandler(dispatcher.NewHandler(d), opts...))
	c.mountMetrics(srv, false)
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
	op, err := c.OperatorServer(logger, d)
	if err != nil {
		return err
	}
	c.listenMetrics(ctx, logger)
	// Both listeners or neither: one failing stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opErr := make(chan error, 1)
	go func() {
		err := op.ListenAndServe(ctx, c.OperatorAddr)
		cancel()
		opErr <- err
	}()
	err = srv.ListenAndServe(ctx, c.Addr)
	cancel()
	return errors.Join(err, <-opErr)
}
