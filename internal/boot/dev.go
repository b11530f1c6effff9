package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/logging"
	"github.com/dot-do/platform/internal/telemetry"
)

// DevConfig is the configuration of every service run by `dotdo dev`.
type DevConfig struct {
	DB         DBConfig
	Auth       AuthConfig
	Runtime    RuntimeConfig
	Deploy     DeployConfig
	Dispatcher DispatcherConfig
}

type devService struct {
	name string
	cfg  Config
	addr *string
}

// services lists the services in start order: the ones others call first.
func (d *DevConfig) services() []devService {
	return []devService{
		{"db", &d.DB, &d.DB.Addr},
		{"auth", &d.Auth, &d.Auth.Addr},
		{"runtime", &d.Runtime, &d.Runtime.Addr},
		{"deploy", &d.Deploy, &d.Deploy.Addr},
		{"dispatcher", &d.Dispatcher, &d.Dispatcher.Addr},
	}
}

// Parse applies args to every service's flags, so that shared flags such as
// -data-dir apply to all; a flag only some services know is accepted by
// those that know it.
func (d *DevConfig) Parse(args []string) error {
	defined := map[string]bool{}
	for _, s := range d.services() {
		fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		s.cfg.RegisterFlags(fs)
		fs.VisitAll(func(f *flag.Flag) { defined[f.Name] = true })
		if err := fs.Parse(known(fs, args)); err != nil {
			return fmt.Errorf("dev: %s: %w", s.name, err)
		}
		if err := config.Check(fs); err != nil {
			return fmt.Errorf("dev: %s: %w", s.name, err)
		}
	}
	for _, a := range args {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && !defined[name] {
			return fmt.Errorf("dev: no service has a flag -%s", name)
		}
	}
	return nil
}

// known keeps the flags of args that fs defines (as -name=value, or -name
// value for non-boolean flags).
func known(fs *flag.FlagSet, args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++ // skip the unknown flag's value
			}
			continue
		}
		out = append(out, args[i])
		isBool := false
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok {
			isBool = b.IsBoolFlag()
		}
		if !hasValue && !isBool && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// Dev runs every service in one process, each on its own address and still
// talking Connect to the others (the dispatcher calls the runtime's handler
// directly), until ctx is done or one of them fails.
// Once all are healthy it creates the bootstrap admin key on first start and
// prints it, and what to try, on out.
func Dev(ctx context.Context, out, stderr io.Writer, args []string) error {
	var d DevConfig
	if err := d.Parse(args); err != nil {
		return err
	}
	// In one process the services reach each other at their own addresses.
	d.Auth.DBURL = "http://" + d.DB.Addr
	d.Deploy.DBURL, d.Deploy.AuthURL, d.Deploy.RuntimeURL = "http://"+d.DB.Addr, "http://"+d.Auth.Addr, "http://"+d.Runtime.Addr
	d.Dispatcher.DBURL, d.Dispatcher.RuntimeURL = "http://"+d.DB.Addr, "http://"+d.Runtime.Addr
	// The dispatcher calls the runtime in process: no HTTP hop between them.
	d.Runtime.local = newLocalRuntime()
	d.Dispatcher.local = d.Runtime.local
	// Deploys print where the dispatcher serves the worker.
	if d.Deploy.URLTemplate == "" {
		d.Deploy.URLTemplate = "http://" + d.Dispatcher.Addr + "/api/{service}/"
		d.Deploy.URLEnvironments = d.Dispatcher.Environment
	}
	// Each internal caller's credential, from the shared data directory:
	// generate them once, before the services start reading them.
	for _, caller := range credential.Callers() {
		if _, err := d.DB.Credential(caller); err != nil {
			return err
		}
	}
	d.DB.checkDataDir(logging.New(stderr, "dev", nil))
	// Global telemetry for code that uses the global providers; each
	// service gets providers of its own, named after it, for its RPCs.
	global, err := telemetry.Setup(ctx, "dev", telemetry.WithVersion(Version))
	if err != nil {
		return err
	}
	defer shutdownTelemetry(logging.New(stderr, "dev", nil), global)
	services := d.services()
	for _, s := range services {
		c := s.cfg.Base()
		c.MetricsAddr = "" // one port each: /metrics beside each service
		c.dev = true
		tel, err := telemetry.New(ctx, s.name, telemetry.WithVersion(Version))
		if err != nil {
			return err
		}
		defer shutdownTelemetry(logging.New(stderr, s.name, nil), tel)
		c.Telemetry = tel
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(services))
	for i, s := range services {
		logger := logging.New(stderr, s.name, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.cfg.Run(ctx, logger); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				cancel(errs[i])
			}
		}()
	}
	readyErr := d.ready(ctx, out, services)
	if readyErr != nil && ctx.Err() == nil {
		cancel(readyErr)
	} else {
		readyErr = nil
	}
	wg.Wait()
	return errors.Join(append(errs, readyErr)...)
}

// ready waits for every service, then bootstraps the admin key if there is
// none, and tells the user what is running and what to try.
func (d *DevConfig) ready(ctx context.Context, out io.Writer, services []devService) error {
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for _, s := range services {
		if err := WaitHealthy(wctx, "http://"+*s.addr); err != nil {
			return fmt.Errorf("dev: %s did not start: %w", s.name, err)
		}
	}
	keyPath := filepath.Join(d.Auth.DataDir, AdminKeyFile)
	tok, err := d.Auth.Credential(credential.Bootstrap)
	if err != nil {
		return err
	}
	secret, err := Bootstrap(ctx, "http://"+d.Auth.Addr, tok, d.Auth.DataDir)
	switch {
	case err == nil:
		fmt.Fprintf(out, "Created the bootstrap admin key (shown once; also in %s, mode 0600):\n\n    %s\n\n", keyPath, secret)
	case errors.Is(err, ErrAdminExists):
		fmt.Fprintf(out, "An admin key exists (in %s if this machine created it).\n", keyPath)
	default:
		return err
	}
	fmt.Fprintf(out, `dotdo platform is running:
  deploy      http://%s   (Deploy API: Connect, gRPC, gRPC-Web, REST)
  dispatcher  http://%s   (serves %s; Resolve, reflection, /metrics on http://%s)
  auth        http://%s   db http://%s   runtime http://%s   (internal)

Try this:
  ./bin/dotdo deploy --dir examples/seed --all
  curl -H 'Host: gateway.do' http://%s/
`, d.Deploy.Addr, d.Dispatcher.Addr, d.Dispatcher.Environment, d.Dispatcher.OperatorAddr, d.Auth.Addr, d.DB.Addr, d.Runtime.Addr, d.Dispatcher.Addr)
	return nil
}

// DevUsage writes the usage of `dotdo dev`: every flag of the services it
// runs, once each, with the services that take it.
func DevUsage(w io.Writer) {
	var d DevConfig
	type entry struct {
		usage, def string
		services   []string
	}
	flags := map[string]*entry{}
	var order []string
	for _, s := range d.services() {
		fs := flag.NewFlagSet(s.name, flag.ContinueOnError)
		s.cfg.RegisterFlags(fs)
		fs.VisitAll(func(f *flag.Flag) {
			e, ok := flags[f.Name]
			if !ok {
				e = &entry{usage: f.Usage, def: f.DefValue}
				flags[f.Name] = e
				order = append(order, f.Name)
			}
			e.services = append(e.services, s.name)
		})
	}
	sort.Strings(order)
	fmt.Fprintln(w, "usage: dotdo dev [flags]\n\nRuns db, auth, runtime, deploy and the dispatcher in one process, each on its own address.\nA flag applies to every service that has it.\n\nflags:")
	for _, n := range order {
		e := flags[n]
		def := ""
		if e.def != "" {
			def = fmt.Sprintf(" (default %q)", e.def)
		}
		fmt.Fprintf(w, "  -%s\n    \t%s%s [%s]\n", n, e.usage, def, strings.Join(e.services, ", "))
	}
}
