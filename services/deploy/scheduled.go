package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/dot-do/platform/internal/cron"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/authz"
)

// TriggerInput names the worker whose scheduled() handler TriggerScheduled
// runs.
type TriggerInput struct {
	// Service is the worker.
	Service string
	// Environment is its environment.
	Environment string
	// Cron is the cron expression the handler sees; the worker's first cron
	// trigger when empty.
	Cron string
}

// Triggered is what TriggerScheduled ran.
type Triggered struct {
	// Version is the worker version whose handler ran.
	Version int64
	// Cron is the cron expression the handler saw.
	Cron string
}

// TriggerScheduled runs the scheduled() handler of the live version of a
// worker now, as its cron trigger would, and returns once it has run. The
// caller needs deployments.create on the environment. A handler that
// throws is an error of kind errkind.Invalid; a backend that cannot run
// handlers by request (Cloudflare) one of kind errkind.Precondition. Each
// call is audited.
func (s *Service) TriggerScheduled(ctx context.Context, c Caller, in TriggerInput) (Triggered, error) {
	ctx, span := s.start(ctx, "deploy.TriggerScheduled", in.Environment, in.Service)
	defer span.End()
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermDeploymentsCreate, in.Environment, c.Client)
	if err != nil {
		return Triggered{}, spanErr(span, err)
	}
	if err := checkService(in.Service); err != nil {
		return Triggered{}, spanErr(span, err)
	}
	env, err := s.environment("environment", in.Environment)
	if err != nil {
		return Triggered{}, spanErr(span, err)
	}
	if in.Cron != "" {
		if len(in.Cron) > MaxCronLen {
			return Triggered{}, spanErr(span, invalid("cron", "longer than %d bytes", MaxCronLen))
		}
		if _, err := cron.Parse(in.Cron); err != nil {
			return Triggered{}, spanErr(span, invalid("cron", "%v", err))
		}
	}
	live, err := s.rec.GetLive(ctx, env.Name, in.Service)
	if errors.Is(err, errkind.NotFound) {
		return Triggered{}, spanErr(span, errkind.Errorf(errkind.Precondition, "nothing of %s is live in %s", in.Service, env.Name))
	}
	if err != nil {
		return Triggered{}, spanErr(span, err)
	}
	cfg, err := ConfigOf(live.Config)
	if err != nil {
		return Triggered{}, spanErr(span, err)
	}
	out := Triggered{Version: live.Version, Cron: in.Cron}
	if out.Cron == "" && len(cfg.Crons) > 0 {
		out.Cron = cfg.Crons[0]
	}
	runErr := s.backend.Scheduled(ctx, env.Namespace, in.Service, out.Cron)
	outcome := OutcomeSuccess
	detail := map[string]string{"cron": out.Cron}
	if runErr != nil {
		outcome = OutcomeFailure
		detail["error"] = truncate(runErr.Error(), 512)
	}
	if err := s.auditor.append(ctx, event(ctx, c, p, ActionTriggerScheduled, deploymentResource(live), outcome, detail)); err != nil {
		return Triggered{}, spanErr(span, err)
	}
	if runErr != nil {
		return Triggered{}, spanErr(span, fmt.Errorf("run the scheduled handler of %s version %d: %w", in.Service, live.Version, runErr))
	}
	return out, nil
}
