package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// counting counts the uploads a backend receives, failed ones included.
type counting struct {
	backend.Backend
	uploads atomic.Int64
}

func (c *counting) Upload(ctx context.Context, ns string, s backend.Script) error {
	c.uploads.Add(1)
	return c.Backend.Upload(ctx, ns, s)
}

// fixture is a Deploy API over a real SQLite store, a real auth service
// and, unless it is given another backend, the local runtime.
type fixture struct {
	t       *testing.T
	store   *sqlite.DB
	auth    *auth.Service
	keys    deploytest.Keys
	backend *counting
	svc     *deploy.Service
	cfg     deploy.Config
	runtime *deploytest.Runtime // nil with another backend
}

type fixtureOption func(*fixture)

// withBackend replaces the local runtime.
func withBackend(b backend.Backend) fixtureOption {
	return func(f *fixture) { f.backend = &counting{Backend: b} }
}

// withConfig changes the service's configuration.
func withConfig(mod func(*deploy.Config)) fixtureOption { return func(f *fixture) { mod(&f.cfg) } }

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	// Bounds that turn a stuck dependency into a quick, clear failure.
	f := &fixture{t: t, store: deploytest.Store(t), cfg: deploy.Config{UploadTimeout: 30 * time.Second, LeaseWait: time.Minute}}
	f.auth, f.keys = deploytest.Auth(t)
	for _, o := range opts {
		o(f)
	}
	if f.backend == nil {
		f.runtime = deploytest.StartRuntime(t)
		f.backend = &counting{Backend: f.runtime.Backend(t)}
	}
	f.svc = f.newService(f.store)
	if _, err := f.svc.EnsureConfiguredNamespaces(context.Background()); err != nil {
		t.Fatalf("EnsureConfiguredNamespaces: %v", err)
	}
	return f
}

// newService returns another Service (another lease holder, as another
// process would be) over rec and the fixture's backend.
func (f *fixture) newService(rec deploy.Records) *deploy.Service {
	f.t.Helper()
	svc, err := deploy.New(f.cfg, f.auth, rec, f.backend, deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

func (f *fixture) caller(token string) deploy.Caller {
	return deploy.Caller{Token: token, Client: "127.0.0.1", RequestID: "req-1"}
}

// script returns a worker that answers body.
func script(body string) []byte {
	return []byte(fmt.Sprintf("export default { fetch() { return new Response(%q) } };", body))
}

func (f *fixture) deploy(token, env, service, body string) (deploy.Result, error) {
	return f.svc.Deploy(context.Background(), f.caller(token), deploy.DeployInput{
		Service: service, Environment: env, Script: script(body),
		Metadata: deploy.Metadata{Commit: "abc123", Branch: "main", Author: "github-actions"},
	})
}

func (f *fixture) mustDeploy(env, service, body string) store.Deployment {
	f.t.Helper()
	res, err := f.deploy(f.keys.Deployer, env, service, body)
	if err != nil {
		f.t.Fatalf("Deploy: %v", err)
	}
	if res.Deployment.Status != store.StatusLive {
		f.t.Fatalf("Deploy: deployment is %s", res.Deployment.Status)
	}
	return res.Deployment
}

// list returns every deployment of (env, service), newest first.
func (f *fixture) list(env, service string) []store.Deployment {
	f.t.Helper()
	items, _, err := f.store.ListDeployments(context.Background(), store.ListFilter{Environment: env, Service: service, PageSize: store.MaxPageSize})
	if err != nil {
		f.t.Fatal(err)
	}
	return items
}

// audit returns every audit event, oldest first.
func (f *fixture) audit() []store.AuditEvent {
	f.t.Helper()
	var all []store.AuditEvent
	filter := store.AuditFilter{PageSize: store.MaxPageSize}
	for {
		items, next, err := f.store.ListAudit(context.Background(), filter)
		if err != nil {
			f.t.Fatal(err)
		}
		all = append(all, items...)
		if next == "" {
			break
		}
		filter.PageToken = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// auditActions lists "action outcome" of the events whose action starts
// with prefix.
func (f *fixture) auditActions(prefix string) []string {
	var out []string
	for _, e := range f.audit() {
		if strings.HasPrefix(e.Action, prefix) {
			out = append(out, e.Action+" "+e.Outcome)
		}
	}
	return out
}

// namespaceHolds returns the deployment id and version tags of the script
// the namespace of env holds.
func (f *fixture) namespaceHolds(ns, service string) (id, version string) {
	f.t.Helper()
	tags, err := f.backend.ScriptTags(context.Background(), ns, service)
	if err != nil {
		f.t.Fatalf("ScriptTags: %v", err)
	}
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, "dotdo-deployment="); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(t, "dotdo-version="); ok {
			version = v
		}
	}
	return id, version
}

// serves checks that the worker service of the namespace ns answers body.
func (f *fixture) serves(ns, service, body string) {
	f.t.Helper()
	if status, got := f.runtime.Invoke(f.t, ns, service); status != 200 || got != body {
		f.t.Fatalf("%s/%s answers %d %q, want %q", ns, service, status, got, body)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}
