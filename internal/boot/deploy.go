package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/dot-do/platform/gen/go/dotdo/auth/v1/authv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/progress"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/services/db/remote"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/authremote"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
)

// DeployConfig configures the deploy service.
type DeployConfig struct {
	Common
	// Addr is the public address of the Deploy API.
	Addr string
	// AuthURL and DBURL are the internal services deploy calls.
	AuthURL, DBURL string
	// RuntimeURL is the local runtime, the namespace backend when
	// CLOUDFLARE_API_BASE_URL is not set.
	RuntimeURL string
	// Environments maps environments to namespaces, as
	// "production=dotdo-production,staging=...".
	Environments string
	// CompatibilityDate is the default workerd compatibility date.
	CompatibilityDate string
	// MaxScriptBytes bounds a worker, all modules together.
	MaxScriptBytes int64
	// URLTemplate and URLEnvironments say where the dispatcher serves a
	// deployed worker (see deploy.Config).
	URLTemplate, URLEnvironments string
	// LeaseTTL is the lifetime of a deploy lease: how long a crashed
	// process can hold up the deploys of one service.
	LeaseTTL time.Duration
	// BodyBudget bounds the request body bytes the server holds at once,
	// all requests together (at least one largest request).
	BodyBudget int64
	// Backend, when set, replaces the Cloudflare API backend (tests,
	// benchmarks).
	Backend backend.Backend
	// Getenv reads the backend's CLOUDFLARE_* variables; os.LookupEnv
	// when nil.
	Getenv func(string) (string, bool)
}

// RegisterFlags registers the deploy service's flags on fs.
func (c *DeployConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	config.String(fs, &c.Addr, "addr", "DOTDO_DEPLOY_ADDR", config.DefaultDeployAddr, "address to serve the Deploy API on")
	config.String(fs, &c.AuthURL, "auth-url", "DOTDO_AUTH_URL", "http://"+config.DefaultAuthAddr, "base URL of the auth service")
	config.String(fs, &c.DBURL, "db-url", "DOTDO_DB_URL", "http://"+config.DefaultDBAddr, "base URL of the db service")
	config.String(fs, &c.RuntimeURL, "runtime-url", "DOTDO_RUNTIME_URL", "http://"+config.DefaultRuntimeAddr, "base URL of the local runtime (the backend unless CLOUDFLARE_API_BASE_URL is set)")
	registerEnvironments(fs, &c.Environments)
	config.String(fs, &c.CompatibilityDate, "compatibility-date", "DOTDO_COMPATIBILITY_DATE", deploy.DefaultCompatibilityDate, "default workerd compatibility date")
	config.Int64(fs, &c.MaxScriptBytes, "max-script-bytes", "DOTDO_MAX_SCRIPT_BYTES", deploy.DefaultMaxScriptBytes, "largest worker, all modules together")
	config.String(fs, &c.URLTemplate, "worker-url-template", "DOTDO_WORKER_URL_TEMPLATE", "", "where the dispatcher serves a worker, with {service}, {environment}, {namespace}")
	config.Duration(fs, &c.LeaseTTL, "lease-ttl", "DOTDO_DEPLOY_LEASE_TTL", deploy.DefaultLeaseTTL, "lifetime of the per-service deploy lease")
	config.Int64(fs, &c.BodyBudget, "body-budget", "DOTDO_DEPLOY_BODY_BUDGET", DefaultBodyBudget, "request body bytes in flight, all requests together")
	config.String(fs, &c.URLEnvironments, "worker-url-environments", "DOTDO_WORKER_URL_ENVIRONMENTS", "", "comma-separated environments the URL template applies to (all when empty)")
}

// backend returns the namespace backend: the Cloudflare API through
// cloudflare-go, at CLOUDFLARE_API_BASE_URL when set (Cloudflare itself, with
// CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN), else at the local runtime
// with its account and token.
func (c *DeployConfig) backend(envs []config.Environment) (backend.Backend, error) {
	if c.Backend != nil {
		return c.Backend, nil
	}
	lookup := c.Getenv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	namespaces := make(map[string]string, len(envs))
	for _, e := range envs {
		namespaces[e.Name] = e.Namespace
	}
	cfg := cloudflare.ConfigFromEnv(lookup, namespaces)
	if c.Telemetry != nil {
		cfg.HTTPClient = &http.Client{Transport: c.Telemetry.HTTPTransport(http.DefaultTransport)}
	}
	if cfg.BaseURL == "" {
		tok, err := c.RuntimeToken(config.Env("", "DOTDO_RUNTIME_TOKEN"))
		if err != nil {
			return nil, err
		}
		cfg.BaseURL = strings.TrimRight(c.RuntimeURL, "/") + "/client/v4/"
		if cfg.AccountID == "" {
			cfg.AccountID = "local"
		}
		if cfg.APIToken == "" {
			cfg.APIToken = tok
		}
	}
	return cloudflare.New(cfg)
}

// tailReceiveBuffer is the socket receive buffer of a tail's stream from
// the runtime.
const tailReceiveBuffer = 256 << 10

// tailSource is where the live tail reads invocations: the local runtime's
// tail endpoint when the backend is the local runtime; none on Cloudflare.
func (c *DeployConfig) tailSource() (backend.TailSource, error) {
	if config.Env("", "CLOUDFLARE_API_BASE_URL") != "" {
		return nil, nil
	}
	tok, err := c.RuntimeToken(config.Env("", "DOTDO_RUNTIME_TOKEN"))
	if err != nil {
		return nil, err
	}
	// No whole-request timeout: a tail lasts as long as it is read. A
	// tail whose client reads slowly holds back its stream from the
	// runtime, which then drops (and counts) what it cannot deliver: keep
	// the kernel's share of that backlog small rather than autotuned to
	// tens of megabytes per tail.
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, tailReceiveBuffer)
		})
		return errors.Join(err, serr)
	}}
	client := &http.Client{Transport: &http.Transport{
		DialContext:           dialer.DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	return backend.RuntimeTail{BaseURL: c.RuntimeURL, Token: tok, Client: client}, nil
}

// Service builds the deploy domain, its admin side and its live tail,
// wired to the auth and db services over Connect.
func (c *DeployConfig) Service(logger *slog.Logger) (*deploy.Service, *deploy.Admin, *deploy.Logs, error) {
	tok, err := c.Credential(credential.Deploy)
	if err != nil {
		return nil, nil, nil, err
	}
	copts := c.rpcOptions(logger, rpc.WithInternalToken(tok))
	envs, err := config.ParseEnvironments(c.Environments)
	if err != nil {
		return nil, nil, nil, err
	}
	authClient, err := rpc.NewClient(authv1connect.NewAuthServiceClient, c.AuthURL, copts...)
	if err != nil {
		return nil, nil, nil, err
	}
	dbClient, err := rpc.NewClient(dbv1connect.NewDBServiceClient, c.DBURL, copts...)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := c.backend(envs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("namespace backend: %w", err)
	}
	cfg := deploy.Config{
		Environments:             envs,
		DefaultCompatibilityDate: c.CompatibilityDate,
		MaxScriptBytes:           c.MaxScriptBytes,
		URLTemplate:              c.URLTemplate,
		LeaseTTL:                 c.LeaseTTL,
		Version:                  Version,
	}
	if c.URLEnvironments != "" {
		cfg.URLEnvironments = strings.Split(c.URLEnvironments, ",")
	}
	authz := authremote.New(authClient)
	records := remote.New(dbClient)
	svc, err := deploy.New(cfg, authz, records, be, deploy.WithLogger(logger), deploy.WithMeterProvider(c.meterProvider()))
	if err != nil {
		return nil, nil, nil, err
	}
	src, err := c.tailSource()
	if err != nil {
		return nil, nil, nil, err
	}
	logs := deploy.NewLogs(deploy.LogsConfig{Environments: envs, Source: src}, authz, deploy.WithLogger(logger))
	return svc, deploy.NewAdmin(authz, authz, records, deploy.WithLogger(logger)), logs, nil
}

// DefaultBodyBudget is the default of DeployConfig.BodyBudget: four of the
// largest requests the default script limit allows.
const DefaultBodyBudget = 64 << 20

// Server builds the deploy server: DeployService, RoutesService and
// AdminService with REST transcoding, SecretService, and LogService (the
// live tail), behind the key gate (deploy.Gate: nothing without a
// well-formed key reads a body) and the body budget.
func (c *DeployConfig) Server(logger *slog.Logger, svc *deploy.Service, admin *deploy.Admin, logs *deploy.Logs) (*server.Server, error) {
	maxRead := svc.Config().ReadMaxBytes()
	opts, err := rpc.HandlerOptions(c.rpcOptions(logger, rpc.WithReadMaxBytes(maxRead))...)
	if err != nil {
		return nil, err
	}
	budget := c.BodyBudget
	if budget <= 0 {
		budget = DefaultBodyBudget
	}
	// A deploy may wait for the service's lease, then for its upload.
	write := svc.Config().LeaseWait + svc.Config().UploadTimeout + time.Minute
	srv := server.New("deploy", server.WithLogger(logger), server.WithREST(),
		// Innermost first: the gate is the outermost.
		server.WithMiddleware(deploy.RESTCompat),
		server.WithMiddleware(server.NewBodyBudget(max(budget, int64(maxRead)), 0).Middleware),
		server.WithMiddleware(deploy.Gate),
		server.WithWriteTimeout(write))
	srv.Register(deployv1connect.NewDeployServiceHandler(deploy.NewHandler(svc), opts...))
	srv.Register(deployv1connect.NewRoutesServiceHandler(deploy.NewRoutesHandler(svc), opts...))
	srv.Register(deployv1connect.NewAdminServiceHandler(deploy.NewAdminHandler(admin), opts...))
	srv.Register(deployv1connect.NewSecretServiceHandler(deploy.NewSecretsHandler(svc), opts...))
	// A tail lasts as long as it is read: bounded by progress, not by the
	// server's write timeout.
	logPath, logHandler := deployv1connect.NewLogServiceHandler(deploy.NewLogHandler(logs), opts...)
	srv.Register(logPath, progress.Handler(logHandler, time.Minute))
	c.mountMetrics(srv, true)
	return srv, nil
}

// Prepare makes the service ready to take deploys: the configured
// namespaces exist, every environment has a routing table (the seed's
// rules when it had none), and deployments left pending by a crash are
// resolved.
// The services it needs (db, auth, the backend) may still be starting, so it
// retries for up to a minute.
func Prepare(ctx context.Context, logger *slog.Logger, svc *deploy.Service) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := prepareOnce(ctx, logger, svc)
		if err == nil {
			return nil
		}
		logger.WarnContext(ctx, "not ready yet; retrying", "err", err.Error(), "in", delay.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("deploy not ready: %w", err)
		case <-time.After(delay):
		}
	}
}

func prepareOnce(ctx context.Context, logger *slog.Logger, svc *deploy.Service) error {
	created, err := svc.EnsureConfiguredNamespaces(ctx)
	if err != nil {
		return fmt.Errorf("ensure namespaces: %w", err)
	}
	if len(created) > 0 {
		logger.InfoContext(ctx, "created namespaces", "namespaces", created)
	}
	seeded, err := svc.EnsureRouteTables(ctx)
	if err != nil {
		return fmt.Errorf("ensure routing tables: %w", err)
	}
	if len(seeded) > 0 {
		logger.InfoContext(ctx, "stored the initial routing tables", "environments", seeded)
	}
	report, err := svc.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("reconcile pending deployments: %w", err)
	}
	logger.InfoContext(ctx, "reconciled pending deployments", "report", fmt.Sprintf("%+v", report))
	return nil
}

// ReconcileInterval is how often a running deploy service resolves
// deployments left pending (an outcome it could not record, a replica that
// crashed), besides at start-up and before each deploy of the service.
const ReconcileInterval = 30 * time.Second

// reconcileEvery runs svc.Reconcile every interval until ctx is done.
func reconcileEvery(ctx context.Context, logger *slog.Logger, svc *deploy.Service, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := svc.Reconcile(ctx); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "reconcile pending deployments", "err", err.Error())
		}
	}
}

// Run prepares the service (namespaces, reconciliation), then serves it
// until ctx is done.
func (c *DeployConfig) Run(ctx context.Context, logger *slog.Logger) error {
	svc, admin, logs, err := c.Service(logger)
	if err != nil {
		return err
	}
	srv, err := c.Server(logger, svc, admin, logs)
	if err != nil {
		return err
	}
	if err := Prepare(ctx, logger, svc); err != nil {
		return err
	}
	go reconcileEvery(ctx, logger, svc, ReconcileInterval)
	// Tails last hours; end them as shutdown begins (see RuntimeConfig.Run).
	stop := context.AfterFunc(ctx, logs.Stop)
	defer stop()
	c.listenMetrics(ctx, logger)
	return srv.ListenAndServe(ctx, c.Addr)
}
