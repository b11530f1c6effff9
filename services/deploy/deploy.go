package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// Result is the outcome of a Deploy or a Rollback.
type Result struct {
	// Deployment is the deployment as recorded: live, or for an idempotent
	// replay whatever the first call recorded.
	Deployment store.Deployment
	// URL is where the dispatcher serves the worker, when
	// Config.URLTemplate is set.
	URL string
	// Replayed is true when an idempotency key matched an earlier call,
	// whose deployment is returned; nothing was uploaded.
	Replayed bool
	// Warnings tell the caller what the deploy did not do, for example
	// schedule the worker's new cron triggers (see cronWarning).
	Warnings []string
}

// Deploy uploads a new version of a worker to the namespace of an
// environment and makes it live. The caller needs deployments.create on the
// environment. On success the deployment is live. When the upload fails the
// deployment is recorded as failed and the error is a *DeploymentError
// holding it; invalid input is refused before anything is stored or
// uploaded.
func (s *Service) Deploy(ctx context.Context, c Caller, in DeployInput) (Result, error) {
	ctx, span := s.start(ctx, "deploy.Deploy", in.Environment, in.Service)
	defer span.End()
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermDeploymentsCreate, in.Environment, c.Client)
	if err != nil {
		return Result{}, spanErr(span, err)
	}
	env, w, err := s.validateDeploy(ctx, in)
	if err != nil {
		return Result{}, spanErr(span, err)
	}
	blob, err := encodeBundle(w)
	if err != nil {
		return Result{}, spanErr(span, fmt.Errorf("encode script bundle: %w", err))
	}
	sha, err := s.rec.PutBlob(ctx, blob)
	if err != nil {
		return Result{}, spanErr(span, fmt.Errorf("store script bundle: %w", err))
	}
	nd := store.NewDeployment{
		Service:           in.Service,
		Environment:       env.Name,
		Namespace:         env.Namespace,
		Kind:              store.KindDeploy,
		ScriptSHA256:      sha,
		ScriptSize:        w.size(),
		MainModule:        w.MainModule,
		CompatibilityDate: w.CompatibilityDate,
		Tags:              w.Tags,
		Metadata:          in.Metadata.storeMetadata(),
		Config:            w.Config.encode(),
		ActorKeyID:        p.KeyID,
		ActorName:         p.Name,
		IdempotencyKey:    in.IdempotencyKey,
	}
	var res Result
	err = s.withLease(ctx, env.Name, in.Service, func(ctx context.Context, fence store.LeaseFence) error {
		if _, err := s.resolvePending(ctx, env.Name, in.Service, fence); err != nil {
			return err
		}
		res, err = s.ship(ctx, c, p, ActionDeploy, nd, w, fence)
		return err
	})
	s.repairLate(ctx, err)
	if err == nil && !res.Replayed && res.Deployment.Status == store.StatusLive {
		if warn := s.cronWarning(ctx, env.Name, in.Service, w.Config.Crons); warn != "" {
			res.Warnings = append(res.Warnings, warn)
		}
	}
	span.SetAttributes(attribute.String("dotdo.deployment_id", res.Deployment.ID), attribute.Int64("dotdo.version", res.Deployment.Version))
	return res, spanErr(span, err)
}

// Rollback makes an earlier version live again by re-uploading its stored
// bundle, and records a new deployment of kind rollback pointing at it. The
// caller needs deployments.rollback on the environment. Version 0 restores
// the version that was live before the current one. An unknown version is
// an error wrapping errkind.NotFound; a version that never went live (or
// is live now) one of kind errkind.Precondition.
func (s *Service) Rollback(ctx context.Context, c Caller, in RollbackInput) (Result, error) {
	ctx, span := s.start(ctx, "deploy.Rollback", in.Environment, in.Service)
	defer span.End()
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermDeploymentsRollback, in.Environment, c.Client)
	if err != nil {
		return Result{}, spanErr(span, err)
	}
	if err := checkService(in.Service); err != nil {
		return Result{}, spanErr(span, err)
	}
	env, err := s.environment("environment", in.Environment)
	if err != nil {
		return Result{}, spanErr(span, err)
	}
	switch {
	case in.Version < 0:
		return Result{}, spanErr(span, invalid("version", "must not be negative"))
	case len(in.Reason) > MaxReasonLen:
		return Result{}, spanErr(span, invalid("reason", "longer than %d bytes", MaxReasonLen))
	case len(in.IdempotencyKey) > MaxIdempotencyKeyLen:
		return Result{}, spanErr(span, invalid("idempotency_key", "longer than %d bytes", MaxIdempotencyKeyLen))
	}
	var res Result
	err = s.withLease(ctx, env.Name, in.Service, func(ctx context.Context, fence store.LeaseFence) error {
		if _, err := s.resolvePending(ctx, env.Name, in.Service, fence); err != nil {
			return err
		}
		// A retried rollback must not pick its target again: the first
		// call changed what is live.
		if d, ok, err := s.recentByIdempotencyKey(ctx, env.Name, in.Service, p.KeyID, in.IdempotencyKey); err != nil || ok {
			if err == nil && (d.Kind != store.KindRollback || (in.Version != 0 && d.RestoredVersion != in.Version)) {
				// The key was first used for another request: refuse, as
				// BeginDeployment does for deploys.
				return invalid("idempotency_key", "was used for deployment %s (%s of version %d), not this rollback", d.ID, d.Kind, d.Version)
			}
			res = Result{Deployment: d, URL: s.url(d), Replayed: ok}
			if err == nil {
				err = replayErr(d)
			}
			return err
		}
		target, err := s.rollbackTarget(ctx, env.Name, in.Service, in.Version)
		if err != nil {
			return err
		}
		data, err := s.rec.GetBlob(ctx, target.ScriptSHA256)
		if err != nil {
			return fmt.Errorf("load the script of version %d: %w", target.Version, err)
		}
		w, err := decodeBundle(data)
		if err != nil {
			return err
		}
		if w.Config, err = ConfigOf(target.Config); err != nil {
			return fmt.Errorf("version %d of %s in %s: %w", target.Version, in.Service, env.Name, err)
		}
		meta := make(map[string]string, len(target.Metadata)+1)
		for k, v := range target.Metadata {
			meta[k] = v
		}
		if in.Reason != "" {
			meta[metaReason] = in.Reason
		} else {
			delete(meta, metaReason)
		}
		nd := store.NewDeployment{
			Service:           in.Service,
			Environment:       env.Name,
			Namespace:         env.Namespace,
			Kind:              store.KindRollback,
			RestoredVersion:   target.Version,
			ScriptSHA256:      target.ScriptSHA256,
			ScriptSize:        w.size(),
			MainModule:        w.MainModule,
			CompatibilityDate: w.CompatibilityDate,
			Tags:              w.Tags,
			Metadata:          meta,
			Config:            target.Config,
			ActorKeyID:        p.KeyID,
			ActorName:         p.Name,
			IdempotencyKey:    in.IdempotencyKey,
		}
		res, err = s.ship(ctx, c, p, ActionRollback, nd, w, fence)
		return err
	})
	s.repairLate(ctx, err)
	span.SetAttributes(attribute.String("dotdo.deployment_id", res.Deployment.ID), attribute.Int64("dotdo.version", res.Deployment.Version))
	return res, spanErr(span, err)
}

// rollbackTarget returns the deployment whose script a rollback to version
// restores (see Rollback).
func (s *Service) rollbackTarget(ctx context.Context, env, service string, version int64) (store.Deployment, error) {
	if version > 0 {
		t, err := s.rec.GetDeploymentByVersion(ctx, env, service, version)
		switch {
		case errors.Is(err, errkind.NotFound):
			return store.Deployment{}, fmt.Errorf("version %d of %s in %s: %w", version, service, env, errkind.NotFound)
		case err != nil:
			return store.Deployment{}, err
		case t.Status == store.StatusLive:
			return store.Deployment{}, fmt.Errorf("version %d of %s in %s is live already: %w", version, service, env, errkind.Precondition)
		case t.Status != store.StatusSuperseded:
			return store.Deployment{}, fmt.Errorf("version %d of %s in %s is %s and never went live; only a version that was live can be restored: %w",
				version, service, env, t.Status, errkind.Precondition)
		}
		return t, nil
	}
	live, err := s.rec.GetLive(ctx, env, service)
	if errors.Is(err, errkind.NotFound) {
		return store.Deployment{}, fmt.Errorf("nothing of %s is live in %s, so there is nothing to roll back: %w", service, env, errkind.Precondition)
	}
	if err != nil {
		return store.Deployment{}, err
	}
	// The version the live one replaced is in practice the newest
	// superseded one: read small pages, so that a rollback costs the same
	// however long the service's history is.
	f := store.ListFilter{Service: service, Environment: env, Status: store.StatusSuperseded, PageSize: rollbackPageSize}
	for {
		items, next, err := s.rec.ListDeployments(ctx, f)
		if err != nil {
			return store.Deployment{}, err
		}
		for _, d := range items {
			if d.SupersededBy == live.ID {
				return d, nil
			}
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	return store.Deployment{}, fmt.Errorf("no version of %s in %s was live before version %d: %w", service, env, live.Version, errkind.Precondition)
}

// rollbackPageSize is the page size of the search for a rollback's
// default target.
const rollbackPageSize = 8

// recentByIdempotencyKey looks for a deployment of (env, service) recorded
// by actor under key among the most recent ones. Older ones are still
// caught by BeginDeployment, though only for the same target.
func (s *Service) recentByIdempotencyKey(ctx context.Context, env, service, actor, key string) (store.Deployment, bool, error) {
	if key == "" || actor == "" {
		return store.Deployment{}, false, nil
	}
	items, _, err := s.rec.ListDeployments(ctx, store.ListFilter{Service: service, Environment: env, PageSize: store.MaxPageSize})
	if err != nil {
		return store.Deployment{}, false, err
	}
	for _, d := range items {
		if d.ActorKeyID == actor && d.IdempotencyKey == key {
			return d, true, nil
		}
	}
	return store.Deployment{}, false, nil
}

// ship records nd as pending, audits the start, uploads w and records and
// audits the outcome, which it counts in the metrics once it is final. It
// runs under the lease of nd's service, whose holding fence fences the
// upload and the completion.
func (s *Service) ship(ctx context.Context, c Caller, p authz.Principal, action string, nd store.NewDeployment, w worker, fence store.LeaseFence) (res Result, err error) {
	d, created, err := s.rec.BeginDeployment(ctx, nd)
	if err != nil {
		return Result{}, fmt.Errorf("record deployment: %w", err)
	}
	res = Result{Deployment: d, URL: s.url(d)}
	if !created {
		res.Replayed = true
		return res, replayErr(d)
	}
	start := s.now()
	defer func() {
		if res.Deployment.Status != store.StatusPending { // else Reconcile counts it
			s.metrics.deployment(ctx, res.Deployment, err, s.now().Sub(start))
		}
	}()
	resource := deploymentResource(d)
	if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeStarted, deploymentDetail(d))); err != nil {
		// Fail closed: nothing is uploaded without its audit record.
		if fd, cerr := s.complete(ctx, d.ID, store.Outcome{Status: store.StatusFailed, Error: "refused: " + err.Error(), Lease: &fence}); cerr == nil {
			d = fd
		}
		res.Deployment = d
		return res, &DeploymentError{Deployment: d, Err: err}
	}

	if err := s.checkFence(ctx, d.Environment, d.Service, fence); err != nil {
		// Not uploaded: the deployment stays pending until the holder of
		// the lease (or Reconcile) resolves it as failed.
		return res, &DeploymentError{Deployment: d, Err: err}
	}
	upErr := s.upload(ctx, d, w)
	outcome, err := s.outcome(ctx, d, upErr)
	if err != nil {
		return res, &DeploymentError{Deployment: d, Err: err}
	}
	outcome.Lease = &fence
	// Record the outcome even when the lease was lost meanwhile (which
	// cancels ctx): the fence decides whether this holder still may.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	fd, err := s.complete(cctx, d.ID, outcome)
	if err != nil {
		s.log.ErrorContext(ctx, "record deployment outcome", "deployment", d.ID, "outcome", outcome.Status, "err", err.Error())
		if errors.Is(err, errkind.Precondition) {
			// The fence refused: another deploy took over the lease while
			// this upload was in flight, and the upload may have landed
			// over a newer version. Deploy repairs that once this
			// holding is released.
			return res, &DeploymentError{Deployment: d, Err: &lateUpload{d: d, err: fmt.Errorf("%w: its outcome (%s) was not recorded, because another deploy of %s took over the lease",
				ErrLeaseLost, outcome.Status, d.Service)}}
		}
		return res, &DeploymentError{Deployment: d, Err: fmt.Errorf("%w: its outcome (%s) could not be recorded; the next deploy of %s or a reconcile settles it",
			ErrOutcomeUnknown, outcome.Status, d.Service)}
	}
	d = fd
	res.Deployment = d
	auditOutcome := OutcomeSuccess
	if d.Status != store.StatusLive {
		auditOutcome = OutcomeFailure
	}
	if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, auditOutcome, deploymentDetail(d))); err != nil {
		return res, &DeploymentError{Deployment: d, Err: err}
	}
	if d.Status != store.StatusLive {
		return res, &DeploymentError{Deployment: d, Err: upErr}
	}
	return res, nil
}

// outcome is how d ended given the error of its upload. When the upload
// may have been applied although it failed (a lost answer), the namespace
// is asked; when that fails too the outcome is unknown and the error wraps
// ErrOutcomeUnknown.
func (s *Service) outcome(ctx context.Context, d store.Deployment, upErr error) (store.Outcome, error) {
	if upErr == nil {
		return store.Outcome{Status: store.StatusLive}, nil
	}
	if ambiguous(upErr) {
		landed, err := s.holds(ctx, d)
		if err != nil {
			s.log.ErrorContext(ctx, "upload outcome unknown", "deployment", d.ID, "upload_err", upErr.Error(), "read_err", err.Error())
			return store.Outcome{}, fmt.Errorf("%w: %v; the namespace could not be read back either, so the deployment stays pending until the next deploy of %s or a reconcile settles it",
				ErrOutcomeUnknown, upErr, d.Service)
		}
		if landed {
			return store.Outcome{Status: store.StatusLive}, nil
		}
	}
	return store.Outcome{Status: store.StatusFailed, Error: upErr.Error()}, nil
}

// replayErr is the error of an idempotent replay: nil unless the first call
// failed, in which case it fails the same way.
func replayErr(d store.Deployment) error {
	if d.Status == store.StatusFailed {
		return &DeploymentError{Deployment: d, Err: errors.New(d.Error)}
	}
	return nil
}

// upload puts w into d's namespace, tagged with d's id and version.
func (s *Service) upload(ctx context.Context, d store.Deployment, w worker) error {
	ctx, span := s.tracer.Start(ctx, "deploy.upload", trace.WithAttributes(
		attribute.String("dotdo.namespace", d.Namespace), attribute.Int64("dotdo.script_size", d.ScriptSize)))
	defer span.End()
	uctx, cancel := context.WithTimeout(ctx, s.cfg.UploadTimeout)
	defer cancel()
	err := s.backend.Upload(uctx, d.Namespace, w.script(d.Service, d.ID, d.Version))
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) {
			err = fmt.Errorf("%w (%v)", cause, err)
		}
	}
	return spanErr(span, err)
}

// ambiguous reports whether a failed upload may still have been applied:
// anything but a clear refusal by the backend.
func ambiguous(err error) bool {
	return !errors.Is(err, backend.ErrRejected) && !errors.Is(err, backend.ErrNotFound) && !errors.Is(err, backend.ErrUnauthorized)
}

// holds reports whether d's namespace holds d's upload, by the deployment
// id in the script's tags.
func (s *Service) holds(ctx context.Context, d store.Deployment) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	tags, err := s.backend.ScriptTags(ctx, d.Namespace, d.Service)
	if errors.Is(err, backend.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return deploymentInTags(tags) == d.ID, nil
}

// complete records d's outcome, retrying a few times on infrastructure
// errors (not on the store's verdicts).
func (s *Service) complete(ctx context.Context, id string, o store.Outcome) (store.Deployment, error) {
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*5 {
		var d store.Deployment
		if d, err = s.rec.CompleteDeployment(ctx, id, o); err == nil {
			return d, nil
		}
		if errors.Is(err, errkind.Precondition) || errors.Is(err, errkind.Invalid) || errors.Is(err, errkind.NotFound) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return store.Deployment{}, err
}

// url returns where the dispatcher serves d's worker, or "".
func (s *Service) url(d store.Deployment) string {
	if s.cfg.URLTemplate == "" || d.ID == "" {
		return ""
	}
	if len(s.cfg.URLEnvironments) > 0 && !slices.Contains(s.cfg.URLEnvironments, d.Environment) {
		return ""
	}
	return strings.NewReplacer("{service}", d.Service, "{environment}", d.Environment, "{namespace}", d.Namespace).Replace(s.cfg.URLTemplate)
}

func (s *Service) start(ctx context.Context, name, env, service string) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, name, trace.WithAttributes(attribute.String("dotdo.environment", env), attribute.String("dotdo.service", service)))
}

// spanErr records err on span and returns it.
func spanErr(span trace.Span, err error) error {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
