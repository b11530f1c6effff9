package deploy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// The dispatch Worker of an environment routes its traffic on Cloudflare:
// an account-level script ("dotdo-dispatcher-<env>") generated from the
// environment's routing table (routing.GenerateWorker), bound to the
// environment's dispatch namespace, and attached to the table's domains by
// Workers routes. Its deploys are recorded (store.DispatchWorkers) and
// audited like a worker's, versioned, and rolled back by uploading an
// earlier version's module and routes again.
//
// Cloudflare has no cron triggers for dispatch namespace scripts, so the
// dispatch Worker carries them: built from the crons of the environment's
// live workers, it is scheduled with their union (the account script's
// schedules, set with each upload and recorded with the deployment so a
// rollback restores them), and its scheduled() handler runs the workers
// of the cron that fired (see routing.GenerateWorker).

// ErrNoDispatchWorkers means the namespace backend cannot host a dispatch
// Worker.
var ErrNoDispatchWorkers = errkind.New(errkind.Precondition, "the namespace backend cannot host a dispatch Worker")

// DispatchWorkerBuild is a dispatch Worker generated from a version of a
// routing table.
type DispatchWorkerBuild struct {
	// Worker is the generated Worker.
	Worker routing.Worker
	// TableVersion is the version of the routing table (0: the seed, none
	// being stored).
	TableVersion int64
}

// BuildDispatchWorker generates env's dispatch Worker from its current
// routing table. The caller needs routes.read on env.
func (s *Service) BuildDispatchWorker(ctx context.Context, c Caller, env string) (DispatchWorkerBuild, error) {
	if _, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesRead, env, c.Client); err != nil {
		return DispatchWorkerBuild{}, err
	}
	e, err := s.environment("environment", env)
	if err != nil {
		return DispatchWorkerBuild{}, err
	}
	return s.buildDispatchWorker(ctx, e)
}

func (s *Service) buildDispatchWorker(ctx context.Context, e config.Environment) (DispatchWorkerBuild, error) {
	rt, err := s.currentRoutes(ctx, e.Name, 0)
	if err != nil {
		return DispatchWorkerBuild{}, err
	}
	crons, err := s.liveCrons(ctx, e.Name)
	if err != nil {
		return DispatchWorkerBuild{}, err
	}
	w, err := routing.GenerateWorker(rt.Table, routing.WorkerOptions{
		Environment: e.Name, Namespace: e.Namespace, CompatibilityDate: s.cfg.DefaultCompatibilityDate, TableVersion: rt.Version,
		Crons: crons,
	})
	if err != nil {
		return DispatchWorkerBuild{}, fmt.Errorf("generate the dispatch Worker of %s: %w", e.Name, err)
	}
	return DispatchWorkerBuild{Worker: w, TableVersion: rt.Version}, nil
}

// DeployDispatchWorker builds env's dispatch Worker from its current
// routing table, uploads it and routes the table's domains to it. The
// caller needs routes.write on env. The deploy is recorded (pending, then
// live or failed) and audited (ActionDispatcherDeploy) before and after
// the upload; a failed upload returns the recorded deployment with an
// error.
func (s *Service) DeployDispatchWorker(ctx context.Context, c Caller, env string) (store.DispatchWorkerDeployment, error) {
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesWrite, env, c.Client)
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	e, err := s.environment("environment", env)
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	if _, ok := s.backend.(backend.DispatchWorkers); !ok {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("%w (%s)", ErrNoDispatchWorkers, s.backend.Name())
	}
	b, err := s.buildDispatchWorker(ctx, e)
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	sha, err := s.rec.PutBlob(ctx, b.Worker.Module)
	if err != nil {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("store the dispatch Worker's module: %w", err)
	}
	return s.shipDispatchWorker(ctx, c, p, ActionDispatcherDeploy, e, store.NewDispatchWorkerDeployment{
		Environment: e.Name, Kind: store.KindDeploy, RouteTableVersion: b.TableVersion, ScriptName: b.Worker.ScriptName,
		ScriptSHA256: sha, CompatibilityDate: s.cfg.DefaultCompatibilityDate, Routes: b.Worker.Routes,
		Crons: cronTriggers(b.Worker.Crons, b.Worker.CronWorkers),
	}, b.Worker.Module)
}

// RollbackDispatchWorker uploads an earlier version of env's dispatch
// Worker again, with its routes, as a new version of kind rollback. Version
// 0 restores the version that was live before the current one. The caller
// needs routes.write on env; it is recorded and audited
// (ActionDispatcherRollback) as DeployDispatchWorker is.
func (s *Service) RollbackDispatchWorker(ctx context.Context, c Caller, env string, version int64) (store.DispatchWorkerDeployment, error) {
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesWrite, env, c.Client)
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	e, err := s.environment("environment", env)
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	if version < 0 {
		return store.DispatchWorkerDeployment{}, invalid("version", "must not be negative")
	}
	if _, ok := s.backend.(backend.DispatchWorkers); !ok {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("%w (%s)", ErrNoDispatchWorkers, s.backend.Name())
	}
	target, err := s.dispatchWorkerTarget(ctx, env, version)
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	module, err := s.rec.GetBlob(ctx, target.ScriptSHA256)
	if err != nil {
		return store.DispatchWorkerDeployment{}, fmt.Errorf("load the module of version %d: %w", target.Version, err)
	}
	return s.shipDispatchWorker(ctx, c, p, ActionDispatcherRollback, e, store.NewDispatchWorkerDeployment{
		Environment: e.Name, Kind: store.KindRollback, RestoredVersion: target.Version, RouteTableVersion: target.RouteTableVersion,
		ScriptName: target.ScriptName, ScriptSHA256: target.ScriptSHA256, CompatibilityDate: target.CompatibilityDate, Routes: target.Routes,
		Crons: target.Crons,
	}, module)
}

// ListDispatchWorkerDeployments returns one page of env's dispatch Worker
// deployments, newest first, and the next page's token. The caller needs
// routes.read on env.
func (s *Service) ListDispatchWorkerDeployments(ctx context.Context, c Caller, env string, pageSize int, pageToken string) ([]store.DispatchWorkerDeployment, string, error) {
	if _, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesRead, env, c.Client); err != nil {
		return nil, "", err
	}
	if _, err := s.environment("environment", env); err != nil {
		return nil, "", err
	}
	return s.rec.ListDispatchWorkerDeployments(ctx, store.DispatchWorkerFilter{Environment: env, PageSize: pageSize, PageToken: pageToken})
}

// dispatchWorkerTarget returns the deployment a rollback to version
// restores: version itself, which must have been live and not be now, or
// for 0 the newest superseded version older than the live one.
func (s *Service) dispatchWorkerTarget(ctx context.Context, env string, version int64) (store.DispatchWorkerDeployment, error) {
	if version > 0 {
		t, err := s.rec.GetDispatchWorkerDeployment(ctx, env, version)
		switch {
		case err != nil:
			return t, err
		case t.Status == store.StatusLive:
			return t, errkind.Errorf(errkind.Precondition, "version %d of the dispatch Worker of %s is live already", version, env)
		case t.Status != store.StatusSuperseded:
			return t, errkind.Errorf(errkind.Precondition, "version %d of the dispatch Worker of %s is %s and never went live; only a version that was live can be restored", version, env, t.Status)
		}
		return t, nil
	}
	var live *store.DispatchWorkerDeployment
	f := store.DispatchWorkerFilter{Environment: env, PageSize: store.MaxPageSize}
	for {
		items, next, err := s.rec.ListDispatchWorkerDeployments(ctx, f)
		if err != nil {
			return store.DispatchWorkerDeployment{}, err
		}
		for i, d := range items {
			switch {
			case live == nil && d.Status == store.StatusLive:
				live = &items[i]
			case live != nil && d.Status == store.StatusSuperseded:
				return d, nil
			}
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	if live == nil {
		return store.DispatchWorkerDeployment{}, errkind.Errorf(errkind.Precondition, "no dispatch Worker of %s is live, so there is nothing to roll back", env)
	}
	return store.DispatchWorkerDeployment{}, errkind.Errorf(errkind.Precondition, "no dispatch Worker of %s was live before version %d", env, live.Version)
}

// shipDispatchWorker records nd as pending, audits the start, uploads
// module and routes nd's patterns to it, and records and audits the
// outcome, under the deploy lease of the environment's dispatch Worker.
func (s *Service) shipDispatchWorker(ctx context.Context, c Caller, p authz.Principal, action string, e config.Environment,
	nd store.NewDispatchWorkerDeployment, module []byte) (store.DispatchWorkerDeployment, error) {
	dw := s.backend.(backend.DispatchWorkers)
	nd.ActorKeyID, nd.ActorName = p.KeyID, p.Name
	var out store.DispatchWorkerDeployment
	err := s.withLease(ctx, e.Name, nd.ScriptName, func(ctx context.Context, _ store.LeaseFence) error {
		live, _, err := s.liveDispatchWorker(ctx, e.Name)
		if err != nil {
			return err
		}
		previous := live.Routes
		d, err := s.rec.BeginDispatchWorkerDeployment(ctx, nd)
		if err != nil {
			return fmt.Errorf("record the dispatch Worker deployment: %w", err)
		}
		out = d
		resource := dispatchWorkerResource(d)
		if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeStarted, dispatchWorkerDetail(d))); err != nil {
			// Fail closed: nothing is uploaded without its audit record.
			if fd, cerr := s.rec.CompleteDispatchWorkerDeployment(ctx, d.ID, store.Outcome{Status: store.StatusFailed, Error: "refused: " + err.Error()}); cerr == nil {
				out = fd
			}
			return err
		}
		upErr := s.uploadDispatchWorker(ctx, dw, e, d, module, previous)
		o := store.Outcome{Status: store.StatusLive}
		if upErr != nil {
			o = store.Outcome{Status: store.StatusFailed, Error: upErr.Error()}
		}
		fd, err := s.rec.CompleteDispatchWorkerDeployment(ctx, d.ID, o)
		if err != nil {
			return fmt.Errorf("%w: the outcome (%s) of dispatch Worker deployment %s could not be recorded; the next deploy records it failed and uploads again: %v",
				ErrOutcomeUnknown, o.Status, d.ID, err)
		}
		out = fd
		outcome := OutcomeSuccess
		if upErr != nil {
			outcome = OutcomeFailure
		}
		if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, outcome, dispatchWorkerDetail(fd))); err != nil {
			return err
		}
		if upErr != nil {
			return fmt.Errorf("dispatch Worker deployment %s (version %d of %s) failed: %w", fd.ID, fd.Version, e.Name, upErr)
		}
		s.log.InfoContext(ctx, "dispatch Worker deployed", "environment", e.Name, "version", fd.Version,
			"script", fd.ScriptName, "routes", strings.Join(fd.Routes, " "), "table_version", fd.RouteTableVersion)
		return nil
	})
	return out, err
}

// uploadDispatchWorker uploads module as d's script and routes d's
// patterns to it, removing the routes of previous it no longer has.
func (s *Service) uploadDispatchWorker(ctx context.Context, dw backend.DispatchWorkers, e config.Environment,
	d store.DispatchWorkerDeployment, module []byte, previous []string) error {
	uctx, cancel := context.WithTimeout(ctx, s.cfg.UploadTimeout)
	defer cancel()
	if err := dw.UploadDispatchWorker(uctx, backend.DispatchWorker{
		Name: d.ScriptName, Namespace: e.Namespace, Binding: routing.NamespaceBinding,
		MainModule: routing.WorkerMainModule, Module: module, CompatibilityDate: d.CompatibilityDate,
		Crons: cronUnion(d.Crons),
	}); err != nil {
		return err
	}
	return dw.RouteDispatchWorker(uctx, e.Namespace, d.ScriptName, d.Routes, previous)
}

// liveDispatchWorker returns env's live dispatch Worker deployment, if one
// is live (ok), from the newest page of its deployments.
func (s *Service) liveDispatchWorker(ctx context.Context, env string) (d store.DispatchWorkerDeployment, ok bool, err error) {
	items, _, err := s.rec.ListDispatchWorkerDeployments(ctx, store.DispatchWorkerFilter{Environment: env, PageSize: store.MaxPageSize})
	if err != nil {
		return d, false, fmt.Errorf("read the dispatch Worker deployments of %s: %w", env, err)
	}
	for _, d := range items {
		if d.Status == store.StatusLive {
			return d, true, nil
		}
	}
	return d, false, nil
}

// cronWarning returns, on a backend whose dispatch Worker fires the crons
// (Cloudflare), what the caller must do when the crons of service's new
// live version differ from those env's live dispatch Worker fires for it:
// deploy the dispatch Worker again. The deploy does not do it itself: that
// needs routes.write, which a deployer may lack, and is an audited deploy
// of its own. It returns "" when nothing is to be done, or when the
// dispatch Worker's records cannot be read (logged).
func (s *Service) cronWarning(ctx context.Context, env, service string, crons []string) string {
	dc, ok := s.backend.(backend.DispatchCrons)
	if !ok || !dc.CronsByDispatchWorker() {
		return ""
	}
	d, live, err := s.liveDispatchWorker(ctx, env)
	if err != nil {
		s.log.WarnContext(ctx, "deploy: read the dispatch Worker's crons", "environment", env, "err", err)
		return ""
	}
	var fired []string
	for _, c := range d.Crons {
		if slices.Contains(c.Workers, service) {
			fired = append(fired, c.Cron)
		}
	}
	want := slices.Clone(crons)
	slices.Sort(want)
	want = slices.Compact(want)
	slices.Sort(fired)
	if slices.Equal(want, fired) {
		return ""
	}
	list := func(cs []string) string {
		if len(cs) == 0 {
			return "none"
		}
		return `"` + strings.Join(cs, `", "`) + `"`
	}
	if !live {
		return fmt.Sprintf("no dispatch Worker is live in %s, so the cron triggers of %s (%s) do not fire: run `dotdo dispatcher deploy --env %s` to schedule them",
			env, service, list(want), env)
	}
	return fmt.Sprintf("the cron triggers of %s (%s) differ from those the live dispatch Worker of %s fires for it (%s): run `dotdo dispatcher deploy --env %s` to schedule them",
		service, list(want), env, list(fired), env)
}

// maxLivePages bounds the pages of live deployments liveCrons reads, as
// the db service's environment snapshot does.
const maxLivePages = 200

// liveCrons returns the cron triggers of env's live workers: cron
// expression -> the workers it runs. It reads the live deployments in
// pages.
func (s *Service) liveCrons(ctx context.Context, env string) (map[string][]string, error) {
	out := map[string][]string{}
	f := store.ListFilter{Environment: env, Status: store.StatusLive, PageSize: store.MaxPageSize}
	for page := 0; ; page++ {
		if page == maxLivePages {
			return nil, fmt.Errorf("read the live workers of %s: more than %d pages", env, maxLivePages)
		}
		items, next, err := s.rec.ListDeployments(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("read the live workers of %s: %w", env, err)
		}
		for _, d := range items {
			cfg, err := ConfigOf(d.Config)
			if err != nil {
				return nil, err
			}
			for _, c := range cfg.Crons {
				out[c] = append(out[c], d.Service)
			}
		}
		if next == "" {
			return out, nil
		}
		f.PageToken = next
	}
}

// cronTriggers records a generated Worker's crons: union in order, each
// with its workers.
func cronTriggers(union []string, workers map[string][]string) []store.CronTrigger {
	out := make([]store.CronTrigger, len(union))
	for i, c := range union {
		out[i] = store.CronTrigger{Cron: c, Workers: workers[c]}
	}
	return out
}

// cronUnion returns the expressions of cs.
func cronUnion(cs []store.CronTrigger) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Cron
	}
	return out
}

// dispatchWorkerResource names d in audit events:
// "dispatcher/<environment>/<version>".
func dispatchWorkerResource(d store.DispatchWorkerDeployment) string {
	return fmt.Sprintf("dispatcher/%s/%d", d.Environment, d.Version)
}

// dispatchWorkerDetail describes d for an audit event.
func dispatchWorkerDetail(d store.DispatchWorkerDeployment) map[string]string {
	m := map[string]string{
		"deployment_id":       d.ID,
		"version":             strconv.FormatInt(d.Version, 10),
		"script":              d.ScriptName,
		"kind":                string(d.Kind),
		"status":              string(d.Status),
		"route_table_version": strconv.FormatInt(d.RouteTableVersion, 10),
		"script_sha256":       d.ScriptSHA256,
		"routes":              strings.Join(d.Routes, " "),
	}
	if len(d.Crons) > 0 {
		m["crons"] = strings.Join(cronUnion(d.Crons), ", ")
	}
	if d.RestoredVersion != 0 {
		m["restored_version"] = strconv.FormatInt(d.RestoredVersion, 10)
	}
	if d.Error != "" {
		m["error"] = d.Error
	}
	return m
}
