package dispatcher_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	dispatcherv1 "github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1"
	"github.com/dot-do/platform/gen/go/dotdo/dispatcher/v1/dispatcherv1connect"
	"github.com/dot-do/platform/internal/rpc"
	"github.com/dot-do/platform/internal/server"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/dispatcher"
)

// serve runs d the way the dispatcher binary does: internal/server with the
// proxy as root (Middleware) and DispatcherService registered. It returns
// the server's base URL.
func serve(t *testing.T, d *dispatcher.Dispatcher) string {
	t.Helper()
	opts, err := rpc.HandlerOptions(rpc.WithLogger(testsupport.QuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New("dispatcher", server.WithLogger(testsupport.QuietLogger()), server.WithMiddleware(dispatcher.Middleware(d)))
	srv.Register(dispatcherv1connect.NewDispatcherServiceHandler(dispatcher.NewHandler(d), opts...))
	return testsupport.Serve(t, srv)
}

// raw sends req as is on a new connection to the server at base and reads
// one response.
func raw(t *testing.T, base, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", req, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestBadRequests sends malformed requests to a served dispatcher: every
// one gets a 4xx (JSON when it reaches the dispatcher) and the server keeps
// serving.
func TestBadRequests(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "worker") })
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: up.URL}, newFake("production", standardLive()))
	base := serve(t, d)
	big := func(n int) string { return "X-Big: " + strings.Repeat("a", n) + "\r\n" }
	for _, c := range []struct {
		name, req string
		status    int
		code      string // "" when net/http answers before the dispatcher (plain text)
	}{
		{"malformed host", "GET / HTTP/1.1\r\nHost: gateway..do\r\n\r\n", 400, "bad_host"},
		{"bad port", "GET / HTTP/1.1\r\nHost: gateway.do:http\r\n\r\n", 400, "bad_host"},
		{"huge port", "GET / HTTP/1.1\r\nHost: gateway.do:123456\r\n\r\n", 400, "bad_host"},
		{"bare IPv6", "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", 400, "bad_host"},
		{"unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "bad_host"},
		{"UTF-8 host", "GET / HTTP/1.1\r\nHost: b\xc3\xbccher.do\r\n\r\n", 400, ""},
		{"no host, HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 400, "bad_host"},
		{"no host, HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400, ""},
		{"two hosts", "GET / HTTP/1.1\r\nHost: gateway.do\r\nHost: db.do\r\n\r\n", 400, ""},
		{"space in host", "GET / HTTP/1.1\r\nHost: gate way.do\r\n\r\n", 400, ""},
		{"dot segment", "GET /api/db/../auth HTTP/1.1\r\nHost: api.do\r\n\r\n", 400, "bad_request"},
		{"encoded dot segment", "GET /api/db/%2E%2e/auth HTTP/1.1\r\nHost: api.do\r\n\r\n", 400, "bad_request"},
		{"asterisk (net/http answers it)", "OPTIONS * HTTP/1.1\r\nHost: gateway.do\r\n\r\n", 200, ""},
		{"CONNECT", "CONNECT gateway.do:443 HTTP/1.1\r\nHost: gateway.do:443\r\n\r\n", 405, "method_not_allowed"},
		{"headers over the dispatcher's limit", "GET / HTTP/1.1\r\nHost: gateway.do\r\n" + big(40<<10) + "\r\n", 431, "headers_too_large"},
		{"headers over the server's limit", "GET / HTTP/1.1\r\nHost: gateway.do\r\n" + big(100<<10) + "\r\n", 431, ""},
		{"unknown host", "GET / HTTP/1.1\r\nHost: nope.do\r\n\r\n", 404, "not_found"},
	} {
		res, body := raw(t, base, c.req)
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d %q; want %d", c.name, res.StatusCode, body, c.status)
			continue
		}
		if c.code == "" {
			continue
		}
		var e errorJSON
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != c.code || e.Error.RequestID == "" {
			t.Errorf("%s: body %q; want JSON error %s", c.name, body, c.code)
		}
	}
	// Still serving. A raw backslash is forwarded escaped (%5C), as net/url
	// reads it, so the worker sees the path that was routed on.
	res, body := raw(t, base, "GET /api\\db/x HTTP/1.1\r\nHost: api.do\r\n\r\n")
	if res.StatusCode != 200 || string(body) != "worker" {
		t.Fatalf("after the bad requests: %d %q", res.StatusCode, body)
	}
	if got := up.last(t).URL.EscapedPath(); got != "/invoke/dotdo-production/gateway/3/api%5Cdb/x" {
		t.Errorf("a raw backslash reached the runtime as %q", got)
	}
}

// TestResolveRPC calls Resolve over Connect and gRPC through the served
// dispatcher, and checks that worker hosts still reach workers on the RPC's
// path.
func TestResolveRPC(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "worker") })
	d := newDispatcher(t, dispatcher.Config{RuntimeURL: up.URL}, newFake("production", standardLive()))
	base := serve(t, d)
	clients := map[string]dispatcherv1connect.DispatcherServiceClient{
		"connect": dispatcherv1connect.NewDispatcherServiceClient(http.DefaultClient, base),
		"grpc":    dispatcherv1connect.NewDispatcherServiceClient(rpc.HTTPClient(), base, connect.WithGRPC()),
	}
	ctx := context.Background()
	for name, c := range clients {
		res, err := c.Resolve(ctx, connect.NewRequest(&dispatcherv1.ResolveRequest{Url: "https://api.do/api/db/users?x=1"}))
		if err != nil {
			t.Fatalf("%s: Resolve: %v", name, err)
		}
		want := &dispatcherv1.ResolveResponse{Matched: true, Rule: dispatcherv1.Rule_RULE_PATH, Worker: "db",
			Environment: "production", Namespace: "dotdo-production", Version: 5, Path: "/api/db/users"}
		if got := res.Msg; got.String() != want.String() {
			t.Errorf("%s: Resolve = %v; want %v", name, got, want)
		}
		res, err = c.Resolve(ctx, connect.NewRequest(&dispatcherv1.ResolveRequest{Url: "http://schedule.do/"}))
		if err != nil || !res.Msg.GetMatched() || res.Msg.GetVersion() != 0 || !strings.Contains(res.Msg.GetReason(), "no live version") {
			t.Errorf("%s: Resolve of a worker with nothing live = %v, %v", name, res.Msg, err)
		}
		res, err = c.Resolve(ctx, connect.NewRequest(&dispatcherv1.ResolveRequest{Url: "http://nope.do/"}))
		if err != nil || res.Msg.GetMatched() || res.Msg.GetRule() != dispatcherv1.Rule_RULE_UNSPECIFIED || res.Msg.GetReason() == "" {
			t.Errorf("%s: Resolve of an unknown worker = %v, %v", name, res.Msg, err)
		}
		for _, bad := range []string{"ftp://gateway.do/", "not a url"} {
			_, err = c.Resolve(ctx, connect.NewRequest(&dispatcherv1.ResolveRequest{Url: bad}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("%s: Resolve(%q) error %v; want InvalidArgument", name, bad, err)
			}
		}
	}
	// The same path on a worker host goes to the worker.
	req, _ := http.NewRequest(http.MethodPost, base+dispatcherv1connect.DispatcherServiceResolveProcedure, strings.NewReader("{}"))
	req.Host = "gateway.do"
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "worker" {
		t.Errorf("Resolve's path on gateway.do answered %q; want the worker", b)
	}
	// HTTP/2 without TLS (h2c) reaches workers too.
	req, _ = http.NewRequest(http.MethodGet, base+"/h2", nil)
	req.Host = "gateway.do"
	res, err = rpc.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || string(b) != "worker" || up.last(t).Header.Get("X-Forwarded-Host") != "gateway.do" {
		t.Errorf("h2c: %s %q", res.Proto, b)
	}
	// Health answers on the listener's own address.
	res, err = http.Post(base+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	if err != nil || res.StatusCode != 200 {
		t.Errorf("health: %v, %v", res, err)
	}
	if res != nil {
		res.Body.Close()
	}
}
