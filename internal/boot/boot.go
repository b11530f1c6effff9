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

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/logging"
)

// Runner runs a configured service until ctx is done.
type Runner func(ctx context.Context, logger *slog.Logger) error

// Main runs a single-service binary: it registers the service's flags,
// parses args, and runs the service until SIGINT or SIGTERM. It returns the
// process exit code: 0 on a clean stop, 2 on bad flags, 1 on failure.
func Main(name string, args []string, stderr io.Writer, flags func(fs *flag.FlagSet) Runner) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	logger := logging.New(stderr, name, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		logger.Error("exiting", "err", err.Error())
		return 1
	}
	return 0
}

// Common is the configuration every service shares.
type Common struct {
	// DataDir holds SQLite, runtime data and generated credentials.
	DataDir string
	// InternalToken is the internal service credential; when empty it is
	// read from (or generated into) DataDir/internal.token.
	InternalToken string
}

// RegisterFlags registers the shared flags on fs.
func (c *Common) RegisterFlags(fs *flag.FlagSet) {
	config.String(fs, &c.DataDir, "data-dir", "DOTDO_DATA_DIR", config.DefaultDataDir, "directory for local data and generated credentials")
	c.InternalToken = os.Getenv("DOTDO_INTERNAL_TOKEN") // a secret: never a flag, which would show in ps
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

// Version is the build version reported by the services; set with
// -ldflags "-X github.com/dot-do/platform/internal/boot.Version=...".
var Version = "dev"
