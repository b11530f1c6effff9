package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
)

// TestDeployAndRollback deploys, deploys again and rolls back on the local
// runtime, and checks the records, the namespace and the audit trail.
func TestDeployAndRollback(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	v1 := f.mustDeploy("production", "gateway", "v1")
	if v1.Version != 1 || v1.Namespace != "dotdo-production" || v1.Kind != store.KindDeploy || v1.FinishedAt.IsZero() {
		t.Fatalf("first deployment %+v", v1)
	}
	if id, ver := f.namespaceHolds("dotdo-production", "gateway"); id != v1.ID || ver != "1" {
		t.Fatalf("namespace holds %s v%s, want %s v1", id, ver, v1.ID)
	}
	f.serves("dotdo-production", "gateway", "v1")
	v2 := f.mustDeploy("production", "gateway", "v2")
	f.serves("dotdo-production", "gateway", "v2")
	if v2.Version != 2 {
		t.Fatalf("second deployment is version %d", v2.Version)
	}
	res, err := f.svc.Rollback(ctx, f.caller(f.keys.Deployer), deploy.RollbackInput{Service: "gateway", Environment: "production", Reason: "v2 is broken"})
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	rb := res.Deployment
	if rb.Version != 3 || rb.Kind != store.KindRollback || rb.RestoredVersion != 1 || rb.Status != store.StatusLive ||
		rb.ScriptSHA256 != v1.ScriptSHA256 || rb.Metadata["reason"] != "v2 is broken" || rb.Metadata["commit"] != "abc123" {
		t.Fatalf("rollback deployment %+v", rb)
	}
	if id, ver := f.namespaceHolds("dotdo-production", "gateway"); id != rb.ID || ver != "3" {
		t.Fatalf("namespace holds %s v%s, want %s v3", id, ver, rb.ID)
	}
	f.serves("dotdo-production", "gateway", "v1")

	items, next, err := f.svc.ListDeployments(ctx, f.caller(f.keys.Viewer), deploy.ListInput{Service: "gateway", Environment: "production"})
	if err != nil || next != "" {
		t.Fatalf("ListDeployments: %v, %q", err, next)
	}
	var got []string
	for _, d := range items {
		got = append(got, fmt.Sprintf("%d %s %s", d.Version, d.Kind, d.Status))
	}
	want := []string{"3 rollback live", "2 deploy superseded", "1 deploy superseded"}
	if !slices.Equal(got, want) {
		t.Fatalf("deployments %q, want %q", got, want)
	}

	// Rolling back again by default restores version 2, the one live
	// before the rollback.
	res, err = f.svc.Rollback(ctx, f.caller(f.keys.Admin), deploy.RollbackInput{Service: "gateway", Environment: "production"})
	if err != nil || res.Deployment.RestoredVersion != 2 || res.Deployment.ScriptSHA256 != v2.ScriptSHA256 {
		t.Fatalf("second Rollback: %+v, %v", res.Deployment, err)
	}
	// An explicit version.
	res, err = f.svc.Rollback(ctx, f.caller(f.keys.Admin), deploy.RollbackInput{Service: "gateway", Environment: "production", Version: 1})
	if err != nil || res.Deployment.RestoredVersion != 1 || res.Deployment.Version != 5 {
		t.Fatalf("Rollback to 1: %+v, %v", res.Deployment, err)
	}

	d, err := f.svc.GetDeployment(ctx, f.caller(f.keys.Viewer), v1.ID)
	if err != nil || d.ID != v1.ID || d.SupersededBy != v2.ID {
		t.Fatalf("GetDeployment: %+v, %v", d, err)
	}
	wantAudit := []string{
		"deployment.create started", "deployment.create success",
		"deployment.create started", "deployment.create success",
		"deployment.rollback started", "deployment.rollback success",
		"deployment.rollback started", "deployment.rollback success",
		"deployment.rollback started", "deployment.rollback success",
	}
	if got := f.auditActions("deployment."); !slices.Equal(got, wantAudit) {
		t.Fatalf("audit %q, want %q", got, wantAudit)
	}
	for _, e := range f.audit() {
		if e.Action == deploy.ActionDeploy && (e.Resource != "deployment/production/gateway/1" && e.Resource != "deployment/production/gateway/2" ||
			e.Detail["client"] != "127.0.0.1" || e.RequestID != "req-1" || e.Actor == "") {
			t.Fatalf("audit event %+v", e)
		}
	}
	if v, err := f.store.VerifyAudit(ctx, nil); err != nil || !v.OK {
		t.Fatalf("VerifyAudit: %+v, %v", v, err)
	}
}

// TestMultiModule deploys a worker of several module types and checks that
// the stored bundle round-trips through a rollback.
func TestMultiModule(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := deploy.DeployInput{
		Service: "api", Environment: "staging", MainModule: "src/main.mjs",
		Modules: []backend.Module{
			{Name: "src/main.mjs", Content: []byte(`import msg from "./msg.txt"; import data from "./data.json"; export default { fetch() { return new Response(msg + data.n) } }`)},
			{Name: "src/msg.txt", Content: []byte("hello "), Type: backend.ModuleText},
			{Name: "src/data.json", Content: []byte(`{"n": 7}`)},
		},
		CompatibilityDate: "2024-09-23", CompatibilityFlags: []string{"nodejs_compat"}, Tags: []string{"team:web"},
	}
	res, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), in)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	d := res.Deployment
	if d.MainModule != "src/main.mjs" || d.CompatibilityDate != "2024-09-23" || !slices.Equal(d.Tags, []string{"team:web"}) ||
		d.ScriptSize != int64(len(in.Modules[0].Content)+len(in.Modules[1].Content)+len(in.Modules[2].Content)) {
		t.Fatalf("deployment %+v", d)
	}
	tags, err := f.backend.ScriptTags(ctx, "dotdo-staging", "api")
	if err != nil || !slices.Equal(tags, []string{"team:web", "dotdo-deployment=" + d.ID, "dotdo-version=1"}) {
		t.Fatalf("tags %q, %v", tags, err)
	}
	blob, err := f.store.GetBlob(ctx, d.ScriptSHA256)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Format  string `json:"format"`
		Modules []struct{ Name, Type string }
	}
	if err := json.Unmarshal(blob, &b); err != nil || b.Format != "dotdo.worker.v1" || len(b.Modules) != 3 || b.Modules[2].Type != "json" || b.Modules[1].Type != "text" {
		t.Fatalf("bundle %+v, %v", b, err)
	}
	// The same worker again is the same blob.
	res2, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), in)
	if err != nil || res2.Deployment.ScriptSHA256 != d.ScriptSHA256 {
		t.Fatalf("redeploy: %+v, %v", res2.Deployment, err)
	}
	f.serves("dotdo-staging", "api", "hello 7")
	rb, err := f.svc.Rollback(ctx, f.caller(f.keys.Deployer), deploy.RollbackInput{Service: "api", Environment: "staging", Version: 1})
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	f.serves("dotdo-staging", "api", "hello 7")
	tags, _ = f.backend.ScriptTags(ctx, "dotdo-staging", "api")
	if !slices.Equal(tags, []string{"team:web", "dotdo-deployment=" + rb.Deployment.ID, "dotdo-version=3"}) {
		t.Fatalf("tags after rollback %q", tags)
	}
}

// TestIdempotentRetry retries deploys and rollbacks with the same key: the
// first deployment comes back and nothing is uploaded again.
func TestIdempotentRetry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in := deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("v1"), IdempotencyKey: "ci-run-42"}
	first, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), in)
	if err != nil || first.Replayed {
		t.Fatalf("Deploy: %+v, %v", first, err)
	}
	uploads := f.backend.uploads.Load()
	for range 3 {
		again, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), in)
		if err != nil || !again.Replayed || again.Deployment.ID != first.Deployment.ID || again.Deployment.Status != store.StatusLive {
			t.Fatalf("retry: %+v, %v", again, err)
		}
	}
	if n := f.backend.uploads.Load(); n != uploads {
		t.Fatalf("retries uploaded %d times", n-uploads)
	}
	// The same key for another script is a caller error.
	other := in
	other.Script = script("v2")
	_, err = f.svc.Deploy(ctx, f.caller(f.keys.Deployer), other)
	wantErr(t, err, errkind.Invalid)
	// Another key (another caller) with the same idempotency key deploys.
	res, err := f.svc.Deploy(ctx, f.caller(f.keys.Admin), in)
	if err != nil || res.Replayed || res.Deployment.Version != 2 {
		t.Fatalf("another key: %+v, %v", res, err)
	}

	rin := deploy.RollbackInput{Service: "gateway", Environment: "production", IdempotencyKey: "undo-1"}
	rb, err := f.svc.Rollback(ctx, f.caller(f.keys.Deployer), rin)
	if err != nil || rb.Deployment.RestoredVersion != 1 {
		t.Fatalf("Rollback: %+v, %v", rb, err)
	}
	uploads = f.backend.uploads.Load()
	again, err := f.svc.Rollback(ctx, f.caller(f.keys.Deployer), rin)
	if err != nil || !again.Replayed || again.Deployment.ID != rb.Deployment.ID {
		t.Fatalf("Rollback retry: %+v, %v", again, err)
	}
	if f.backend.uploads.Load() != uploads {
		t.Fatal("the rollback retry uploaded")
	}
	if n := len(f.list("production", "gateway")); n != 3 {
		t.Fatalf("%d deployments, want 3", n)
	}
	// A key first used for a deploy, or for a rollback to another version,
	// is refused for a rollback rather than replayed.
	_, err = f.svc.Rollback(ctx, f.caller(f.keys.Deployer), deploy.RollbackInput{Service: "gateway", Environment: "production", IdempotencyKey: "ci-run-42"})
	wantErr(t, err, errkind.Invalid)
	_, err = f.svc.Rollback(ctx, f.caller(f.keys.Deployer), deploy.RollbackInput{Service: "gateway", Environment: "production", Version: 2, IdempotencyKey: "undo-1"})
	wantErr(t, err, errkind.Invalid)
}

// TestInvalidInput checks that bad requests are refused, naming the field,
// before anything is recorded or uploaded.
func TestInvalidInput(t *testing.T) {
	f := newFixture(t, withConfig(func(c *deploy.Config) { c.MaxScriptBytes = 4 << 10 }))
	ctx := context.Background()
	ok := deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("x")}
	mod := func(m func(*deploy.DeployInput)) deploy.DeployInput {
		in := ok
		m(&in)
		return in
	}
	big := make([]byte, 4<<10+1)
	for i := range big {
		big[i] = ' '
	}
	esm := backend.Module{Name: "index.js", Content: script("x")}
	for _, tc := range []struct {
		name  string
		in    deploy.DeployInput
		field string
		kind  error
	}{
		{"bad service", mod(func(in *deploy.DeployInput) { in.Service = "Gateway!" }), "service", errkind.Invalid},
		{"long service", mod(func(in *deploy.DeployInput) { in.Service = strings.Repeat("a", 64) }), "service", errkind.Invalid},
		{"unknown environment", mod(func(in *deploy.DeployInput) { in.Environment = "prod" }), "environment", errkind.Invalid},
		{"empty script", mod(func(in *deploy.DeployInput) { in.Script = nil }), "script", errkind.Invalid},
		{"too large script", mod(func(in *deploy.DeployInput) { in.Script = big }), "script", errkind.Exhausted},
		{"too large modules", mod(func(in *deploy.DeployInput) {
			in.Script = nil
			in.Modules = []backend.Module{esm, {Name: "big.txt", Content: big}}
		}), "modules", errkind.Exhausted},
		{"script and modules", mod(func(in *deploy.DeployInput) { in.Modules = []backend.Module{esm} }), "script", errkind.Invalid},
		{"duplicate module", mod(func(in *deploy.DeployInput) { in.Script = nil; in.Modules = []backend.Module{esm, esm} }), "modules[1].name", errkind.Invalid},
		{"module path escape", mod(func(in *deploy.DeployInput) {
			in.Script = nil
			in.Modules = []backend.Module{esm, {Name: "../x.js", Content: []byte("x")}}
		}), "modules[1].name", errkind.Invalid},
		{"unknown main module", mod(func(in *deploy.DeployInput) { in.MainModule = "main.js" }), "main_module", errkind.Invalid},
		{"wasm main module", mod(func(in *deploy.DeployInput) {
			in.Script = nil
			in.Modules = []backend.Module{{Name: "a.wasm", Content: []byte{0}}, esm}
		}), "main_module", errkind.Invalid},
		{"bad date", mod(func(in *deploy.DeployInput) { in.CompatibilityDate = "2025-13-01" }), "compatibility_date", errkind.Invalid},
		{"reserved tag", mod(func(in *deploy.DeployInput) { in.Tags = []string{"dotdo-version=9"} }), "tags[0]", errkind.Invalid},
		{"too many tags", mod(func(in *deploy.DeployInput) { in.Tags = []string{"a", "b", "c", "d", "e", "f", "g"} }), "tags", errkind.Invalid},
		{"bad flag", mod(func(in *deploy.DeployInput) { in.CompatibilityFlags = []string{"a b"} }), "compatibility_flags[0]", errkind.Invalid},
		{"long commit", mod(func(in *deploy.DeployInput) { in.Metadata.Commit = strings.Repeat("c", 129) }), "metadata.commit", errkind.Invalid},
		{"long idempotency key", mod(func(in *deploy.DeployInput) { in.IdempotencyKey = strings.Repeat("k", 129) }), "idempotency_key", errkind.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), tc.in)
			var fe *deploy.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want a %v naming %q", err, tc.kind, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("message %q does not start with the field", err)
			}
		})
	}
	for _, rb := range []struct {
		in    deploy.RollbackInput
		field string
	}{
		{deploy.RollbackInput{Service: "gateway", Environment: "nope"}, "environment"},
		{deploy.RollbackInput{Service: "-x", Environment: "production"}, "service"},
		{deploy.RollbackInput{Service: "gateway", Environment: "production", Version: -1}, "version"},
	} {
		_, err := f.svc.Rollback(ctx, f.caller(f.keys.Deployer), rb.in)
		var fe *deploy.FieldError
		if !errors.As(err, &fe) || fe.Field != rb.field {
			t.Fatalf("Rollback(%+v): %v, want an error naming %q", rb.in, err, rb.field)
		}
	}
	if items, _, _ := f.store.ListDeployments(ctx, store.ListFilter{}); len(items) != 0 {
		t.Fatalf("%d deployments recorded", len(items))
	}
	if n := f.backend.uploads.Load(); n != 0 {
		t.Fatalf("%d uploads", n)
	}
	if got := f.auditActions("deployment."); len(got) != 0 {
		t.Fatalf("audit events %q", got)
	}
}

// TestConcurrentDeploys deploys one service 20 times at once: every deploy
// is recorded with its own version, exactly one is live, and the namespace
// holds that one.
func TestConcurrentDeploys(t *testing.T) {
	f := newFixture(t)
	// Two services (two lease holders), as two replicas would be.
	other := f.newService(f.store)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		svc := f.svc
		if i%2 == 1 {
			svc = other
		}
		wg.Go(func() {
			_, err := svc.Deploy(context.Background(), f.caller(f.keys.Deployer), deploy.DeployInput{
				Service: "gateway", Environment: "production", Script: script(strconv.Itoa(i)),
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Deploy: %v", err)
		}
	}
	items := f.list("production", "gateway")
	if len(items) != n {
		t.Fatalf("%d deployments, want %d", len(items), n)
	}
	versions := map[int64]bool{}
	var live []store.Deployment
	for _, d := range items {
		versions[d.Version] = true
		switch d.Status {
		case store.StatusLive:
			live = append(live, d)
		case store.StatusSuperseded:
		default:
			t.Fatalf("deployment %d is %s", d.Version, d.Status)
		}
	}
	if len(versions) != n || !versions[1] || !versions[n] {
		t.Fatalf("versions %v", versions)
	}
	if len(live) != 1 || live[0].Version != n {
		t.Fatalf("live deployments %+v, want only version %d", live, n)
	}
	if id, ver := f.namespaceHolds("dotdo-production", "gateway"); id != live[0].ID || ver != strconv.Itoa(n) {
		t.Fatalf("namespace holds %s v%s, database says %s v%d", id, ver, live[0].ID, live[0].Version)
	}
	if f.backend.uploads.Load() != n {
		t.Fatalf("%d uploads", f.backend.uploads.Load())
	}
}

// TestRollbackRefusals covers rollbacks that cannot happen.
func TestRollbackRefusals(t *testing.T) {
	mem := backend.NewMemory()
	f := newFixture(t, withBackend(mem))
	ctx := context.Background()
	rollback := func(version int64) error {
		_, err := f.svc.Rollback(ctx, f.caller(f.keys.Deployer), deploy.RollbackInput{Service: "gateway", Environment: "production", Version: version})
		return err
	}
	wantErr(t, rollback(0), errkind.Precondition) // nothing live
	f.mustDeploy("production", "gateway", "v1")
	wantErr(t, rollback(0), errkind.Precondition) // nothing before
	wantErr(t, rollback(1), errkind.Precondition) // live already
	mem.SetUploadHook(func(context.Context, string, backend.Script) error {
		return &backend.Error{Op: "upload", Status: 400, Sentinel: backend.ErrRejected, Message: "no"}
	})
	if _, err := f.deploy(f.keys.Deployer, "production", "gateway", "v2"); err == nil {
		t.Fatal("the failing deploy succeeded")
	}
	mem.SetUploadHook(nil)
	err := rollback(2)
	wantErr(t, err, errkind.Precondition) // failed, never live
	if !strings.Contains(err.Error(), "never went live") {
		t.Fatalf("message %q", err)
	}
	wantErr(t, rollback(99), errkind.NotFound)
	if n := len(f.list("production", "gateway")); n != 2 {
		t.Fatalf("%d deployments, want 2", n)
	}
}

// TestFailedUpload records a deployment the runtime refuses as failed,
// with the runtime's message, and audits it.
func TestFailedUpload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	live := f.mustDeploy("production", "gateway", "v1")
	res, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), deploy.DeployInput{
		Service: "gateway", Environment: "production", Script: []byte(`throw new Error("kaboom at start-up")`),
	})
	var de *deploy.DeploymentError
	if !errors.As(err, &de) || !errors.Is(err, backend.ErrRejected) {
		t.Fatalf("err = %v, want a DeploymentError of a rejected script", err)
	}
	d := res.Deployment
	if d.Status != store.StatusFailed || !strings.Contains(d.Error, "kaboom at start-up") || d.ID != de.Deployment.ID || d.FinishedAt.IsZero() {
		t.Fatalf("deployment %+v", d)
	}
	got, err := f.svc.GetDeployment(ctx, f.caller(f.keys.Viewer), d.ID)
	if err != nil || got.Status != store.StatusFailed || got.Error != d.Error {
		t.Fatalf("GetDeployment: %+v, %v", got, err)
	}
	// The live version is untouched, in the database and the namespace.
	if l, err := f.store.GetLive(ctx, "production", "gateway"); err != nil || l.ID != live.ID {
		t.Fatalf("live %+v, %v", l, err)
	}
	if id, _ := f.namespaceHolds("dotdo-production", "gateway"); id != live.ID {
		t.Fatalf("namespace holds %s, want %s", id, live.ID)
	}
	events := f.audit()
	last := events[len(events)-1]
	if last.Action != deploy.ActionDeploy || last.Outcome != deploy.OutcomeFailure || !strings.Contains(last.Detail["error"], "kaboom") ||
		last.Detail["deployment_id"] != d.ID {
		t.Fatalf("last audit event %+v", last)
	}
}

// TestPermissions checks each RPC's permission.
func TestPermissions(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	ctx := context.Background()
	_, err := f.deploy("", "production", "gateway", "x")
	wantErr(t, err, errkind.Unauthenticated)
	_, err = f.deploy("dotdo_notakey", "production", "gateway", "x")
	wantErr(t, err, errkind.Unauthenticated)
	_, err = f.deploy(f.keys.Viewer, "production", "gateway", "x")
	wantErr(t, err, errkind.Permission)
	_, err = f.deploy(f.keys.StagingDeployer, "production", "gateway", "x")
	wantErr(t, err, errkind.Permission)
	if _, err := f.deploy(f.keys.StagingDeployer, "staging", "gateway", "x"); err != nil {
		t.Fatalf("staging deployer on staging: %v", err)
	}
	_, err = f.svc.Rollback(ctx, f.caller(f.keys.Viewer), deploy.RollbackInput{Service: "gateway", Environment: "staging"})
	wantErr(t, err, errkind.Permission)
	// A key limited to staging may list staging, not everything.
	if _, _, err := f.svc.ListDeployments(ctx, f.caller(f.keys.StagingDeployer), deploy.ListInput{Environment: "staging"}); err != nil {
		t.Fatalf("list staging: %v", err)
	}
	_, _, err = f.svc.ListDeployments(ctx, f.caller(f.keys.StagingDeployer), deploy.ListInput{})
	wantErr(t, err, errkind.Permission)
	_, _, err = f.svc.ListDeployments(ctx, f.caller(""), deploy.ListInput{})
	wantErr(t, err, errkind.Unauthenticated)
	_, _, err = f.svc.EnsureNamespaces(ctx, f.caller(f.keys.Deployer), nil)
	wantErr(t, err, errkind.Permission)
	staging := f.list("staging", "gateway")[0]
	if _, err := f.svc.GetDeployment(ctx, f.caller(f.keys.Viewer), staging.ID); err != nil {
		t.Fatalf("viewer GetDeployment: %v", err)
	}
	_, err = f.svc.GetDeployment(ctx, f.caller(""), staging.ID)
	wantErr(t, err, errkind.Unauthenticated)
	_, err = f.svc.GetDeployment(ctx, f.caller(f.keys.Viewer), "dep_nope")
	wantErr(t, err, errkind.NotFound)
	for _, tok := range []string{f.keys.Viewer, f.keys.StagingDeployer} {
		if _, err := f.svc.ServiceInfo(ctx, f.caller(tok)); err != nil {
			t.Fatalf("ServiceInfo: %v", err)
		}
		if _, err := f.svc.Health(ctx, f.caller(tok)); err != nil {
			t.Fatalf("Health: %v", err)
		}
	}
	// Without a key: the overall status only (a load balancer's probe).
	if h, err := f.svc.Health(ctx, f.caller("")); err != nil || !h.OK || len(h.Dependencies) != 0 || h.Version == "" {
		t.Fatalf("Health without a key = %+v, %v; want ok, a version and no dependencies", h, err)
	}
	_, err = f.svc.Health(ctx, f.caller("dotdo_not_a_key"))
	wantErr(t, err, errkind.Unauthenticated)
	nss, err := f.svc.ListNamespaces(ctx, f.caller(f.keys.StagingDeployer))
	if err != nil || len(nss) != 1 || nss[0].Environment != "staging" {
		t.Fatalf("ListNamespaces for a staging key: %+v, %v", nss, err)
	}
}

// TestNamespacesInfoHealth covers EnsureNamespaces, ListNamespaces,
// ServiceInfo and Health on the runtime.
func TestNamespacesInfoHealth(t *testing.T) {
	f := newFixture(t, withConfig(func(c *deploy.Config) {
		c.Environments = []config.Environment{{Name: "production", Namespace: "dotdo-production"}, {Name: "preview", Namespace: "dotdo-preview"}}
		c.Version = "v1.2.3"
	}))
	ctx := context.Background()
	admin := f.caller(f.keys.Admin)
	nss, err := f.svc.ListNamespaces(ctx, admin)
	if err != nil || len(nss) != 2 || !nss[0].Exists || !nss[1].Exists {
		t.Fatalf("ListNamespaces: %+v, %v", nss, err)
	}
	if created, err := f.svc.EnsureConfiguredNamespaces(ctx); err != nil || len(created) != 0 {
		t.Fatalf("EnsureConfiguredNamespaces again: %v, %v", created, err)
	}
	_, created, err := f.svc.EnsureNamespaces(ctx, admin, []string{"preview"})
	if err != nil || len(created) != 0 {
		t.Fatalf("EnsureNamespaces again: %v, %v", created, err)
	}
	_, _, err = f.svc.EnsureNamespaces(ctx, admin, []string{"preview", "nope"})
	var fe *deploy.FieldError
	if !errors.As(err, &fe) || fe.Field != "environments[1]" {
		t.Fatalf("EnsureNamespaces(nope): %v", err)
	}
	f.mustDeploy("preview", "web", "x")
	nss, _ = f.svc.ListNamespaces(ctx, admin)
	if nss[1].ScriptCount != 1 || nss[0].ScriptCount != 0 {
		t.Fatalf("script counts %+v", nss)
	}
	if got := f.auditActions("namespaces."); !slices.Equal(got, []string{"namespaces.ensure success", "namespaces.ensure success", "namespaces.ensure success"}) {
		t.Fatalf("audit %q", got)
	}
	info, err := f.svc.ServiceInfo(ctx, f.caller(f.keys.Viewer))
	if err != nil || info.Name != "dotdo-deploy" || info.Version != "v1.2.3" || info.Backend != "runtime" || len(info.Environments) != 2 {
		t.Fatalf("ServiceInfo: %+v, %v", info, err)
	}
	h, err := f.svc.Health(ctx, f.caller(f.keys.Viewer))
	if err != nil || !h.OK || len(h.Dependencies) != 3 {
		t.Fatalf("Health: %+v, %v", h, err)
	}
}
