package boot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/logging"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/internal/testsupport"
)

// observedStack runs the platform with every span recorded and every log
// line (debug included) captured.
func observedStack(t *testing.T) (*testStack, *tracetest.SpanRecorder, *testsupport.LogBuffer) {
	rec := tracetest.NewSpanRecorder()
	logs := &testsupport.LogBuffer{}
	o := &observe{
		telemetry: func(service string) *telemetry.Telemetry {
			tel, err := telemetry.New(context.Background(), service, telemetry.WithSpanProcessor(rec), telemetry.WithoutRuntimeMetrics())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := tel.Shutdown(context.Background()); err != nil {
					t.Errorf("%s telemetry Shutdown: %v", service, err)
				}
			})
			return tel
		},
		logger: func(service string) *slog.Logger { return logging.New(logs, service, slog.LevelDebug) },
	}
	return newObservedStack(t, o), rec, logs
}

// A full cycle (keys, deploys, a failed deploy, failed logins, rollback,
// dispatch) is traced across every hop, and no log line, error or span
// carries an API key, the internal credential or the backend's token.
func TestTracesAndNoSecretLeaks(t *testing.T) {
	s, rec, logs := observedStack(t)
	ctx := context.Background()
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	admin := s.client(s.adminKey)
	adm := deployv1connect.NewAdminServiceClient(rpc.HTTPClient(), s.apiURL, connect.WithInterceptors(bearer(s.adminKey)))
	created, err := adm.CreateApiKey(ctx, connect.NewRequest(&deployv1.CreateApiKeyRequest{Name: "ci", Role: authv1.Role_ROLE_DEPLOYER}))
	if err != nil {
		t.Fatal(err)
	}
	deployerKey := created.Msg.GetSecret()
	deployer := s.client(deployerKey)

	dep, err := deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "gateway", Environment: "production", Script: worker("v1")}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "gateway", Environment: "production", Script: worker("v2")}))
	note(err)
	_, err = deployer.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "broken", Environment: "production", Script: []byte(`throw new Error("top")`)}))
	note(err)
	// Failed logins: a well-formed unknown key, a malformed one, a revoked one.
	forged := deployerKey[:len(deployerKey)-8] + "AAAAAAAA"
	_, err = s.client(forged).ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{}))
	note(err)
	_, err = s.client("dotdo_garbage").ListDeployments(ctx, connect.NewRequest(&deployv1.ListDeploymentsRequest{}))
	note(err)
	_, err = admin.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{Service: "gateway", Environment: "production"}))
	note(err)
	_, err = adm.RotateApiKey(ctx, connect.NewRequest(&deployv1.RotateApiKeyRequest{KeyId: created.Msg.GetApiKey().GetKeyId()}))
	note(err)

	// Dispatch: the live version (the rollback) answers through both
	// dispatchers, each on a path of its own so that its trace can be told
	// apart.
	dispatchPaths := map[string]string{"/hello": s.dispatcherURL, "/hello-in-process": s.localDispatcherURL}
	for path, base := range dispatchPaths {
		var body string
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Host = "gateway.do"
			req.Header.Set("Authorization", "Bearer "+deployerKey) // an end user's header, passed to the worker
			// An outsider's trace context: the dispatcher starts a trace of
			// its own, which the runtime's span must join instead.
			req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if body = string(b); res.StatusCode == 200 && strings.HasPrefix(body, "v1") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.HasPrefix(body, "v1") {
			t.Fatalf("dispatch of %s answered %q, want the rolled-back v1", path, body)
		}
	}

	// A secret put, and two refused, carry a value that must appear in no
	// log, error or span.
	const secretValue = "observed-secret-value-5eb1"
	sec := deployv1connect.NewSecretServiceClient(rpc.HTTPClient(), s.apiURL, connect.WithInterceptors(bearer(deployerKey)))
	if _, err := sec.PutSecret(ctx, connect.NewRequest(&deployv1.PutSecretRequest{Service: "gateway", Environment: "production", Name: "TOKEN", Value: secretValue})); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*deployv1.PutSecretRequest{
		{Service: "gateway", Environment: "production", Name: "BAD-NAME", Value: secretValue},
		{Service: "never-deployed", Environment: "production", Name: "TOKEN", Value: secretValue},
	} {
		_, err = sec.PutSecret(ctx, connect.NewRequest(in))
		if err == nil {
			t.Fatalf("PutSecret %s/%s succeeded", in.GetService(), in.GetName())
		}
		note(err)
	}

	spans := rec.Ended()
	_ = dep
	checkTrace(t, spans, "dotdo.deploy.v1.SecretService/PutSecret", "dotdo.auth.v1.AuthService/Authorize", "dotdo.db.v1.DBService/AppendAuditEvent")
	checkTrace(t, spans, "dotdo.deploy.v1.DeployService/Deploy",
		"dotdo.auth.v1.AuthService/Authorize", "dotdo.db.v1.DBService/BeginDeployment", "dotdo.db.v1.DBService/CompleteDeployment")
	// The upload reaches the runtime's API in the deploy's trace (PUT
	// .../scripts/gateway); the dispatcher's request reaches the runtime's
	// invocation endpoint in the dispatcher's trace.
	checkTrace(t, spans, "dotdo.deploy.v1.DeployService/Deploy", "PUT /")
	for path := range dispatchPaths {
		checkDispatchTrace(t, spans, path)
	}

	runtimeToken, err := (&Common{DataDir: s.dir}).RuntimeToken("")
	if err != nil {
		t.Fatal(err)
	}
	invokeToken, err := (&Common{DataDir: s.dir}).InvokeToken()
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"invoke token":        invokeToken,
		"admin key":           s.adminKey,
		"deployer key":        deployerKey,
		"deployer key secret": deployerKey[len("dotdo_")+13:],
		"backend token":       runtimeToken,
		"secret value":        secretValue,
	}
	for _, caller := range credential.Callers() {
		tok, err := (&Common{DataDir: s.dir}).Credential(caller)
		if err != nil {
			t.Fatal(err)
		}
		secrets["credential of "+string(caller)] = tok
	}
	var spanText strings.Builder
	for _, sp := range spans {
		fmt.Fprintln(&spanText, sp.Name(), sp.Status().Description, sp.Attributes(), sp.Resource().Attributes())
		for _, ev := range sp.Events() {
			fmt.Fprintln(&spanText, ev.Name, ev.Attributes)
		}
	}
	for what, text := range map[string]string{"logs": logs.String(), "errors": strings.Join(errs, "\n"), "spans": spanText.String()} {
		if len(text) == 0 && what != "errors" {
			t.Fatalf("no %s were captured", what)
		}
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in the %s", name, what)
			}
		}
	}
	t.Logf("scanned %d log bytes, %d errors, %d spans", len(logs.String()), len(errs), len(spans))
}

// spanTree indexes spans by id, to follow parents.
type spanTree map[trace.SpanID]sdktrace.ReadOnlySpan

func newSpanTree(spans []sdktrace.ReadOnlySpan) spanTree {
	t := spanTree{}
	for _, sp := range spans {
		t[sp.SpanContext().SpanID()] = sp
	}
	return t
}

// descends reports whether sp is below the span ancestor, in one trace.
func (t spanTree) descends(sp sdktrace.ReadOnlySpan, ancestor sdktrace.ReadOnlySpan) bool {
	if sp.SpanContext().TraceID() != ancestor.SpanContext().TraceID() {
		return false
	}
	for p := sp.Parent().SpanID(); p.IsValid(); {
		if p == ancestor.SpanContext().SpanID() {
			return true
		}
		next, ok := t[p]
		if !ok {
			return false
		}
		p = next.Parent().SpanID()
	}
	return false
}

// checkDispatchTrace checks that the dispatcher's span of the request for
// path has, below it, the runtime's span of the invocation.
func checkDispatchTrace(t *testing.T, spans []sdktrace.ReadOnlySpan, path string) {
	t.Helper()
	urlPath := func(sp sdktrace.ReadOnlySpan) string {
		for _, a := range sp.Attributes() {
			if a.Key == "url.path" {
				return a.Value.AsString()
			}
		}
		return ""
	}
	tree := newSpanTree(spans)
	var roots []sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindServer && urlPath(sp) == path {
			roots = append(roots, sp)
		}
	}
	for _, r := range roots {
		for _, sp := range spans {
			// Over HTTP the runtime's span is the request to its invocation
			// endpoint; in process, the worker's request itself.
			p := urlPath(sp)
			if sp != r && sp.SpanKind() == trace.SpanKindServer && tree.descends(sp, r) &&
				(strings.HasPrefix(p, "/invoke/dotdo-production/gateway/") && strings.HasSuffix(p, path) || p == path) {
				return
			}
		}
	}
	t.Errorf("no trace of the dispatch of %s reaches the runtime (%d dispatcher spans for it)", path, len(roots))
}

// checkTrace finds the server span named root whose trace also holds the
// named server spans, each a descendant of root.
func checkTrace(t *testing.T, spans []sdktrace.ReadOnlySpan, root string, children ...string) {
	t.Helper()
	tree := newSpanTree(spans)
	for _, r := range spans {
		if r.Name() != root || r.SpanKind() != trace.SpanKindServer {
			continue
		}
		found := map[string]bool{}
		for _, sp := range spans {
			if sp.SpanKind() == trace.SpanKindServer && tree.descends(sp, r) {
				found[sp.Name()] = true
			}
		}
		missing := false
		for _, c := range children {
			missing = missing || !found[c]
		}
		if !missing {
			return
		}
	}
	var names []string
	for _, sp := range spans {
		names = append(names, fmt.Sprintf("%s(%s)", sp.Name(), sp.SpanKind()))
	}
	t.Fatalf("no %s trace holds all of %v; spans: %v", root, children, names)
}

// TestDeploymentMetrics: live and failed deployments are counted by
// environment and outcome on the deploy service's /metrics.
func TestDeploymentMetrics(t *testing.T) {
	s, _, _ := observedStack(t)
	ctx := context.Background()
	c := s.client(s.adminKey)
	if _, err := c.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "m", Environment: "staging", Script: worker("ok")})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "m", Environment: "staging", Script: []byte(`throw new Error("x")`)})); err == nil {
		t.Fatal("a worker that throws at top level deployed")
	}
	// Refused before anything was recorded: not counted.
	if _, err := c.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "m", Environment: "mars", Script: worker("x")})); err == nil {
		t.Fatal("a deploy to an unknown environment succeeded")
	}
	res, err := http.Get(s.apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	t.Logf("GET /metrics: %d, %d bytes", res.StatusCode, len(b))
	for _, want := range []string{`environment="staging",kind="deploy",otel_scope_name`, `outcome="live"} 1`, `outcome="rejected"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, grepLines(string(b), "dotdo_deployments_total"))
		}
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
