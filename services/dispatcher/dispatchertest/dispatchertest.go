// Package dispatchertest runs the real local runtime (services/runtime, with
// workerd) on loopback for the dispatcher's tests and benchmarks, and uploads
// workers to it with cloudflare-go v6, as the deploy service does.
package dispatchertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	cloudflare "github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/option"
	wfp "github.com/cloudflare/cloudflare-go/v6/workers_for_platforms"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/runtime"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// Credentials of the test runtime.
const (
	APIToken    = "dispatchertest-api-token-0123456789"
	InvokeToken = "dispatchertest-invoke-token-9876543210"
	account     = "local"
)

// Runtime is a local runtime served by an httptest server on loopback.
type Runtime struct {
	// URL is the runtime's base URL, for Config.RuntimeURL.
	URL string

	rt     *runtime.Runtime
	srv    *httptest.Server
	client *cloudflare.Client

	mu         sync.Mutex
	namespaces map[string]bool
}

// StartRuntime starts a runtime on a temporary data directory and stops it
// when tb ends. It skips tb when no workerd binary can be found.
func StartRuntime(tb testing.TB) *Runtime {
	tb.Helper()
	if _, err := workerd.FindBinary("", ""); err != nil {
		tb.Skipf("skipping: this test runs workerd, and none was found: %v", err)
	}
	rt, err := runtime.New(context.Background(), runtime.Config{
		DataDir:     tb.TempDir(),
		APIToken:    APIToken,
		InvokeToken: InvokeToken,
		Logger:      testsupport.QuietLogger(),
	})
	if err != nil {
		tb.Fatalf("runtime.New: %v", err)
	}
	srv := httptest.NewServer(rt.Handler())
	r := &Runtime{
		URL: srv.URL,
		rt:  rt,
		srv: srv,
		client: cloudflare.NewClient(
			option.WithBaseURL(srv.URL+"/client/v4/"),
			option.WithAPIToken(APIToken),
			option.WithMaxRetries(0),
		),
		namespaces: map[string]bool{},
	}
	tb.Cleanup(func() {
		srv.Close()
		if err := rt.Close(); err != nil {
			tb.Errorf("runtime Close: %v", err)
		}
	})
	return r
}

// Upload uploads code (one ES module) as script in namespace, creating the
// namespace on first use, and returns the runtime's version number.
func (r *Runtime) Upload(tb testing.TB, namespace, script, code string) int64 {
	tb.Helper()
	r.mu.Lock()
	create := !r.namespaces[namespace]
	r.namespaces[namespace] = true
	r.mu.Unlock()
	return upload(tb, r.client, namespace, script, code, create)
}

// UploadTo uploads code (one ES module) as script to the runtime API at
// baseURL (the runtime's own address, without /client/v4) with apiToken,
// creating namespace first, and returns the runtime's version number.
func UploadTo(tb testing.TB, baseURL, apiToken, namespace, script, code string) int64 {
	tb.Helper()
	client := cloudflare.NewClient(
		option.WithBaseURL(strings.TrimSuffix(baseURL, "/")+"/client/v4/"),
		option.WithAPIToken(apiToken),
		option.WithMaxRetries(0),
	)
	return upload(tb, client, namespace, script, code, true)
}

func upload(tb testing.TB, client *cloudflare.Client, namespace, script, code string, createNamespace bool) int64 {
	tb.Helper()
	ctx := context.Background()
	acct := cloudflare.F(account)
	ns := client.WorkersForPlatforms.Dispatch.Namespaces
	if createNamespace {
		if _, err := ns.New(ctx, wfp.DispatchNamespaceNewParams{AccountID: acct, Name: cloudflare.F(namespace)}); err != nil {
			tb.Fatalf("create namespace %s: %v", namespace, err)
		}
	}
	up, err := ns.Scripts.Update(ctx, namespace, script, wfp.DispatchNamespaceScriptUpdateParams{
		AccountID: acct,
		Metadata: cloudflare.F(wfp.DispatchNamespaceScriptUpdateParamsMetadata{
			MainModule:        cloudflare.F("worker.js"),
			CompatibilityDate: cloudflare.F("2025-01-01"),
		}),
		Files: cloudflare.F([]io.Reader{
			cloudflare.FileParam(strings.NewReader(code), "worker.js", "application/javascript+module").Value,
		}),
	})
	if err != nil {
		tb.Fatalf("upload %s/%s: %v", namespace, script, err)
	}
	var version int64
	if err := json.Unmarshal([]byte(up.JSON.ExtraFields["dotdo_version"].Raw()), &version); err != nil || version <= 0 {
		tb.Fatalf("upload %s/%s: no dotdo_version in the answer (%v)", namespace, script, err)
	}
	return version
}

// Local returns the runtime for a dispatcher in the same process
// (Config.Runtime).
func (r *Runtime) Local() *runtime.Runtime { return r.rt }

// InvokeURL is the URL of the runtime's invocation endpoint for a worker
// version and path; requests need the header runtime.InvokeTokenHeader set
// to InvokeToken.
func (r *Runtime) InvokeURL(namespace, script string, version int64, path string) string {
	return r.URL + runtime.InvokePrefix + namespace + "/" + script + "/" + strconv.FormatInt(version, 10) + path
}

// EchoWorker returns the code of a worker that answers JSON describing
// itself (name and tag) and the request it saw: method, url, path and the
// headers a dispatcher sets.
func EchoWorker(name, tag string) string {
	return `export default {
  async fetch(request) {
    const url = new URL(request.url);
    return Response.json({
      worker: ` + strconv.Quote(name) + `,
      tag: ` + strconv.Quote(tag) + `,
      method: request.method,
      url: request.url,
      path: url.pathname,
      search: url.search,
      forwardedFor: request.headers.get("x-forwarded-for"),
      requestId: request.headers.get("x-request-id"),
      invokeToken: request.headers.get("x-dotdo-invoke-token"),
      body: request.method === "POST" ? await request.text() : null,
    });
  },
};`
}

// HelloWorker is the smallest useful worker: it answers "hello" in plain
// text.
const HelloWorker = `export default { fetch() { return new Response("hello"); } };`

// WebSocketWorker accepts a WebSocket upgrade (anything else gets 426) and
// answers every message m with "echo:" + m.
const WebSocketWorker = `export default {
  fetch(req) {
    if (req.headers.get("upgrade") !== "websocket") return new Response("no upgrade", {status: 426});
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (ev) => server.send("echo:" + ev.data));
    return new Response(null, { status: 101, webSocket: client });
  },
}`
