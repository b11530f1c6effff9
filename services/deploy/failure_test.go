package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// TestTokenNeverLeaks points the cloudflare backend at an API that quotes
// the request's Authorization header in its errors, and checks that the
// token is in no error, record, audit event or log line.
func TestTokenNeverLeaks(t *testing.T) {
	const token = "cf-secret-token-7c4f9a2e1b8d6f3a"
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/tags") {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"success":false,"errors":[{"code":10000,"message":"tags: you sent %s"}],"messages":[],"result":null}`, r.Header.Get("Authorization"))
			return
		}
		if r.Method == http.MethodPut {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"success":false,"errors":[{"code":10021,"message":"rejected request with header %s"}],"messages":[],"result":null}`, r.Header.Get("Authorization"))
			return
		}
		fmt.Fprint(w, `{"success":true,"errors":[],"messages":[],"result":{"namespace_name":"x","script_count":0}}`)
	}))
	defer srv.Close()
	b, err := cloudflare.New(cloudflare.Config{AccountID: "acct", APIToken: token, BaseURL: srv.URL + "/client/v4", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	var logs testsupport.LogBuffer
	f := newFixture(t, withBackend(b))
	svc, err := deploy.New(f.cfg, f.auth, f.store, f.backend, deploy.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, st := range []int{http.StatusBadRequest, http.StatusInternalServerError, http.StatusForbidden} {
		status = st
		res, err := svc.Deploy(context.Background(), f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("x")})
		if err == nil {
			t.Fatalf("HTTP %d: the deploy succeeded", st)
		}
		seen = append(seen, fmt.Sprintf("%v %+v %#v", err, err, res), res.Deployment.Error)
		t.Logf("HTTP %d: %v", st, err)
	}
	for _, d := range f.list("production", "gateway") {
		seen = append(seen, d.Error)
	}
	for _, e := range f.audit() {
		seen = append(seen, fmt.Sprint(e.Detail))
	}
	seen = append(seen, logs.String())
	for _, s := range seen {
		if strings.Contains(s, token) || strings.Contains(s, "cf-secret") {
			t.Fatalf("the token leaked into %q", s)
		}
	}
	if !strings.Contains(strings.Join(seen, " "), "Bearer [redacted]") {
		t.Fatalf("the API's message was lost: %q", seen)
	}
}

// failingAudit fails every AppendAudit while fail is set.
type failingAudit struct {
	deploy.Records
	mu   sync.Mutex
	fail bool
}

func (f *failingAudit) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return store.AuditEvent{}, errors.New("disk full")
	}
	return f.Records.AppendAudit(ctx, e)
}

// TestAuditFailsClosed: when the audit log cannot be written nothing is
// uploaded and the deploy fails.
func TestAuditFailsClosed(t *testing.T) {
	mem := backend.NewMemory()
	f := newFixture(t, withBackend(mem))
	rec := &failingAudit{Records: f.store, fail: true}
	svc := f.newService(rec)
	res, err := svc.Deploy(context.Background(), f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("x")})
	wantErr(t, err, deploy.ErrAuditUnavailable)
	if strings.Contains(err.Error(), "disk full") {
		t.Fatalf("the store's error reached the caller: %v", err)
	}
	if mem.Uploads() != 0 {
		t.Fatal("uploaded without an audit record")
	}
	if res.Deployment.Status != store.StatusFailed || !strings.Contains(res.Deployment.Error, "audit") {
		t.Fatalf("deployment %+v", res.Deployment)
	}
	if _, err := f.store.GetLive(context.Background(), "production", "gateway"); !errors.Is(err, errkind.NotFound) {
		t.Fatalf("something is live: %v", err)
	}
}

// crashingRecords simulates a process that dies right after its upload:
// it cannot record the outcome and never releases its lease.
type crashingRecords struct {
	deploy.Records
}

func (crashingRecords) CompleteDeployment(context.Context, string, store.Outcome) (store.Deployment, error) {
	return store.Deployment{}, errors.New("process killed")
}

func (crashingRecords) ReleaseLease(context.Context, string, string) error { return nil }

// TestReconcileAfterCrash simulates crashes between the steps of a deploy
// and checks that Reconcile, in a new process, resolves every pending
// deployment by what the namespace holds, and audits it.
func TestReconcileAfterCrash(t *testing.T) {
	f := newFixture(t, withConfig(func(c *deploy.Config) { c.LeaseTTL = time.Second }))
	ctx := context.Background()
	v1 := f.mustDeploy("production", "gateway", "v1")

	// Crash 1: the upload of v2 reached the namespace, its outcome was
	// never recorded and its lease never released.
	crashed := f.newService(crashingRecords{f.store})
	_, err := crashed.Deploy(ctx, f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("v2")})
	wantErr(t, err, deploy.ErrOutcomeUnknown)
	// Crash 2: api@staging recorded as pending, then the process died
	// before uploading, holding the lease.
	d3, _, err := f.store.BeginDeployment(ctx, store.NewDeployment{
		Service: "api", Environment: "staging", Namespace: "dotdo-staging", ScriptSHA256: v1.ScriptSHA256, ScriptSize: v1.ScriptSize,
		MainModule: "index.js", ActorKeyID: "k", ActorName: "n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AcquireLease(ctx, store.DeployLeaseName("staging", "api"), "dead-process", time.Second); err != nil {
		t.Fatal(err)
	}
	pending, _ := f.store.ListPending(ctx)
	if len(pending) != 2 {
		t.Fatalf("%d pending deployments before reconciling", len(pending))
	}

	// The restarted process.
	start := time.Now()
	report, err := f.newService(f.store).Reconcile(ctx)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if len(report.Resolved) != 2 {
		t.Fatalf("resolved %+v", report.Resolved)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Reconcile took %v", time.Since(start))
	}
	if pending, _ := f.store.ListPending(ctx); len(pending) != 0 {
		t.Fatalf("still pending: %+v", pending)
	}
	gw := f.list("production", "gateway")
	if gw[0].Version != 2 || gw[0].Status != store.StatusLive || gw[1].Status != store.StatusSuperseded {
		t.Fatalf("gateway deployments %+v", gw)
	}
	if id, _ := f.namespaceHolds("dotdo-production", "gateway"); id != gw[0].ID {
		t.Fatalf("namespace holds %s, database says %s", id, gw[0].ID)
	}
	api, err := f.store.GetDeployment(ctx, d3.ID)
	if err != nil || api.Status != store.StatusFailed || !strings.Contains(api.Error, "interrupted") {
		t.Fatalf("api deployment %+v, %v", api, err)
	}
	var repairs []string
	for _, e := range f.audit() {
		if e.Action == deploy.ActionReconcile {
			if e.Actor != deploy.SystemActor {
				t.Fatalf("repair by %q", e.Actor)
			}
			repairs = append(repairs, e.Resource+" "+e.Outcome)
		}
	}
	if len(repairs) != 2 {
		t.Fatalf("audited repairs %q", repairs)
	}
	// Nothing left to do.
	if report, err := f.svc.Reconcile(ctx); err != nil || len(report.Resolved) != 0 {
		t.Fatalf("second Reconcile: %+v, %v", report, err)
	}
}

// TestNextDeployResolvesPending: a deployment left pending is settled by
// the next deploy of its service, before that one starts.
func TestNextDeployResolvesPending(t *testing.T) {
	mem := backend.NewMemory()
	f := newFixture(t, withBackend(mem), withConfig(func(c *deploy.Config) { c.LeaseTTL = time.Second }))
	ctx := context.Background()
	crashed := f.newService(crashingRecords{f.store})
	if _, err := crashed.Deploy(ctx, f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("v1")}); err == nil {
		t.Fatal("the crashing deploy succeeded")
	}
	v2 := f.mustDeploy("production", "gateway", "v2")
	items := f.list("production", "gateway")
	if len(items) != 2 || items[1].Status != store.StatusSuperseded || items[0].ID != v2.ID {
		t.Fatalf("deployments %+v", items)
	}
}

// lostAnswer applies the upload but reports the answer lost.
type lostAnswer struct{ backend.Backend }

func (l lostAnswer) Upload(ctx context.Context, ns string, s backend.Script) error {
	if err := l.Backend.Upload(ctx, ns, s); err != nil {
		return err
	}
	return &backend.Error{Op: "upload", Sentinel: backend.ErrUnavailable, Message: "connection reset"}
}

// TestLostUploadAnswer: an upload that was applied although its answer
// was lost is recorded live, after reading the namespace back.
func TestLostUploadAnswer(t *testing.T) {
	f := newFixture(t, withBackend(lostAnswer{backend.NewMemory()}))
	d := f.mustDeploy("production", "gateway", "v1")
	if id, _ := f.namespaceHolds("dotdo-production", "gateway"); id != d.ID {
		t.Fatalf("namespace holds %s", id)
	}
}

// TestLeaseWait: a deploy waits for the lease of another holder and gives
// up after LeaseWait.
func TestLeaseWait(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()), withConfig(func(c *deploy.Config) { c.LeaseWait = 300 * time.Millisecond }))
	ctx := context.Background()
	if _, err := f.store.AcquireLease(ctx, store.DeployLeaseName("production", "gateway"), "someone-else", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := f.deploy(f.keys.Deployer, "production", "gateway", "x")
	wantErr(t, err, errkind.Conflict)
	if n := len(f.list("production", "gateway")); n != 0 {
		t.Fatalf("%d deployments recorded without the lease", n)
	}
	// Another service is not blocked.
	f.mustDeploy("production", "api", "x")
	// A cancelled caller stops waiting.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = f.svc.Deploy(cctx, f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("x")})
	wantErr(t, err, context.DeadlineExceeded)
}

// slowUpload blocks uploads until release is closed.
type slowUpload struct {
	backend.Backend
	started chan struct{}
	release chan struct{}
}

func (s slowUpload) Upload(ctx context.Context, ns string, sc backend.Script) error {
	close(s.started)
	<-s.release
	return s.Backend.Upload(ctx, ns, sc)
}

// TestSlowUploadKeepsLease: the lease is renewed while an upload takes
// longer than its TTL, so no other holder gets in; and a client that goes
// away does not stop a started deploy.
func TestSlowUploadKeepsLease(t *testing.T) {
	slow := slowUpload{Backend: backend.NewMemory(), started: make(chan struct{}), release: make(chan struct{})}
	f := newFixture(t, withBackend(slow), withConfig(func(c *deploy.Config) { c.LeaseTTL = time.Second }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Deploy(ctx, f.caller(f.keys.Deployer), deploy.DeployInput{Service: "gateway", Environment: "production", Script: script("x")})
		done <- err
	}()
	<-slow.started
	cancel() // the client goes away
	time.Sleep(2500 * time.Millisecond)
	_, err := f.store.AcquireLease(context.Background(), store.DeployLeaseName("production", "gateway"), "intruder", time.Second)
	wantErr(t, err, errkind.Conflict)
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if l, err := f.store.GetLive(context.Background(), "production", "gateway"); err != nil || l.Version != 1 {
		t.Fatalf("live %+v, %v", l, err)
	}
	if l, err := f.store.GetLease(context.Background(), store.DeployLeaseName("production", "gateway")); err != nil || l.Holder != "" {
		t.Fatalf("lease after the deploy %+v, %v", l, err)
	}
}

// TestAdminAuditFailsClosed: a key whose creation cannot be audited is
// revoked and the call fails.
func TestAdminAuditFailsClosed(t *testing.T) {
	f := newFixture(t, withBackend(backend.NewMemory()))
	ctx := context.Background()
	rec := &failingAudit{Records: f.store, fail: true}
	admin := deploy.NewAdmin(f.auth, deploytest.LocalKeyManager(f.auth), rec, deploy.WithLogger(testsupport.QuietLogger()))
	before, err := f.auth.ListKeys(ctx, adminPrincipal(t, f), true)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = admin.CreateKey(ctx, f.caller(f.keys.Admin), deploy.KeySpec{Name: "unaudited", Role: store.RoleDeployer})
	wantErr(t, err, deploy.ErrAuditUnavailable)
	after, err := f.auth.ListKeys(ctx, adminPrincipal(t, f), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+1 || after[len(after)-1].Name != "unaudited" || after[len(after)-1].RevokedAt.IsZero() {
		t.Fatalf("the unaudited key is not revoked: %+v", after[len(after)-1])
	}
	_, err = admin.ListKeys(ctx, f.caller(f.keys.Admin), false)
	wantErr(t, err, deploy.ErrAuditUnavailable)
}

func adminPrincipal(t *testing.T, f *fixture) authz.Principal {
	t.Helper()
	p, err := f.auth.Authenticate(context.Background(), f.keys.Admin, "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
