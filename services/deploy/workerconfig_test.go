package deploy_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
)

// dbJS counts the POSTs it gets and answers any other request with its
// path and the count.
const dbJS = `let posts = 0;
export default { async fetch(req) {
  const u = new URL(req.url);
  if (req.method === "POST") posts++;
  return new Response("db" + u.pathname + " posts=" + posts);
} };`

// gatewayJS answers its GREETING var and what env.DB answers; its
// scheduled handler POSTs to env.DB.
const gatewayJS = `export default {
  async fetch(req, env) {
    const r = await env.DB.fetch("http://db/items");
    return new Response(env.GREETING + " | " + await r.text());
  },
  async scheduled(controller, env) {
    await env.DB.fetch("http://db/tick", { method: "POST", body: controller.cron });
  },
};`

// TestWorkerConfig deploys a worker with a var, a service binding and a
// cron to the local runtime: the binding reaches the live version of its
// target, GetDeployment shows the configuration, TriggerScheduled runs the
// scheduled handler, and a rollback restores the configuration.
func TestWorkerConfig(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.caller(f.keys.Deployer)
	if _, err := f.svc.Deploy(ctx, c, deploy.DeployInput{Service: "db", Environment: "production", Script: []byte(dbJS)}); err != nil {
		t.Fatalf("deploy db: %v", err)
	}
	in := deploy.DeployInput{
		Service: "gateway", Environment: "production", Script: []byte(gatewayJS),
		Vars:     map[string]string{"GREETING": "hello"},
		Services: []deploy.ServiceBinding{{Binding: "DB", Service: "db"}},
		Crons:    []string{"*/5 * * * *"},
	}
	res, err := f.svc.Deploy(ctx, c, in)
	if err != nil {
		t.Fatalf("deploy gateway: %v", err)
	}
	v1 := res.Deployment
	cfg, err := deploy.ConfigOf(v1.Config)
	want := deploy.WorkerConfig{Vars: in.Vars, Services: in.Services, Crons: in.Crons}
	if err != nil || !reflect.DeepEqual(cfg, want) {
		t.Fatalf("recorded configuration %+v (%v), want %+v", cfg, err, want)
	}
	got, err := f.svc.GetDeployment(ctx, f.caller(f.keys.Viewer), v1.ID)
	if err != nil || got.Config != v1.Config {
		t.Fatalf("GetDeployment config %q (%v), want %q", got.Config, err, v1.Config)
	}
	f.serves("dotdo-production", "gateway", "hello | db/items posts=0")

	tr, err := f.svc.TriggerScheduled(ctx, c, deploy.TriggerInput{Service: "gateway", Environment: "production"})
	if err != nil || tr.Cron != "*/5 * * * *" || tr.Version != v1.Version {
		t.Fatalf("TriggerScheduled = %+v, %v", tr, err)
	}
	f.serves("dotdo-production", "gateway", "hello | db/items posts=1")

	// A redeploy of db is followed by the binding: the live version.
	if _, err := f.svc.Deploy(ctx, c, deploy.DeployInput{Service: "db", Environment: "production",
		Script: []byte(strings.Replace(dbJS, `"db"`, `"db2"`, 1))}); err != nil {
		t.Fatalf("redeploy db: %v", err)
	}
	f.serves("dotdo-production", "gateway", "hello | db2/items posts=0")

	// A deploy without configuration drops it; a rollback restores it.
	plain := `export default { fetch(req, env) { return new Response(String(env.GREETING) + " " + String(env.DB)) } };`
	if _, err := f.svc.Deploy(ctx, c, deploy.DeployInput{Service: "gateway", Environment: "production", Script: []byte(plain)}); err != nil {
		t.Fatalf("deploy plain gateway: %v", err)
	}
	f.serves("dotdo-production", "gateway", "undefined undefined")
	rb, err := f.svc.Rollback(ctx, c, deploy.RollbackInput{Service: "gateway", Environment: "production", Version: v1.Version})
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if rb.Deployment.Config != v1.Config {
		t.Fatalf("rollback config %q, want %q", rb.Deployment.Config, v1.Config)
	}
	f.serves("dotdo-production", "gateway", "hello | db2/items posts=0")
	if _, err := f.svc.TriggerScheduled(ctx, c, deploy.TriggerInput{Service: "gateway", Environment: "production", Cron: "0 0 * * *"}); err != nil {
		t.Fatalf("TriggerScheduled after rollback: %v", err)
	}
	f.serves("dotdo-production", "gateway", "hello | db2/items posts=1")
	if acts := f.auditActions(deploy.ActionTriggerScheduled); len(acts) != 2 || acts[0] != deploy.ActionTriggerScheduled+" success" {
		t.Fatalf("audit of the triggers: %v", acts)
	}

	// A viewer may not trigger; a worker with nothing live cannot be.
	if _, err := f.svc.TriggerScheduled(ctx, f.caller(f.keys.Viewer), deploy.TriggerInput{Service: "gateway", Environment: "production"}); !errors.Is(err, errkind.Permission) {
		t.Fatalf("TriggerScheduled as a viewer: %v", err)
	}
	if _, err := f.svc.TriggerScheduled(ctx, c, deploy.TriggerInput{Service: "mcp", Environment: "production"}); !errors.Is(err, errkind.Precondition) {
		t.Fatalf("TriggerScheduled of nothing live: %v", err)
	}
	if _, err := f.svc.TriggerScheduled(ctx, c, deploy.TriggerInput{Service: "gateway", Environment: "production", Cron: "61 * * * *"}); !isField(err, "cron") {
		t.Fatalf("TriggerScheduled with a bad cron: %v", err)
	}
}

// TestWorkerConfigInvalid checks that bad vars, bindings and crons are
// refused with the field named, and that nothing is recorded or uploaded.
func TestWorkerConfigInvalid(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	ctx := context.Background()
	ok := deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("x")}
	for _, tc := range []struct {
		name, field, msg string
		mod              func(*deploy.DeployInput)
	}{
		{"var name", `vars["NOT-AN-ID"]`, "JavaScript identifier", func(in *deploy.DeployInput) { in.Vars = map[string]string{"NOT-AN-ID": "x"} }},
		{"var digit", `vars["1A"]`, "JavaScript identifier", func(in *deploy.DeployInput) { in.Vars = map[string]string{"1A": "x"} }},
		{"reserved var", `vars["__DOTDO_NS"]`, "reserved", func(in *deploy.DeployInput) { in.Vars = map[string]string{"__DOTDO_NS": "x"} }},
		{"long var", `vars["A"]`, "at most 5120 bytes", func(in *deploy.DeployInput) { in.Vars = map[string]string{"A": strings.Repeat("x", 5121)} }},
		{"binding name", "services[0].binding", "JavaScript identifier", func(in *deploy.DeployInput) {
			in.Services = []deploy.ServiceBinding{{Binding: "my db", Service: "db"}}
		}},
		{"unknown worker", "services[1].service", `no worker "dbx" in environment production`, func(in *deploy.DeployInput) {
			in.Services = []deploy.ServiceBinding{{Binding: "DB", Service: "db"}, {Binding: "X", Service: "dbx"}}
		}},
		{"binding twice", "services[1].binding", "defined already", func(in *deploy.DeployInput) {
			in.Services = []deploy.ServiceBinding{{Binding: "DB", Service: "db"}, {Binding: "DB", Service: "auth"}}
		}},
		{"binding shadows var", "services[0].binding", "defined already", func(in *deploy.DeployInput) {
			in.Vars = map[string]string{"DB": "x"}
			in.Services = []deploy.ServiceBinding{{Binding: "DB", Service: "db"}}
		}},
		{"cron", "crons[1]", "minute field", func(in *deploy.DeployInput) { in.Crons = []string{"* * * * *", "61 * * * *"} }},
		{"cron fields", "crons[0]", "want 5", func(in *deploy.DeployInput) { in.Crons = []string{"@daily"} }},
		{"negative cpu", "limits.cpu_ms", "CPU time", func(in *deploy.DeployInput) { in.Limits.CPUMs = -1 }},
		{"cpu above Cloudflare's", "limits.cpu_ms", "300000", func(in *deploy.DeployInput) { in.Limits.CPUMs = 300_001 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mod(&in)
			_, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), in)
			var fe *deploy.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, errkind.Invalid) {
				t.Fatalf("err = %v, want invalid %s: ...%s...", err, tc.field, tc.msg)
			}
		})
	}
	if n := f.backend.uploads.Load(); n != 0 {
		t.Fatalf("%d uploads of refused deploys", n)
	}
	if ds := f.list("production", "gateway"); len(ds) != 0 {
		t.Fatalf("refused deploys recorded: %+v", ds)
	}
}

// TestWorkerLimits deploys a worker that spins with a CPU limit of 100 ms
// to the local runtime: the limit is recorded with the deployment, the
// spinning invocation ends with exceeded_cpu long before the runtime's 30 s
// default, and the worker serves the next request.
func TestWorkerLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.caller(f.keys.Deployer)
	spin := `export default { fetch(req) {
  if (new URL(req.url).pathname === "/spin") { for (;;) {} }
  return new Response("ok");
} };`
	res, err := f.svc.Deploy(ctx, c, deploy.DeployInput{Service: "gateway", Environment: "production", Script: []byte(spin),
		Limits: deploy.Limits{CPUMs: 100}})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if cfg, err := deploy.ConfigOf(res.Deployment.Config); err != nil || cfg.Limits.CPUMs != 100 {
		t.Fatalf("recorded limits %+v (%v)", cfg.Limits, err)
	}
	start := time.Now()
	status, body := f.runtime.InvokePath(t, "dotdo-production", "gateway", "/spin")
	if status != 503 || !strings.Contains(body, "exceeded_cpu") {
		t.Fatalf("the spinning request answered %d %q, want 503 exceeded_cpu", status, body)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the 100 ms limit ended the spin only after %v", took)
	}
	f.serves("dotdo-production", "gateway", "ok")
}

func isField(err error, field string) bool {
	var fe *deploy.FieldError
	return errors.As(err, &fe) && fe.Field == field
}
