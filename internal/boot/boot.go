// Package boot is the composition root of the platform's binaries: it reads
// each service's configuration from flags and environment, wires the
// service's domain to its store and its clients, and serves it until the
// process is told to stop. cmd/*/main.go only call into it.
package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/logging"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/telemetry"
	"go.opentelemetry.io/otel/metric"
)

// Version is the build version reported by the services; set with
// -ldflags "-X github.com/dot-do/platform/internal/boot.Version=...".
var Version = "dev"

// Config is a service's configuration, as Main and Dev drive it.
type Config interface {
	// RegisterFlags registers the service's flags (with env fallbacks).
	RegisterFlags(fs *flag.FlagSet)
	// Run serves the service until ctx is done.
	Run(ctx context.Context, logger *slog.Logger) error
	// Base returns the configuration every service shares.
	Base() *Common
}

// Main runs a single-service binary: it registers the service's flags,
// parses args, sets up telemetry, and runs the service until SIGINT or
// SIGTERM. It returns the process exit code: 0 on a clean stop, 2 on bad
// flags, 1 on failure.
func Main(name string, args []string, stderr io.Writer, cfg Config) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := config.Check(fs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	logger := logging.New(stderr, name, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second signal kills at once
	tel, err := telemetry.Setup(ctx, name, telemetry.WithLogger(logger), telemetry.WithVersion(Version))
	if err != nil {
		logger.Error("telemetry", "err", err.Error())
		return 1
	}
	defer shutdownTelemetry(logger, tel)
	cfg.Base().Telemetry = tel
	if err := cfg.Run(ctx, logger); err != nil {
		logger.Error("exiting", "err", err.Error())
		return 1
	}
	return 0
}

func shutdownTelemetry(logger *slog.Logger, tel *telemetry.Telemetry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		logger.Warn("telemetry shutdown", "err", err.Error())
	}
}

// Common is the configuration every service shares.
type Common struct {
	// DataDir holds SQLite, runtime data and generated credentials.
	DataDir string
	// InternalToken is the internal service credential; when empty it is
	// read from (or generated into) DataDir/internal.token.
	InternalToken string
	// MetricsAddr, when set, serves /metrics on a listener of its own;
	// otherwise the internal services (db, auth, runtime) serve /metrics
	// beside their RPCs, and the public ones (deploy, dispatcher) serve
	// none, except under `dotdo dev`.
	MetricsAddr string
	// Telemetry holds the service's tracer and meter providers; the global
	// ones when nil.
	Telemetry *telemetry.Telemetry
	// dev is set by Dev: everything runs on one machine for one user.
	dev bool
}

// Base implements Config for every configuration that embeds Common.
func (c *Common) Base() *Common { return c }

// RegisterFlags registers the shared flags on fs.
func (c *Common) RegisterFlags(fs *flag.FlagSet) {
	config.String(fs, &c.DataDir, "data-dir", "DOTDO_DATA_DIR", config.DefaultDataDir, "directory for local data and generated credentials")
	config.String(fs, &c.MetricsAddr, "metrics-addr", telemetry.EnvMetricsAddr, "", "serve /metrics on this address instead of beside the service")
	c.InternalToken = os.Getenv("DOTDO_INTERNAL_TOKEN") // a secret: never a flag, which would show in ps
}

// registerEnvironments registers the -environments flag (DOTDO_ENVIRONMENTS)
// of the services that map environments to namespaces, deploy and the
// dispatcher, so that they read the same list (config.ParseEnvironments).
func registerEnvironments(fs *flag.FlagSet, p *string) {
	config.String(fs, p, "environments", "DOTDO_ENVIRONMENTS", config.FormatEnvironments(config.DefaultEnvironments()),
		"environments and their dispatch namespaces, as name=namespace,...")
}

// Token returns the internal service credential: DOTDO_INTERNAL_TOKEN when
// set, else the one stored in DataDir/internal.token, created on first use.
func (c *Common) Token() (string, error) {
	if c.InternalToken != "" {
		return c.InternalToken, nil
	}
	tok, err := credential.LoadOrCreate(filepath.Join(c.DataDir, "internal.token"))
	if err != nil {
		return "", fmt.Errorf("internal credential: %w", err)
	}
	c.InternalToken = tok
	return tok, nil
}

// rpcOptions are the options of the service's Connect handlers and
// clients: its logger and telemetry, then extra.
func (c *Common) rpcOptions(logger *slog.Logger, extra ...rpc.Option) []rpc.Option {
	opts := []rpc.Option{rpc.WithLogger(logger)}
	if c.Telemetry != nil {
		opts = append(opts, rpc.WithOtel(c.Telemetry.OtelconnectOptions()...))
	}
	return append(opts, extra...)
}

// meterProvider returns the meter provider the service records its own
// metrics on, nil (recorded nowhere) without telemetry.
func (c *Common) meterProvider() metric.MeterProvider {
	if c.Telemetry == nil {
		return nil
	}
	return c.Telemetry.MeterProvider()
}

// listenMetrics serves the service's metrics on MetricsAddr, when set,
// until ctx is done.
func (c *Common) listenMetrics(ctx context.Context, logger *slog.Logger) {
	if c.Telemetry == nil || c.MetricsAddr == "" {
		return
	}
	go func() {
		if err := c.Telemetry.ListenAndServeMetrics(ctx, c.MetricsAddr); err != nil && ctx.Err() == nil {
			logger.Error("metrics listener", "addr", c.MetricsAddr, "err", err.Error())
		}
	}()
}

// mountMetrics serves /metrics on srv when mountsMetrics says so.
func (c *Common) mountMetrics(srv *server.Server, public bool) {
	if c.mountsMetrics(public) {
		srv.Handle(telemetry.MetricsPath, c.Telemetry.MetricsHandler())
	}
}

// mountsMetrics reports whether the service serves /metrics on its own
// server: not when MetricsAddr is set, and on a public service (its port
// is reachable from outside) only under `dotdo dev`.
func (c *Common) mountsMetrics(public bool) bool {
	return c.Telemetry != nil && c.MetricsAddr == "" && (!public || c.dev)
}
