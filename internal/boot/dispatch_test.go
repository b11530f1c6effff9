package boot

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	dispatcherv1 "github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/credential"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/telemetry"
	"github.com/dot-do/platform/internal/testsupport"
	"google.golang.org/protobuf/proto"

	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	routingv1 "github.com/dot-do/platform/gen/go/dotdo/routing/v1"
)

// dispatchers are the stack's two dispatchers by name: over HTTP and in
// process.
func (s *testStack) dispatchers() map[string]string {
	return map[string]string{"over HTTP": s.dispatcherURL, "in process": s.localDispatcherURL}
}

// get sends GET path to the dispatcher at base with Host host.
func get(t *testing.T, base, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestDispatchEndToEnd deploys gateway and db through DeployService, reaches
// both through the dispatcher (over HTTP and in process) by subdomain and by
// path, rolls gateway back and measures how soon the old version answers:
// the db service pushes the change to the dispatchers as it commits.
func TestDispatchEndToEnd(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	c := s.client(s.adminKey)
	deploy := func(service, label string) {
		t.Helper()
		if _, err := c.Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: service, Environment: "production", Script: worker(label)})); err != nil {
			t.Fatal(err)
		}
	}
	deploy("gateway", "gateway-v1")
	deploy("db", "db-v1")
	// The seed table routes /api/db/* to db once db is live.
	waitFor(t, s, "db.do", "db-v1 /x", time.Second)
	for name, base := range s.dispatchers() {
		for _, c := range []struct{ host, path, want string }{
			{"gateway.do", "/x", "gateway-v1 /x"},               // subdomain
			{"GATEWAY.do:8787", "/x", "gateway-v1 /x"},          // case and port
			{"api.do", "/api/db/users", "db-v1 /api/db/users"},  // path: the worker sees the original path
			{"do", "/api/db", "db-v1 /api/db"},                  // path without a slash
			{"api.do", "/", "gateway-v1 /"},                     // default
			{"db.do", "/api/db/users", "db-v1 /api/db/users"},   // subdomain wins
			{"do.", "/anything", "gateway-v1 /anything"},        // trailing dot
			{"api.do", "/api/%64b/x", "gateway-v1 /api/%64b/x"}, // encoded segment: no path rule
			{"api.do", "/api//db", "gateway-v1 /api//db"},       // empty segment: no path rule
		} {
			if code, body := get(t, base, c.host, c.path); code != 200 || body != c.want {
				t.Errorf("%s: %s%s = %d %q, want %q", name, c.host, c.path, code, body, c.want)
			}
		}
		if code, body := get(t, base, "example.com", "/"); code != 404 || !strings.Contains(body, `"request_id"`) {
			t.Errorf("%s: foreign host = %d %s, want a 404 JSON error", name, code, body)
		}
	}

	deploy("gateway", "gateway-v2")
	waitFor(t, s, "gateway.do", "gateway-v2 /x", time.Second)
	start := time.Now()
	if _, err := c.Rollback(ctx, connect.NewRequest(&deployv1.RollbackRequest{Service: "gateway", Environment: "production"})); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, s, "gateway.do", "gateway-v1 /x", time.Second)
	t.Logf("the rolled-back version answered %v after the rollback returned (%v after it started)", took, time.Since(start))
}

// waitFor polls host on both dispatchers until both answer want, failing
// after bound; it returns how long it took.
func waitFor(t *testing.T, s *testStack, host, want string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for name, base := range s.dispatchers() {
		for {
			if _, body := get(t, base, host, "/x"); body == want {
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("%s: %s did not answer %q within %v", name, host, want, bound)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestDispatcherPublicPortServesWorkersOnly: the public listener answers
// workers' traffic and the gRPC health check, but not Resolve, reflection
// or /metrics, which the operator listener serves; its 404 answers do not
// list the workers it serves.
func TestDispatcherPublicPortServesWorkersOnly(t *testing.T) {
	dir := t.TempDir()
	dbURL, _ := internalStackIn(t, dir, credential.Generate())
	ctx := context.Background()
	tel, err := telemetry.New(ctx, "dispatcher")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	pc := DispatcherConfig{
		Common:      Common{DataDir: dir, Telemetry: tel, dev: true},
		Environment: "production", Namespace: "dotdo-production",
		DBURL: dbURL, RuntimeURL: "http://127.0.0.1:1", UpstreamTimeout: time.Second,
	}
	d, err := pc.Dispatcher(ctx, testsupport.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	go func() { _ = d.Run(dctx) }()
	t.Cleanup(func() { cancel(); d.Close() })
	pub, err := pc.Server(testsupport.QuietLogger(), d)
	if err != nil {
		t.Fatal(err)
	}
	op, err := pc.OperatorServer(testsupport.QuietLogger(), d)
	if err != nil {
		t.Fatal(err)
	}
	pubURL, opURL := serve(t, pub), serve(t, op)

	resolve := func(base string) error {
		c := dispatcherv1connect.NewDispatcherServiceClient(rpc.HTTPClient(), base)
		_, err := c.Resolve(ctx, connect.NewRequest(&dispatcherv1.ResolveRequest{Url: "https://api.do/"}))
		return err
	}
	if err := resolve(pubURL); err == nil {
		t.Fatal("Resolve answered on the public port")
	}
	if err := resolve(opURL); err != nil {
		t.Fatalf("Resolve on the operator port: %v", err)
	}
	list := func(base string) error {
		stream := grpcreflect.NewClient(rpc.HTTPClient(), base).NewStream(ctx)
		defer stream.Close()
		_, err := stream.ListServices()
		return err
	}
	if err := list(pubURL); err == nil {
		t.Fatal("reflection answered on the public port")
	}
	if err := list(opURL); err != nil {
		t.Fatalf("reflection on the operator port: %v", err)
	}
	checkHealth(t, pubURL)
	for host, base := range map[string]string{"public": pubURL, "operator": opURL} {
		code, body := get(t, base, strings.TrimPrefix(base, "http://"), "/metrics")
		isMetrics := code == http.StatusOK && strings.Contains(body, "# TYPE")
		if isMetrics != (host == "operator") {
			t.Errorf("GET /metrics on the %s port = %d %.80q", host, code, body)
		}
	}
	for _, h := range []string{"nope.do", "api.nope.do", "elsewhere.example"} {
		code, body := get(t, pubURL, h, "/")
		if code != http.StatusNotFound || strings.Contains(body, "gateway") || strings.Contains(body, "mcp") {
			t.Errorf("GET / with Host %s = %d %s: want 404 without the workers' names", h, code, body)
		}
	}
}

// TestRoutesEndToEnd sets a routing table through the Deploy API's
// RoutesService: an invalid one is refused with the entry named; a valid
// one reaches both dispatchers without a restart; a rollback restores the
// old behaviour.
func TestRoutesEndToEnd(t *testing.T) {
	s := newTestStack(t)
	ctx := context.Background()
	routes := deployv1connect.NewRoutesServiceClient(rpc.HTTPClient(), s.apiURL, connect.WithInterceptors(bearer(s.adminKey)))
	if _, err := s.client(s.adminKey).Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "gateway", Environment: "production", Script: worker("gateway-v1")})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client(s.adminKey).Deploy(ctx, connect.NewRequest(&deployv1.DeployRequest{Service: "mcp", Environment: "production", Script: worker("mcp-v1")})); err != nil {
		t.Fatal(err)
	}
	cur, err := routes.GetRoutes(ctx, connect.NewRequest(&deployv1.GetRoutesRequest{Environment: "production"}))
	if err != nil || cur.Msg.GetRoutes().GetVersion() != 1 {
		t.Fatalf("GetRoutes = %v, %v; want the seed as version 1", cur, err)
	}
	waitFor(t, s, "api.do", "gateway-v1 /x", time.Second)

	table := cur.Msg.GetRoutes().GetTable()
	bad := proto.Clone(table).(*routingv1.Table)
	bad.PathRoutes = append(bad.PathRoutes, &routingv1.PathRoute{Prefix: "/tools/", Worker: "nope", Hosts: []string{"do", "api.do"}})
	_, err = routes.SetRoutes(ctx, connect.NewRequest(&deployv1.SetRoutesRequest{Environment: "production", Table: bad}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "table.path_routes[8].worker") {
		t.Fatalf("an invalid table: %v; want InvalidArgument naming table.path_routes[8].worker", err)
	}

	good := proto.Clone(table).(*routingv1.Table)
	good.PathRoutes = append(good.PathRoutes, &routingv1.PathRoute{Prefix: "/tools/", Worker: "mcp", Hosts: []string{"do", "api.do"}})
	start := time.Now()
	set, err := routes.SetRoutes(ctx, connect.NewRequest(&deployv1.SetRoutesRequest{Environment: "production", Table: good}))
	if err != nil || set.Msg.GetRoutes().GetVersion() != 2 {
		t.Fatalf("SetRoutes = %v, %v", set, err)
	}
	took := waitForPath(t, s, "api.do", "/tools/x", "mcp-v1 /tools/x", time.Second)
	t.Logf("the new table routed /tools/x %v after SetRoutes answered (%v after it was sent)", took, time.Since(start))

	if _, err := routes.RollbackRoutes(ctx, connect.NewRequest(&deployv1.RollbackRoutesRequest{Environment: "production"})); err != nil {
		t.Fatal(err)
	}
	waitForPath(t, s, "api.do", "/tools/x", "gateway-v1 /tools/x", time.Second)
	hist, err := routes.ListRouteVersions(ctx, connect.NewRequest(&deployv1.ListRouteVersionsRequest{Environment: "production"}))
	if err != nil || len(hist.Msg.GetVersions()) != 3 {
		t.Fatalf("ListRouteVersions = %v, %v", hist, err)
	}
}

// waitForPath polls host and path on both dispatchers until both answer
// want, failing after bound; it returns how long it took.
func waitForPath(t *testing.T, s *testStack, host, path, want string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for name, base := range s.dispatchers() {
		for {
			if _, body := get(t, base, host, path); body == want {
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("%s: %s%s did not answer %q within %v", name, host, path, want, bound)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return time.Since(start)
}
