package deploy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dot-do/platform/internal/telemetry/telemetrytest"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
)

// TestDeploymentMetrics: each deployment is counted once, when it reaches
// its final state, by outcome, environment and kind, on the provider the
// service was handed: a script the backend refuses is the deployer's
// (rejected), any other failure the platform's (failed); a replay is not a
// new deployment; a deployment a crash left pending is counted when
// Reconcile settles it.
func TestDeploymentMetrics(t *testing.T) {
	ctx := context.Background()
	mem := backend.NewMemory()
	f := newFixture(t, withBackend(mem))
	rec := telemetrytest.NewRecorder()
	svc, err := deploy.New(f.cfg, f.auth, f.store, f.backend, deploy.WithLogger(testsupport.QuietLogger()), deploy.WithMeterProvider(rec))
	if err != nil {
		t.Fatal(err)
	}
	if start := rec.Collect(t); len(start.Points) != 3*2*3 || start.Scopes[deploy.MetricDeployments] != deploy.MeterName {
		t.Fatalf("at start-up: %v on scope %q, want every outcome and kind in each of 3 environments at 0, on %q",
			start.Points, start.Scopes[deploy.MetricDeployments], deploy.MeterName)
	}

	in := func(body, key string) deploy.DeployInput {
		return deploy.DeployInput{Service: "gateway", Environment: "production", Script: script(body), IdempotencyKey: key}
	}
	caller := f.caller(f.keys.Deployer)
	if _, err := svc.Deploy(ctx, caller, in("v1", "once")); err != nil {
		t.Fatal(err)
	}
	if res, err := svc.Deploy(ctx, caller, in("v1", "once")); err != nil || !res.Replayed {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	if _, err := svc.Deploy(ctx, caller, in("v2", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Rollback(ctx, caller, deploy.RollbackInput{Service: "gateway", Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	mem.SetUploadHook(func(context.Context, string, backend.Script) error {
		return fmt.Errorf("%w: does not parse", backend.ErrRejected)
	})
	_, err = svc.Deploy(ctx, caller, in("bad", ""))
	wantErr(t, err, backend.ErrRejected)
	mem.SetUploadHook(func(context.Context, string, backend.Script) error { return backend.ErrUnauthorized })
	_, err = svc.Deploy(ctx, caller, in("v3", ""))
	wantErr(t, err, backend.ErrUnauthorized)
	mem.SetUploadHook(nil)
	// A crash left api@staging pending, before its upload.
	v1 := f.list("production", "gateway")[0]
	if _, _, err := f.store.BeginDeployment(ctx, store.NewDeployment{
		Service: "api", Environment: "staging", Namespace: "dotdo-staging", ScriptSHA256: v1.ScriptSHA256,
		ScriptSize: v1.ScriptSize, MainModule: "index.js", ActorKeyID: "k", ActorName: "n",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}

	rec.Collect(t).Expect(t, map[string]int64{
		deploy.MetricDeployments + " environment=production kind=deploy outcome=live":     2,
		deploy.MetricDeployments + " environment=production kind=rollback outcome=live":   1,
		deploy.MetricDeployments + " environment=production kind=deploy outcome=rejected": 1,
		deploy.MetricDeployments + " environment=production kind=deploy outcome=failed":   1,
		deploy.MetricDeployments + " environment=staging kind=deploy outcome=failed":      1,
		deploy.MetricDeployments + " environment=production kind=rollback outcome=failed": 0,
		// Sample counts.
		deploy.MetricDeploymentDuration + " environment=production kind=deploy outcome=live":     2,
		deploy.MetricDeploymentDuration + " environment=production kind=deploy outcome=rejected": 1,
	})
	if n := rec.Collect(t).Total(deploy.MetricDeploymentDuration); n != 5 {
		t.Errorf("%s has %d samples, want 5: one per deployment but the one Reconcile settled, whose start is unknown",
			deploy.MetricDeploymentDuration, n)
	}
}
