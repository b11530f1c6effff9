package boot

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/dot-do/platform/internal/logging"
)

// Service names a service binary and its flag registration.
type Service struct {
	Name  string
	Flags func(fs *flag.FlagSet) Runner
}

// Services lists every service of the platform in start order: the ones
// others call come first.
var Services = []Service{
	{"deploy", DeployFlags},
}

// Dev runs every service in one process, each on its own address (the
// defaults, or the DOTDO_*_ADDR variables) and still talking Connect to the
// others, until ctx is done or one of them fails. args are passed to every
// service's flag set, so shared flags such as -data-dir apply to all.
func Dev(ctx context.Context, stderr io.Writer, args []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(Services))
	for i, s := range Services {
		fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		run := s.Flags(fs)
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("dev: %s: %w", s.Name, err)
		}
		logger := logging.New(stderr, s.Name, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx, logger); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.Name, err)
				cancel(errs[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
