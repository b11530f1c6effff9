package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/logging"
)

// DevConfig is the configuration of every service run by `dotdo dev`.
type DevConfig struct {
	DB      DBConfig
	Auth    AuthConfig
	Runtime RuntimeConfig
	Deploy  DeployConfig
}

// Parse applies args to every service's flags, so that shared flags such as
// -data-dir apply to all. Flags that only some services know are accepted.
func (d *DevConfig) Parse(args []string) error {
	for _, s := range d.services() {
		fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		s.register(fs)
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("dev: %s: %w", s.name, err)
		}
	}
	return nil
}

type devService struct {
	name     string
	register func(*flag.FlagSet)
	run      Runner
	url      string
}

// services lists the services in start order: the ones others call first.
func (d *DevConfig) services() []devService {
	return []devService{
		{"db", d.DB.RegisterFlags, d.DB.Run, "http://" + d.DB.Addr},
		{"auth", d.Auth.RegisterFlags, d.Auth.Run, "http://" + d.Auth.Addr},
		{"runtime", d.Runtime.RegisterFlags, d.Runtime.Run, "http://" + d.Runtime.Addr},
		{"deploy", d.Deploy.RegisterFlags, d.Deploy.Run, "http://" + d.Deploy.Addr},
	}
}

// Dev runs every service in one process, each on its own address and still
// talking Connect to the others, until ctx is done or one of them fails.
// Once all are healthy it creates the bootstrap admin key on first start and
// prints it on out.
func Dev(ctx context.Context, out, stderr io.Writer, args []string) error {
	var d DevConfig
	if err := d.Parse(args); err != nil {
		return err
	}
	// One internal credential for all, from the shared data directory.
	tok, err := d.DB.Token()
	if err != nil {
		return err
	}
	for _, c := range []*Common{&d.Auth.Common, &d.Runtime.Common, &d.Deploy.Common} {
		c.InternalToken = tok
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	services := d.services()
	errs := make([]error, len(services))
	for i, s := range services {
		logger := logging.New(stderr, s.name, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(ctx, logger); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				cancel(errs[i])
			}
		}()
	}
	if err := d.ready(ctx, out, services); err != nil && ctx.Err() == nil {
		cancel(err)
		errs = append(errs, err)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ready waits for every service, then bootstraps the admin key if there is
// none, and tells the user what is running.
func (d *DevConfig) ready(ctx context.Context, out io.Writer, services []devService) error {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, s := range services {
		if err := WaitHealthy(wctx, s.url); err != nil {
			return fmt.Errorf("dev: %s did not start: %w", s.name, err)
		}
	}
	keyPath := filepath.Join(d.Auth.DataDir, AdminKeyFile)
	secret, err := Bootstrap(ctx, "http://"+d.Auth.Addr, d.Auth.InternalToken, d.Auth.DataDir)
	switch {
	case err == nil:
		fmt.Fprintf(out, "Created the bootstrap admin key (shown once; also in %s, mode 0600):\n\n    %s\n\n", keyPath, secret)
	case errors.Is(err, ErrAdminExists):
		fmt.Fprintf(out, "An admin key exists (see %s if this machine created it).\n", keyPath)
	default:
		return err
	}
	fmt.Fprintf(out, "dotdo platform is running: deploy http://%s  auth http://%s  db http://%s  runtime http://%s\n",
		d.Deploy.Addr, d.Auth.Addr, d.DB.Addr, d.Runtime.Addr)
	return nil
}
