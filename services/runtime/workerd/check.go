package workerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// CheckStartup starts b in a process of its own, as it would serve, and
// reports whether it starts: a top-level throw, a syntax error, a missing
// import, a main module without handlers or an unsupported compatibility
// date give a *StartupError with workerd's message; a worker that does not
// finish starting within StartupCheckTimeout (a loop at top level) gives
// one with Timeout set. None of the worker's handlers runs. It returns how
// long the start took.
func (s *Supervisor) CheckStartup(ctx context.Context, b *Bundle) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	key := Key{Namespace: "(startup-check)", Script: hex.EncodeToString(id[:])}
	in, err := s.spawn(key, b, s.opt.StartupCheckTimeout)
	switch {
	case err == nil:
		s.kill(in, "")
		<-in.done
		return in.startTook, nil
	case errors.Is(err, errExitedEarly):
		return 0, &StartupError{Message: startupMessage(in.stderr())}
	case errors.Is(err, errStartTimeout):
		return 0, &StartupError{Message: "Script startup exceeded the time limit.", Timeout: true}
	case errors.Is(err, ErrClosed):
		return 0, err
	default:
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
}
