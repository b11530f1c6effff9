package dispatcher_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/dispatcher"
	"github.com/dot-do/platform/services/dispatcher/dispatchertest"
)

const ns = "dotdo-production"

// deploy uploads code as service to the runtime and records it live in st,
// as the deploy service does, and checks that both number it alike.
func deploy(t *testing.T, rt *dispatchertest.Runtime, st store.Store, service, code string) int64 {
	t.Helper()
	ctx := context.Background()
	sha, err := st.PutBlob(ctx, []byte(code))
	if err != nil {
		t.Fatal(err)
	}
	dep, _, err := st.BeginDeployment(ctx, store.NewDeployment{
		Service: service, Environment: "production", Namespace: ns, ScriptSHA256: sha,
		ScriptSize: int64(len(code)), MainModule: "worker.js", CompatibilityDate: "2025-01-01",
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := rt.Upload(t, ns, service, code); v != dep.Version {
		t.Fatalf("%s: the runtime numbered the upload %d, the store %d", service, v, dep.Version)
	}
	if _, err := st.CompleteDeployment(ctx, dep.ID, store.Outcome{Status: store.StatusLive}); err != nil {
		t.Fatal(err)
	}
	return dep.Version
}

type echo struct {
	Worker, Tag, Method, URL, Path, Search string
	ForwardedFor, RequestID, InvokeToken   string
	Body                                   *string
}

// get requests host+target through the dispatcher at base and decodes the
// echo worker's answer.
func get(t *testing.T, base, host, target string) (echo, *http.Response) {
	t.Helper()
	res := do(t, http.MethodGet, base, host, target, nil, nil)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e echo
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s%s: %q", host, target, b)
		}
	}
	return e, res
}

// TestThroughRuntime runs workers in the real runtime (workerd) and the
// live versions pushed by a real db service (WatchEnvironment over a SQLite
// store), with the runtime over HTTP and in process: workers answer by
// subdomain and by path, and a new live version reaches traffic as soon as
// the store records it.
func TestThroughRuntime(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		name := "http"
		if inProcess {
			name = "in-process"
		}
		t.Run(name, func(t *testing.T) { testThroughRuntime(t, inProcess) })
	}
}

func testThroughRuntime(t *testing.T, inProcess bool) {
	rt := dispatchertest.StartRuntime(t)
	st := sqlitetest.Open(t)
	deploy(t, rt, st, "gateway", dispatchertest.EchoWorker("gateway", "v1"))
	deploy(t, rt, st, "db", dispatchertest.EchoWorker("db", "v1"))

	cfg := dispatcher.Config{RuntimeURL: rt.URL, InvokeToken: dispatchertest.InvokeToken, Logger: testsupport.QuietLogger()}
	if inProcess {
		cfg.Runtime = rt.Local()
	}
	d, err := dispatcher.New(cfg, dispatchertest.ServeDB(t, st))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	eventually(t, 5*time.Second, "first load", d.Ready)
	base := front(t, d)

	// Subdomain.
	e, res := get(t, base, "gateway.do", "/hello?name=x")
	if res.StatusCode != 200 || e.Worker != "gateway" || e.Tag != "v1" || e.URL != "http://gateway.do/hello?name=x" {
		t.Fatalf("gateway.do: %d %+v", res.StatusCode, e)
	}
	if e.InvokeToken != "" || e.ForwardedFor != "127.0.0.1" || e.RequestID == "" || res.Header.Get(dispatcher.RequestIDHeader) != e.RequestID {
		t.Errorf("gateway.do: headers the worker saw: %+v", e)
	}
	// Path: the worker sees the full original path.
	e, res = get(t, base, "api.do", "/api/db/users?limit=1")
	if res.StatusCode != 200 || e.Worker != "db" || e.Path != "/api/db/users" || e.URL != "http://api.do/api/db/users?limit=1" {
		t.Fatalf("api.do/api/db/users: %d %+v", res.StatusCode, e)
	}
	// Default, and a percent-encoded segment that stays with the default worker.
	e, _ = get(t, base, "api.do", "/api/%64b/x")
	if e.Worker != "gateway" || e.Path != "/api/%64b/x" {
		t.Fatalf("api.do/api/%%64b/x: %+v", e)
	}
	// Allowed but never deployed.
	wantError(t, do(t, http.MethodGet, base, "auth.do", "/", nil, nil), http.StatusNotFound, "no_live_version")
	// A POST body goes through.
	res = do(t, http.MethodPost, base, "db.do", "/q", strings.NewReader("select 1"), nil)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `"body":"select 1"`) {
		t.Fatalf("POST: %d %s", res.StatusCode, b)
	}

	// A new version goes live: traffic switches within the bound, and every
	// answer meanwhile comes from v1 or v2.
	v2 := deploy(t, rt, st, "gateway", dispatchertest.EchoWorker("gateway", "v2"))
	live := time.Now()
	for {
		e, res := get(t, base, "gateway.do", "/")
		if res.StatusCode != 200 || (e.Tag != "v1" && e.Tag != "v2") {
			t.Fatalf("during the switch: %d %+v", res.StatusCode, e)
		}
		if e.Tag == "v2" {
			break
		}
		if time.Since(live) > 5*time.Second {
			t.Fatal("version 2 never reached traffic")
		}
	}
	took := time.Since(live)
	t.Logf("version %d served %v after it went live", v2, took)
	if took > time.Second {
		t.Errorf("the switch took %v; a pushed change takes milliseconds", took)
	}
	if r, _ := d.Resolve("https://gateway.do/"); r.Version != v2 || r.Rule != routing.RuleSubdomain {
		t.Errorf("Resolve after the switch: %+v", r)
	}
}

// TestWebSocketThroughRuntime: a worker's WebSocket in the real runtime
// works both ways through the dispatcher, over HTTP and in process.
func TestWebSocketThroughRuntime(t *testing.T) {
	for _, inProcess := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "in-process"}[inProcess], func(t *testing.T) {
			rt := dispatchertest.StartRuntime(t)
			v := rt.Upload(t, ns, "gateway", dispatchertest.WebSocketWorker)
			cfg := dispatcher.Config{RuntimeURL: rt.URL, InvokeToken: dispatchertest.InvokeToken}
			if inProcess {
				cfg.Runtime = rt.Local()
			}
			d := newDispatcher(t, cfg, newFake("production", map[string]int64{"gateway": v}))
			conn, err := net.Dial("tcp", strings.TrimPrefix(front(t, d), "http://"))
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			wcfg, err := websocket.NewConfig("ws://gateway.do/sock", "http://gateway.do/")
			if err != nil {
				t.Fatal(err)
			}
			ws, err := websocket.NewClient(wcfg, conn)
			if err != nil {
				t.Fatalf("WebSocket handshake through the dispatcher: %v", err)
			}
			defer ws.Close()
			for _, msg := range []string{"hi", "again"} {
				if err := websocket.Message.Send(ws, msg); err != nil {
					t.Fatal(err)
				}
				var got string
				if err := websocket.Message.Receive(ws, &got); err != nil || got != "echo:"+msg {
					t.Fatalf("got %q, %v; want %q", got, err, "echo:"+msg)
				}
			}
		})
	}
}
