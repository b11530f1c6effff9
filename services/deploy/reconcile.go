package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dot-do/platform/internal/errkind"
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
	type pair struct{ env, service string }
	var report ReconcileReport
	var errs []error
	seen := map[pair]bool{}
	// Page through the pending deployments, one bounded page at a time;
	// each page's services are resolved before the next page is read.
	for page := (store.Page{PageSize: store.MaxPageSize}); ; {
		pending, next, err := s.rec.ListPending(ctx, page)
		if err != nil {
			errs = append(errs, fmt.Errorf("list pending deployments: %w", err))
			break
		}
		for _, d := range pending {
			p := pair{d.Environment, d.Service}
			if seen[p] {
				continue
			}
			seen[p] = true
			err := s.withLease(ctx, p.env, p.service, func(ctx context.Context, fence store.LeaseFence) error {
				resolved, err := s.resolvePending(ctx, p.env, p.service, fence)
				report.Resolved = append(report.Resolved, resolved...)
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("reconcile %s in %s: %w", p.service, p.env, err))
			}
		}
		if next == "" || ctx.Err() != nil {
			break
		}
		page.PageToken = next
	}
	if len(report.Resolved) > 0 || len(errs) > 0 {
		s.log.InfoContext(ctx, "reconciled pending deployments", "resolved", len(report.Resolved), "errors", len(errs))
	}
	return report, spanErr(span, errors.Join(errs...))
}

// resolvePending resolves the pending deployments of (env, service), oldest
// first, however many there are. It runs under their lease (fence), so none
// of them is in flight.
func (s *Service) resolvePending(ctx context.Context, env, service string, fence store.LeaseFence) ([]store.Deployment, error) {
	var resolved []store.Deployment
	for {
		// Newest first, one page at a time: each resolved deployment
		// leaves the pending set, so the first page is read again until
		// it is empty.
		items, _, err := s.rec.ListDeployments(ctx, store.ListFilter{Service: service, Environment: env, Status: store.StatusPending, PageSize: store.MaxPageSize})
		if err != nil {
			return resolved, fmt.Errorf("list pending deployments: %w", err)
		}
		if len(items) == 0 {
			return resolved, nil
		}
		slices.Reverse(items)
		for _, d := range items {
			rd, err := s.resolve(ctx, d, fence)
			if rd.Status == store.StatusPending {
				// Not resolved (and err says why): stop, or this would
				// read it again forever.
				return resolved, errors.Join(err, fmt.Errorf("deployment %s is still pending", d.ID))
			}
			resolved = append(resolved, rd)
			if err != nil {
				return resolved, err
			}
		}
	}
}

// resolve settles the pending deployment d by the tags of the script its
// namespace holds, and audits the repair. When the namespace holds d's
// upload although a newer version went live meanwhile (d's holder stalled
// past its lease, its upload landed late and its completion was refused by
// the fence), d failed, and the live version is uploaded again.
func (s *Service) resolve(ctx context.Context, d store.Deployment, fence store.LeaseFence) (store.Deployment, error) {
	tags, err := s.backend.ScriptTags(ctx, d.Namespace, d.Service)
	var outcome store.Outcome
	var live store.Deployment
	if err == nil && deploymentInTags(tags) == d.ID {
		var lerr error
		if live, lerr = s.rec.GetLive(ctx, d.Environment, d.Service); lerr != nil && !errors.Is(lerr, errkind.NotFound) {
			return d, fmt.Errorf("resolve pending deployment %s: %w", d.ID, lerr)
		}
	}
	switch {
	case err == nil && live.ID != "" && live.Version > d.Version:
		if rerr := s.restore(ctx, live, fence); rerr != nil {
			return d, fmt.Errorf("resolve pending deployment %s: its upload landed over live version %d, which could not be uploaded again: %w", d.ID, live.Version, rerr)
		}
		outcome = store.Outcome{Status: store.StatusFailed,
			Error: fmt.Sprintf("interrupted: its upload reached namespace %s after version %d went live (its deploy had lost the lease); version %d was uploaded again", d.Namespace, live.Version, live.Version)}
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
	outcome.Lease = &fence
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

// restore uploads the live deployment d again, from its stored bundle,
// tagged with its own id and version, after the lease is checked.
func (s *Service) restore(ctx context.Context, d store.Deployment, fence store.LeaseFence) error {
	data, err := s.rec.GetBlob(ctx, d.ScriptSHA256)
	if err != nil {
		return fmt.Errorf("load the script of version %d: %w", d.Version, err)
	}
	w, err := decodeBundle(data)
	if err != nil {
		return err
	}
	if err := s.checkFence(ctx, d.Environment, d.Service, fence); err != nil {
		return err
	}
	return s.upload(ctx, d, w)
}

// lateUpload is the error of a deploy whose completion the lease fence
// refused after its upload: the upload may have landed over a newer
// version.
type lateUpload struct {
	d   store.Deployment
	err error
}

func (e *lateUpload) Error() string { return e.err.Error() }
func (e *lateUpload) Unwrap() error { return e.err }

// repairLate repairs after a deploy that failed with a lateUpload: under a
// new holding of the lease it settles what is pending, and when the
// namespace still holds the late upload although another deployment is
// live, uploads the live deployment again and audits the repair. It only
// logs its own failures (a later deploy or Reconcile gets another chance).
func (s *Service) repairLate(ctx context.Context, err error) {
	var late *lateUpload
	if !errors.As(err, &late) {
		return
	}
	d := late.d
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LeaseWait+s.cfg.UploadTimeout)
	defer cancel()
	rerr := s.withLease(ctx, d.Environment, d.Service, func(ctx context.Context, fence store.LeaseFence) error {
		if _, err := s.resolvePending(ctx, d.Environment, d.Service, fence); err != nil {
			return err
		}
		tags, err := s.backend.ScriptTags(ctx, d.Namespace, d.Service)
		if errors.Is(err, backend.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if deploymentInTags(tags) != d.ID {
			return nil // the late upload did not land, or was overwritten since
		}
		live, err := s.rec.GetLive(ctx, d.Environment, d.Service)
		if errors.Is(err, errkind.NotFound) || (err == nil && live.ID == d.ID) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.restore(ctx, live, fence); err != nil {
			return err
		}
		detail := deploymentDetail(live)
		detail["late_deployment_id"] = d.ID
		detail["repair"] = fmt.Sprintf("version %d landed after version %d went live; version %d uploaded again", d.Version, live.Version, live.Version)
		return s.auditor.append(ctx, event(ctx, Caller{}, systemPrincipal, ActionReconcile, deploymentResource(live), OutcomeSuccess, detail))
	})
	if rerr != nil {
		s.log.ErrorContext(ctx, "repair after a late upload", "deployment", d.ID, "err", rerr.Error())
		return
	}
	s.log.WarnContext(ctx, "repaired after a late upload", "deployment", d.ID, "service", d.Service, "environment", d.Environment)
}
