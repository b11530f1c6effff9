package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// ListInput filters and pages ListDeployments.
type ListInput struct {
	// Service keeps only this worker's deployments.
	Service string
	// Environment keeps only this environment's deployments; a key limited
	// to some environments must name one of them.
	Environment string
	// Status keeps only deployments in this status; "" keeps all.
	Status store.Status
	// PageSize is the most deployments to return (store.DefaultPageSize
	// when 0, at most store.MaxPageSize).
	PageSize int
	// PageToken continues from the previous page's next token.
	PageToken string
}

// ListDeployments returns one page of deployments, newest first, and the
// token of the next page ("" on the last). The caller needs
// deployments.read on the environment (on all of them when in.Environment
// is empty).
func (s *Service) ListDeployments(ctx context.Context, c Caller, in ListInput) ([]store.Deployment, string, error) {
	if _, err := s.authz.Authorize(ctx, c.Token, authz.PermDeploymentsRead, in.Environment, c.Client); err != nil {
		return nil, "", err
	}
	if in.Status != "" && !in.Status.Valid() {
		return nil, "", invalid("status", "unknown status %q", in.Status)
	}
	items, next, err := s.rec.ListDeployments(ctx, store.ListFilter{
		Service: in.Service, Environment: in.Environment, Status: in.Status, PageSize: in.PageSize, PageToken: in.PageToken,
	})
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// GetDeployment returns the deployment id. The caller needs
// deployments.read on its environment.
func (s *Service) GetDeployment(ctx context.Context, c Caller, id string) (store.Deployment, error) {
	if _, err := s.authz.Authenticate(ctx, c.Token, c.Client); err != nil {
		return store.Deployment{}, err
	}
	d, err := s.rec.GetDeployment(ctx, id)
	if err != nil {
		return store.Deployment{}, err
	}
	if _, err := s.authz.Authorize(ctx, c.Token, authz.PermDeploymentsRead, d.Environment, c.Client); err != nil {
		return store.Deployment{}, err
	}
	return d, nil
}

// Info describes the Deploy API.
type Info struct {
	// Name is ServiceName.
	Name string
	// Version is the build version.
	Version string
	// Environments are the configured environments.
	Environments []config.Environment
	// Backend names the namespace backend.
	Backend string
}

// ServiceInfo describes the service. Any valid API key may ask.
func (s *Service) ServiceInfo(ctx context.Context, c Caller) (Info, error) {
	if _, err := s.authz.Authenticate(ctx, c.Token, c.Client); err != nil {
		return Info{}, err
	}
	return Info{Name: ServiceName, Version: s.cfg.Version, Environments: append([]config.Environment(nil), s.cfg.Environments...), Backend: s.backend.Name()}, nil
}

// DependencyHealth is the health of one dependency.
type DependencyHealth struct {
	// Name is "auth", "db" or "backend".
	Name string
	// Healthy is true when the dependency answered.
	Healthy bool
	// Error says what failed.
	Error string
}

// HealthReport is the health of the Deploy API.
type HealthReport struct {
	// OK is true when every dependency is healthy.
	OK bool
	// Version is the build version.
	Version string
	// Time is the server's time.
	Time time.Time
	// Dependencies are each dependency's health, in a fixed order.
	Dependencies []DependencyHealth
}

// healthTimeout bounds each dependency check of Health.
const healthTimeout = 3 * time.Second

// Health checks the service's dependencies: auth (it authenticated the
// caller), the records (a one-item listing) and the namespace backend (the
// first environment's namespace; a missing namespace still counts as
// reachable). Any valid API key may ask.
//
// A caller without a key (a load balancer's probe) gets the overall status,
// version and time without the dependencies' details, from a check run at
// most once per publicHealthTTL whoever asks: probes cost the
// dependencies nothing more. A caller presenting a key that is not valid is
// refused as elsewhere.
func (s *Service) Health(ctx context.Context, c Caller) (HealthReport, error) {
	if c.Token == "" {
		return s.publicHealth(ctx), nil
	}
	if _, err := s.authz.Authenticate(ctx, c.Token, c.Client); err != nil {
		return HealthReport{}, err
	}
	return s.checkHealth(ctx), nil
}

// publicHealthTTL is how long the answer to an anonymous Health lasts.
const publicHealthTTL = 5 * time.Second

// healthCache holds the last anonymous Health answer.
type healthCache struct {
	mu  sync.Mutex
	rep HealthReport
	at  time.Time
}

// publicHealth is Health for a caller without a key.
func (s *Service) publicHealth(ctx context.Context) HealthReport {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	now := s.now()
	if h.at.IsZero() || now.Sub(h.at) >= publicHealthTTL || now.Before(h.at) {
		// Not the caller's deadline: a probe that gives up early must not
		// record an unhealthy answer for everyone.
		h.rep, h.at = s.checkHealth(context.WithoutCancel(ctx)), now
	}
	return HealthReport{OK: h.rep.OK, Version: h.rep.Version, Time: now.UTC()}
}

// checkHealth checks every dependency; auth is healthy when it answered.
func (s *Service) checkHealth(ctx context.Context) HealthReport {
	checks := []struct {
		name  string
		check func(ctx context.Context) error
	}{
		{"db", func(ctx context.Context) error {
			_, _, err := s.rec.ListDeployments(ctx, store.ListFilter{PageSize: 1})
			return err
		}},
		{"backend", func(ctx context.Context) error {
			_, err := s.backend.NamespaceInfo(ctx, s.cfg.Environments[0].Namespace)
			if errors.Is(err, backend.ErrNotFound) {
				return nil
			}
			return err
		}},
	}
	rep := HealthReport{OK: true, Version: s.cfg.Version, Time: s.now().UTC(),
		Dependencies: make([]DependencyHealth, len(checks)+1)}
	rep.Dependencies[0] = DependencyHealth{Name: "auth", Healthy: true}
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, healthTimeout)
			defer cancel()
			dh := DependencyHealth{Name: ch.name, Healthy: true}
			if err := ch.check(cctx); err != nil {
				dh.Healthy = false
				dh.Error = healthError(ch.name, err)
				s.log.WarnContext(ctx, "dependency unhealthy", "dependency", ch.name, "err", err.Error())
			}
			rep.Dependencies[i+1] = dh
		})
	}
	wg.Wait()
	for _, d := range rep.Dependencies {
		rep.OK = rep.OK && d.Healthy
	}
	return rep
}

// healthError is what the client learns about a failed check: the
// backend's errors are credential-free and say enough; anything else is
// summarized, its detail going to the log.
func healthError(name string, err error) string {
	var be *backend.Error
	switch {
	case errors.As(err, &be):
		return be.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer within %v", name, healthTimeout)
	default:
		return name + " check failed"
	}
}

// NamespaceStatus is the namespace of one environment.
type NamespaceStatus struct {
	// Environment is the environment.
	Environment string
	// Name is the namespace's name.
	Name string
	// Exists is true when the backend holds the namespace.
	Exists bool
	// ScriptCount is how many scripts it holds.
	ScriptCount int64
}

// ListNamespaces reports the namespace of each environment the caller may
// read (deployments.read), in the configured order.
func (s *Service) ListNamespaces(ctx context.Context, c Caller) ([]NamespaceStatus, error) {
	p, err := s.authz.Authenticate(ctx, c.Token, c.Client)
	if err != nil {
		return nil, err
	}
	var envs []config.Environment
	for _, e := range s.cfg.Environments {
		if p.Check(authz.PermDeploymentsRead, e.Name) == nil {
			envs = append(envs, e)
		}
	}
	if len(envs) == 0 {
		// Let the authorizer say why (and audit the denial).
		_, err := s.authz.Authorize(ctx, c.Token, authz.PermDeploymentsRead, s.cfg.Environments[0].Name, c.Client)
		if err == nil {
			err = fmt.Errorf("key %q may read no configured environment: %w", p.KeyID, errkind.Permission)
		}
		return nil, err
	}
	out := make([]NamespaceStatus, len(envs))
	for i, e := range envs {
		st, err := s.namespaceStatus(ctx, e)
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

func (s *Service) namespaceStatus(ctx context.Context, e config.Environment) (NamespaceStatus, error) {
	st := NamespaceStatus{Environment: e.Name, Name: e.Namespace}
	info, err := s.backend.NamespaceInfo(ctx, e.Namespace)
	switch {
	case errors.Is(err, backend.ErrNotFound):
	case err != nil:
		return st, err
	default:
		st.Exists, st.ScriptCount = true, info.ScriptCount
	}
	return st, nil
}

// EnsureNamespaces creates the missing namespaces of environments (every
// configured one when empty) and returns their status and the names of the
// namespaces it created. The caller needs namespaces.manage on each
// environment. The call is audited (ActionEnsureNamespaces).
func (s *Service) EnsureNamespaces(ctx context.Context, c Caller, environments []string) ([]NamespaceStatus, []string, error) {
	var envs []config.Environment
	if len(environments) == 0 {
		envs = s.cfg.Environments
	}
	for i, name := range environments {
		e, err := s.environment(fmt.Sprintf("environments[%d]", i), name)
		if err != nil {
			// Authenticate first, so that an anonymous caller learns
			// nothing about the configuration.
			if _, aerr := s.authz.Authenticate(ctx, c.Token, c.Client); aerr != nil {
				return nil, nil, aerr
			}
			return nil, nil, err
		}
		envs = append(envs, e)
	}
	var p authz.Principal
	for _, e := range envs {
		var err error
		if p, err = s.authz.Authorize(ctx, c.Token, authz.PermNamespacesManage, e.Name, c.Client); err != nil {
			return nil, nil, err
		}
	}
	return s.ensure(ctx, c, p, envs)
}

// EnsureConfiguredNamespaces creates the missing namespaces of every
// configured environment, as the platform itself (actor SystemActor, no API
// key): for start-up, so that a fresh local runtime can take deploys. It
// returns the names of the namespaces it created and is audited like
// EnsureNamespaces.
func (s *Service) EnsureConfiguredNamespaces(ctx context.Context) ([]string, error) {
	_, created, err := s.ensure(ctx, Caller{}, systemPrincipal, s.cfg.Environments)
	return created, err
}

// ensure creates the missing namespaces of envs for p and audits it.
func (s *Service) ensure(ctx context.Context, c Caller, p authz.Principal, envs []config.Environment) ([]NamespaceStatus, []string, error) {
	var created []string
	out := make([]NamespaceStatus, 0, len(envs))
	var opErr error
	for _, e := range envs {
		made, err := s.backend.EnsureNamespace(ctx, e.Namespace)
		if err != nil {
			opErr = err
			break
		}
		if made {
			created = append(created, e.Namespace)
		}
		st, err := s.namespaceStatus(ctx, e)
		if err != nil {
			opErr = err
			break
		}
		out = append(out, st)
	}
	detail := map[string]string{"created": joinQuoted(created)}
	outcome := OutcomeSuccess
	if opErr != nil {
		outcome, detail["error"] = OutcomeFailure, opErr.Error()
	}
	if err := s.auditor.append(ctx, event(ctx, c, p, ActionEnsureNamespaces, "namespaces", outcome, detail)); err != nil {
		return nil, nil, err
	}
	if opErr != nil {
		return nil, nil, opErr
	}
	return out, created, nil
}
