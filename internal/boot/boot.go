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

	"go.opentelemetry.io/otel/metric"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/logging"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/telemetry"
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
	cfg.Base().checkDataDir(logger)
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
	// Credentials, when it has a caller's credential, overrides where
	// Credential reads it (tests).
	Credentials map[credential.Caller]string
	// policy, when set, replaces credential.DefaultPolicy (tests).
	policy credential.Policy
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
}

// registerEnvironments registers the -environments flag (DOTDO_ENVIRONMENTS)
// of the services that map environments to namespaces, deploy and the
// dispatcher, so that they read the same list (config.ParseEnvironments).
func registerEnvironments(fs *flag.FlagSet, p *string) {
	config.String(fs, p, "environments", "DOTDO_ENVIRONMENTS", config.FormatEnvironments(config.DefaultEnvironments()),
		"environments and their dispatch namespaces, as name=namespace,...")
}

// checkDataDir warns when the data directory, which holds the database,
// the credentials and the audit key, is open to other users: one an
// earlier version or an operator created 0755. It changes nothing (the
// directory may be shared on purpose); it says what to run.
func (c *Common) checkDataDir(logger *slog.Logger) {
	fi, err := os.Stat(c.DataDir)
	if err != nil || !fi.IsDir() {
		return // created 0700 on first use
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("the data directory is open to other users; it holds the database, the credentials and the audit key",
			"dir", c.DataDir, "mode", fmt.Sprintf("%#o", perm), "fix", "chmod 700 "+c.DataDir)
	}
}

// LegacyTokenEnv is the variable of the single internal credential that
// per-caller credentials replaced; a service refuses to start while it is
// set, so that an upgrade cannot silently run with credentials nobody
// configured.
const LegacyTokenEnv = "DOTDO_INTERNAL_TOKEN"

// CredentialsDir is the directory, under the data directory, of the
// generated internal credentials.
const CredentialsDir = "credentials"

// Credential returns the internal credential of caller: the one in
// Credentials, else caller.EnvVar() (DOTDO_CREDENTIAL_<CALLER>) when set,
// else the one stored in DataDir/credentials/<caller>.token, created (mode
// 0600) on first use. A caller reads its own to send it; the services it
// calls read it to recognize it.
func (c *Common) Credential(caller credential.Caller) (string, error) {
	if os.Getenv(LegacyTokenEnv) != "" {
		return "", fmt.Errorf("%s is no longer read: each internal caller has a credential of its own (%s, ...; see the README's configuration reference)",
			LegacyTokenEnv, credential.Deploy.EnvVar())
	}
	if tok := c.Credentials[caller]; tok != "" {
		return tok, nil
	}
	if tok := os.Getenv(caller.EnvVar()); tok != "" {
		return tok, nil
	}
	tok, err := credential.LoadOrCreate(filepath.Join(c.DataDir, CredentialsDir, caller.File()))
	if err != nil {
		return "", fmt.Errorf("credential of %s: %w", caller, err)
	}
	return tok, nil
}

// verifier returns the checker of the internal callers of service (a
// "package.Service" name): the credentials of the callers the default
// policy grants any of its procedures.
func (c *Common) verifier(logger *slog.Logger, service string) (*credential.Verifier, error) {
	policy := c.policy
	if policy == nil {
		policy = credential.DefaultPolicy()
	}
	tokens := map[credential.Caller]string{}
	for _, caller := range policy.CallersOf(service) {
		tok, err := c.Credential(caller)
		if err != nil {
			return nil, err
		}
		tokens[caller] = tok
	}
	return credential.NewVerifier(policy, tokens, logger), nil
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
