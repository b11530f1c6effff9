package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// routesFixture is a Deploy API over a real SQLite store and auth service,
// and a Memory backend (which hosts dispatch Workers too).
type routesFixture struct {
	svc  *deploy.Service
	rec  deploy.Records
	mem  *backend.Memory
	keys deploytest.Keys
}

func newRoutesFixture(t *testing.T) *routesFixture {
	t.Helper()
	st := deploytest.Store(t)
	a, keys := deploytest.Auth(t)
	mem := backend.NewMemory("dotdo-production", "dotdo-staging", "dotdo-development")
	svc, err := deploy.New(deploy.Config{}, a, st, mem, deploy.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	return &routesFixture{svc: svc, rec: st, mem: mem, keys: keys}
}

func caller(token string) deploy.Caller {
	return deploy.Caller{Token: token, Client: "127.0.0.1", RequestID: "req-routes"}
}

// withTools is the seed table plus "/tools" -> mcp on the hosts of the
// existing path routes.
func withTools() routing.Table {
	t := routing.Seed()
	t.PathRoutes = append(t.PathRoutes, routing.PathRoute{Prefix: "/tools/", Worker: "mcp", Hosts: []string{"do", "api.do"}})
	return t
}

func auditActions(t *testing.T, rec deploy.Records, action string) []store.AuditEvent {
	t.Helper()
	items, _, err := rec.ListAudit(context.Background(), store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// TestRoutes: the seed is stored once, set adds a version with its author,
// history lists them, rollback restores an earlier table as a new version,
// each change is audited with actor and version, and an invalid table is
// refused naming the entry, the current table unchanged.
func TestRoutes(t *testing.T) {
	f := newRoutesFixture(t)
	ctx := context.Background()
	admin := caller(f.keys.Admin)

	// Before the seed: the dispatcher's table, version 0.
	rt, err := f.svc.GetRoutes(ctx, admin, "production", 0)
	if err != nil || rt.Version != 0 || !rt.Table.Equal(routing.Seed()) {
		t.Fatalf("GetRoutes before the seed = %+v, %v", rt, err)
	}
	seeded, err := f.svc.EnsureRouteTables(ctx)
	if err != nil || len(seeded) != 3 {
		t.Fatalf("EnsureRouteTables = %v, %v; want the three environments", seeded, err)
	}
	if seeded, err := f.svc.EnsureRouteTables(ctx); err != nil || len(seeded) != 0 {
		t.Fatalf("EnsureRouteTables again = %v, %v; want nothing", seeded, err)
	}

	ch, err := f.svc.SetRoutes(ctx, admin, deploy.RouteSetInput{Environment: "production", Table: withTools()})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Routes.Version != 2 || ch.Previous != 1 || ch.Routes.ActorName == "" || ch.Routes.Kind != store.RouteTableSet {
		t.Fatalf("SetRoutes = %+v", ch)
	}
	if last := ch.Routes.Table.PathRoutes[len(ch.Routes.Table.PathRoutes)-1]; last.Prefix != "/tools" {
		t.Fatalf("the stored route was not normalized: %+v", last)
	}

	// An invalid table: refused, the entry named, nothing changed.
	bad := withTools()
	bad.PathRoutes = append(bad.PathRoutes, routing.PathRoute{Prefix: "/tools/admin", Worker: "auth", Hosts: []string{"api.do"}})
	_, err = f.svc.SetRoutes(ctx, admin, deploy.RouteSetInput{Environment: "production", Table: bad})
	var fe *deploy.FieldError
	if !errors.As(err, &fe) || fe.Field != "table.path_routes[9].prefix" || !strings.Contains(fe.Reason, "overlaps path_routes[8]") || !errors.Is(err, errkind.Invalid) {
		t.Fatalf("an overlapping prefix: %v; want a FieldError naming table.path_routes[9].prefix", err)
	}
	for _, edit := range []func(*routing.Table){
		func(t *routing.Table) { t.PathRoutes[0].Worker = "nope" },
		func(t *routing.Table) { t.BaseDomains = []string{"bad..domain"} },
	} {
		tbl := withTools()
		edit(&tbl)
		if _, err := f.svc.SetRoutes(ctx, admin, deploy.RouteSetInput{Environment: "production", Table: tbl}); !errors.Is(err, errkind.Invalid) {
			t.Errorf("an invalid table: %v; want Invalid", err)
		}
	}
	if rt, _ := f.svc.GetRoutes(ctx, admin, "production", 0); rt.Version != 2 {
		t.Fatalf("a refused table changed the current version to %d", rt.Version)
	}
	// A stale base version.
	if _, err := f.svc.SetRoutes(ctx, admin, deploy.RouteSetInput{Environment: "production", Table: routing.Seed(), BaseVersion: 1}); !errors.Is(err, errkind.Precondition) {
		t.Fatalf("a stale base version: %v; want Precondition", err)
	}

	// History, newest first.
	hist, _, err := f.svc.ListRouteVersions(ctx, caller(f.keys.Viewer), "production", 0, "")
	if err != nil || len(hist) != 2 || hist[0].Version != 2 || hist[1].Version != 1 || hist[1].Kind != store.RouteTableSeed || hist[1].ActorKeyID != deploy.SystemActor {
		t.Fatalf("ListRouteVersions = %+v, %v", hist, err)
	}

	// Rollback to the version before: version 3 holds version 1's table.
	ch, err = f.svc.RollbackRoutes(ctx, admin, "production", 0)
	if err != nil || ch.Routes.Version != 3 || ch.Routes.RestoredVersion != 1 || ch.Routes.Kind != store.RouteTableRollback || !ch.Routes.Table.Equal(routing.Seed()) {
		t.Fatalf("RollbackRoutes = %+v, %v", ch, err)
	}
	if _, err := f.svc.RollbackRoutes(ctx, admin, "production", 3); !errors.Is(err, errkind.Precondition) {
		t.Errorf("rollback to the current version: %v; want Precondition", err)
	}
	if _, err := f.svc.RollbackRoutes(ctx, admin, "production", 9); !errors.Is(err, errkind.NotFound) {
		t.Errorf("rollback to an unknown version: %v; want NotFound", err)
	}

	// The audit trail: every change with its actor and version.
	sets := auditActions(t, f.rec, deploy.ActionRoutesSet)
	if len(sets) < 2 || sets[0].Resource != "routes/production/2" || sets[0].Outcome != deploy.OutcomeSuccess ||
		sets[0].Detail["version"] != "2" || sets[0].Actor == "" || !strings.Contains(sets[0].Detail["changes"], "+ path_routes: /tools -> mcp on do, api.do") {
		t.Fatalf("routes.set audit events = %+v", sets)
	}
	rbs := auditActions(t, f.rec, deploy.ActionRoutesRollback)
	if len(rbs) != 2 || rbs[0].Resource != "routes/production/3" || rbs[0].Detail["restored_version"] != "1" {
		t.Fatalf("routes.rollback audit events = %+v", rbs)
	}
	if seeds := auditActions(t, f.rec, deploy.ActionRoutesSeed); len(seeds) != 6 || seeds[0].Actor != deploy.SystemActor {
		t.Fatalf("routes.seed audit events = %+v", seeds)
	}
}

// TestRoutesPermissions: every role reads the routes; only an admin
// changes them; keys limited to other environments do neither.
func TestRoutesPermissions(t *testing.T) {
	f := newRoutesFixture(t)
	ctx := context.Background()
	for _, tok := range []string{f.keys.Admin, f.keys.Deployer, f.keys.Viewer} {
		if _, err := f.svc.GetRoutes(ctx, caller(tok), "production", 0); err != nil {
			t.Errorf("GetRoutes: %v", err)
		}
	}
	if _, err := f.svc.GetRoutes(ctx, caller(f.keys.StagingDeployer), "production", 0); !errors.Is(err, errkind.Permission) {
		t.Errorf("GetRoutes by a staging key on production: %v; want Permission", err)
	}
	for _, tok := range []string{f.keys.Deployer, f.keys.Viewer} {
		if _, err := f.svc.SetRoutes(ctx, caller(tok), deploy.RouteSetInput{Environment: "production", Table: withTools()}); !errors.Is(err, errkind.Permission) {
			t.Errorf("SetRoutes by a non-admin: %v; want Permission", err)
		}
		if _, err := f.svc.DeployDispatchWorker(ctx, caller(tok), "production"); !errors.Is(err, errkind.Permission) {
			t.Errorf("DeployDispatchWorker by a non-admin: %v; want Permission", err)
		}
	}
	if _, err := f.svc.GetRoutes(ctx, caller("dotdo_nope"), "production", 0); !errors.Is(err, errkind.Unauthenticated) {
		t.Errorf("GetRoutes with a bad key: %v; want Unauthenticated", err)
	}
	if _, err := f.svc.SetRoutes(ctx, caller(f.keys.Admin), deploy.RouteSetInput{Environment: "nowhere", Table: withTools()}); !errors.Is(err, errkind.Invalid) {
		t.Errorf("SetRoutes of an unknown environment: %v; want Invalid", err)
	}
}

// TestDispatchWorker: build generates the Worker of the current table;
// deploy uploads it, routes the table's domains and records and audits a
// version; a failed upload is recorded failed; rollback uploads the version
// before again, with its routes.
func TestDispatchWorker(t *testing.T) {
	f := newRoutesFixture(t)
	ctx := context.Background()
	admin := caller(f.keys.Admin)
	if _, err := f.svc.EnsureRouteTables(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.BuildDispatchWorker(ctx, caller(f.keys.Viewer), "production")
	if err != nil || b.TableVersion != 1 || b.Worker.ScriptName != "dotdo-dispatcher-production" || !strings.Contains(string(b.Worker.Module), "function route(") {
		t.Fatalf("BuildDispatchWorker = %+v, %v", b.Worker.ScriptName, err)
	}

	d1, err := f.svc.DeployDispatchWorker(ctx, admin, "production")
	if err != nil || d1.Version != 1 || d1.Status != store.StatusLive || d1.RouteTableVersion != 1 || strings.Join(d1.Routes, " ") != "do/* *.do/*" {
		t.Fatalf("DeployDispatchWorker = %+v, %v", d1, err)
	}
	w, ok := f.mem.DispatchWorker("dotdo-dispatcher-production")
	if !ok || w.Namespace != "dotdo-production" || w.Binding != "DISPATCHER" || string(w.Module) != string(b.Worker.Module) {
		t.Fatalf("uploaded %+v", w.Name)
	}
	if r := f.mem.Routes(); len(r) != 2 || r["*.do/*"] != "dotdo-dispatcher-production" {
		t.Fatalf("routes = %v", r)
	}

	// A table on another domain: the next deploy moves the routes.
	tbl := withTools()
	tbl.BaseDomains = []string{"example.com"}
	tbl.DefaultHosts = []string{"example.com", "api.example.com"}
	for i := range tbl.PathRoutes {
		tbl.PathRoutes[i].Hosts = []string{"example.com", "api.example.com"}
	}
	if _, err := f.svc.SetRoutes(ctx, admin, deploy.RouteSetInput{Environment: "production", Table: tbl}); err != nil {
		t.Fatal(err)
	}
	d2, err := f.svc.DeployDispatchWorker(ctx, admin, "production")
	if err != nil || d2.Version != 2 || d2.RouteTableVersion != 2 {
		t.Fatalf("second deploy = %+v, %v", d2, err)
	}
	if r := f.mem.Routes(); len(r) != 2 || r["example.com/*"] == "" || r["do/*"] != "" {
		t.Fatalf("routes after the second deploy = %v", r)
	}

	// A failed upload is recorded and audited as failed.
	f.mem.FailDispatchWorkers(&backend.Error{Op: "upload", Sentinel: backend.ErrRejected, Message: "bad script"})
	d3, err := f.svc.DeployDispatchWorker(ctx, admin, "production")
	if !errors.Is(err, errkind.Invalid) || d3.Version != 3 || d3.Status != store.StatusFailed || !strings.Contains(d3.Error, "bad script") {
		t.Fatalf("a rejected upload = %+v, %v", d3, err)
	}
	f.mem.FailDispatchWorkers(nil)

	// Rollback: version 1 again, with its routes, as version 4.
	d4, err := f.svc.RollbackDispatchWorker(ctx, admin, "production", 0)
	if err != nil || d4.Version != 4 || d4.Kind != store.KindRollback || d4.RestoredVersion != 1 || d4.Status != store.StatusLive {
		t.Fatalf("RollbackDispatchWorker = %+v, %v", d4, err)
	}
	if w, _ := f.mem.DispatchWorker("dotdo-dispatcher-production"); string(w.Module) != string(b.Worker.Module) {
		t.Fatal("the rollback did not upload version 1's module")
	}
	if r := f.mem.Routes(); len(r) != 2 || r["do/*"] == "" || r["example.com/*"] != "" {
		t.Fatalf("routes after the rollback = %v", r)
	}
	for _, c := range []struct {
		v    int64
		want error
	}{{4, errkind.Precondition}, {3, errkind.Precondition}, {99, errkind.NotFound}} {
		if _, err := f.svc.RollbackDispatchWorker(ctx, admin, "production", c.v); !errors.Is(err, c.want) {
			t.Errorf("rollback to version %d: %v; want %v", c.v, err, c.want)
		}
	}

	list, _, err := f.svc.ListDispatchWorkerDeployments(ctx, caller(f.keys.Viewer), "production", 0, "")
	if err != nil || len(list) != 4 || list[0].Version != 4 {
		t.Fatalf("ListDispatchWorkerDeployments = %+v, %v", list, err)
	}
	deploys := auditActions(t, f.rec, deploy.ActionDispatcherDeploy)
	if len(deploys) != 6 || deploys[0].Resource != "dispatcher/production/3" || deploys[0].Outcome != deploy.OutcomeFailure || deploys[0].Actor == "" {
		t.Fatalf("dispatcher.deploy audit events = %+v", deploys)
	}
	if rbs := auditActions(t, f.rec, deploy.ActionDispatcherRollback); len(rbs) != 2 || rbs[0].Detail["restored_version"] != "1" {
		t.Fatalf("dispatcher.rollback audit events = %+v", rbs)
	}
}

// TestDispatchWorkerCrons: the dispatch Worker is built with the crons of
// the environment's live workers, scheduled with their union and records
// them; a deploy on a backend whose dispatch Worker fires crons warns
// when the worker's crons differ from those fired; a rollback restores
// the schedules of the version it restores.
func TestDispatchWorkerCrons(t *testing.T) {
	f := newRoutesFixture(t)
	f.mem.SetCronsByDispatchWorker(true)
	ctx := context.Background()
	admin := caller(f.keys.Admin)
	deployWorker := func(service string, crons ...string) deploy.Result {
		t.Helper()
		res, err := f.svc.Deploy(ctx, admin, deploy.DeployInput{Service: service, Environment: "production",
			Script: []byte(`export default { fetch() { return new Response("ok") }, scheduled() {} }`), Crons: crons})
		if err != nil {
			t.Fatalf("deploy %s: %v", service, err)
		}
		return res
	}
	if res := deployWorker("db", "*/5 * * * *", "0 3 * * *"); len(res.Warnings) != 1 ||
		!strings.Contains(res.Warnings[0], "no dispatch Worker is live in production") || !strings.Contains(res.Warnings[0], "dotdo dispatcher deploy --env production") {
		t.Fatalf("deploy before any dispatch Worker warned %q", res.Warnings)
	}
	deployWorker("gateway", "*/5 * * * *")
	deployWorker("mcp")
	b, err := f.svc.BuildDispatchWorker(ctx, admin, "production")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Worker.Crons, "|"); got != "*/5 * * * *|0 3 * * *" {
		t.Fatalf("built crons %q", got)
	}
	if !strings.Contains(string(b.Worker.Module), "const CRONS = {\n  \"*/5 * * * *\": [\n    \"db\",\n    \"gateway\"\n  ],") {
		t.Fatalf("the module's CRONS:\n%s", b.Worker.Module)
	}
	d1, err := f.svc.DeployDispatchWorker(ctx, admin, "production")
	if err != nil || len(d1.Crons) != 2 || strings.Join(d1.Crons[0].Workers, ",") != "db,gateway" {
		t.Fatalf("DeployDispatchWorker = %+v, %v", d1.Crons, err)
	}
	if w, _ := f.mem.DispatchWorker("dotdo-dispatcher-production"); strings.Join(w.Crons, "|") != "*/5 * * * *|0 3 * * *" {
		t.Fatalf("the dispatch Worker is scheduled with %q", w.Crons)
	}
	// Same crons again: no warning. New ones: a warning naming both sets.
	if res := deployWorker("gateway", "*/5 * * * *"); len(res.Warnings) != 0 {
		t.Fatalf("an unchanged cron warned %q", res.Warnings)
	}
	res := deployWorker("gateway", "0 * * * *")
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `the cron triggers of gateway ("0 * * * *") differ from those the live dispatch Worker of production fires for it ("*/5 * * * *")`) {
		t.Fatalf("a changed cron warned %q", res.Warnings)
	}
	deployWorker("db")
	d2, err := f.svc.DeployDispatchWorker(ctx, admin, "production")
	if err != nil || len(d2.Crons) != 1 || d2.Crons[0].Cron != "0 * * * *" {
		t.Fatalf("second DeployDispatchWorker = %+v, %v", d2.Crons, err)
	}
	if w, _ := f.mem.DispatchWorker("dotdo-dispatcher-production"); strings.Join(w.Crons, "|") != "0 * * * *" {
		t.Fatalf("the second dispatch Worker is scheduled with %q", w.Crons)
	}
	d3, err := f.svc.RollbackDispatchWorker(ctx, admin, "production", 0)
	if err != nil || d3.RestoredVersion != 1 || len(d3.Crons) != 2 {
		t.Fatalf("RollbackDispatchWorker = %+v, %v", d3, err)
	}
	if w, _ := f.mem.DispatchWorker("dotdo-dispatcher-production"); strings.Join(w.Crons, "|") != "*/5 * * * *|0 3 * * *" {
		t.Fatalf("the rollback scheduled %q", w.Crons)
	}
	// On a backend that fires crons itself, nothing to warn about.
	f.mem.SetCronsByDispatchWorker(false)
	if res := deployWorker("gateway", "1 * * * *"); len(res.Warnings) != 0 {
		t.Fatalf("the local runtime's deploy warned %q", res.Warnings)
	}
}
