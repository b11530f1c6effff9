package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// systemPrincipal is the actor of the repairs Reconcile makes.
var systemPrincipal = authz.Principal{KeyID: SystemActor, Name: "deploy reconciler"}

// ReconcileReport lists what Reconcile repaired.
type ReconcileReport struct {
	// Resolved are the deployments that were pending, as now recorded:
	// live when the namespace holds their upload, failed otherwise.
	Resolved []store.Deployment
}

// Reconcile resolves every pending deployment, typically left by a process
// that crashed between recording a deployment and recording its outcome. It
// runs at start-up. For each (environment, service) with pending
// deployments it takes the deploy lease (waiting, up to LeaseWait, for a
// lease left by the crashed process to expire) and compares each pending
// deployment with the script the namespace holds: the deployment whose id
// the script's tags name is marked live, any other failed with an error
// saying why. Each repair is audited (actor SystemActor). Deployments whose
// namespace cannot be read stay pending and are reported in the error.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	ctx, span := s.tracer.Start(ctx, "deploy.Reconcile")
	defer span.End()
	pending, err := s.rec.ListPending(ctx)
	if err != nil {
		return ReconcileReport{}, spanErr(span, fmt.Errorf("list pending deployments: %w", err))
	}
	type pair struct{ env, service string }
	var pairs []pair
	seen := map[pair]bool{}
	for _, d := range pending {
		p := pair{d.Environment, d.Service}
		if !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
		}
	}
	var report ReconcileReport
	var errs []error
	for _, p := range pairs {
		err := s.withLease(ctx, p.env, p.service, func(ctx context.Context) error {
			resolved, err := s.resolvePending(ctx, p.env, p.service)
			report.Resolved = append(report.Resolved, resolved...)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s in %s: %w", p.service, p.env, err))
		}
	}
	if len(report.Resolved) > 0 || len(errs) > 0 {
		s.log.InfoContext(ctx, "reconciled pending deployments", "resolved", len(report.Resolved), "errors", len(errs))
	}
	return report, spanErr(span, errors.Join(errs...))
}

// resolvePending resolves the pending deployments of (env, service), oldest
// first. It runs under their lease, so none of them is in flight.
func (s *Service) resolvePending(ctx context.Context, env, service string) ([]store.Deployment, error) {
	items, _, err := s.rec.ListDeployments(ctx, store.ListFilter{Service: service, Environment: env, Status: store.StatusPending, PageSize: store.MaxPageSize})
	if err != nil {
		return nil, fmt.Errorf("list pending deployments: %w", err)
	}
	slices.Reverse(items)
	var resolved []store.Deployment
	for _, d := range items {
		rd, err := s.resolve(ctx, d)
		if rd.Status != store.StatusPending {
			resolved = append(resolved, rd)
		}
		if err != nil {
			return resolved, err
		}
	}
	return resolved, nil
}

// resolve settles the pending deployment d by the tags of the script its
// namespace holds, and audits the repair.
func (s *Service) resolve(ctx context.Context, d store.Deployment) (store.Deployment, error) {
	tags, err := s.backend.ScriptTags(ctx, d.Namespace, d.Service)
	var outcome store.Outcome
	switch {
	case errors.Is(err, backend.ErrNotFound):
		outcome = store.Outcome{Status: store.StatusFailed,
			Error: fmt.Sprintf("interrupted: the deploy stopped before its upload reached namespace %s, which holds no script %s", d.Namespace, d.Service)}
	case err != nil:
		return d, fmt.Errorf("resolve pending deployment %s: %w", d.ID, err)
	case deploymentInTags(tags) == d.ID:
		outcome = store.Outcome{Status: store.StatusLive}
	default:
		holder := deploymentInTags(tags)
		if holder == "" {
			holder = "a script the platform did not tag"
		} else {
			holder = "deployment " + holder
		}
		outcome = store.Outcome{Status: store.StatusFailed,
			Error: fmt.Sprintf("interrupted: the deploy stopped before its upload completed; namespace %s holds %s", d.Namespace, holder)}
	}
	rd, err := s.complete(ctx, d.ID, outcome)
	if err != nil {
		return d, fmt.Errorf("resolve pending deployment %s: %w", d.ID, err)
	}
	s.metrics.deployment(ctx, rd, nil, -1) // its start was another process's
	s.log.InfoContext(ctx, "resolved pending deployment", "deployment", rd.ID, "service", rd.Service, "environment", rd.Environment,
		"version", rd.Version, "status", rd.Status)
	auditOutcome := OutcomeSuccess
	if rd.Status != store.StatusLive {
		auditOutcome = OutcomeFailure
	}
	if err := s.auditor.append(ctx, event(ctx, Caller{}, systemPrincipal, ActionReconcile, deploymentResource(rd), auditOutcome, deploymentDetail(rd))); err != nil {
		return rd, err
	}
	return rd, nil
}
