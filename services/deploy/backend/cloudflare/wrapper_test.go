package cloudflare_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/dot-do/platform/services/deploy/backend"
	"github.com/dot-do/platform/services/deploy/backend/cloudflare"
	"github.com/dot-do/platform/services/deploy/deploytest"
)

// wrapperHarness runs the wrapper Cloudflare gets as a worker's main
// module, handing it a stand-in for its dispatch namespace binding: get(name)
// returns the local runtime's service binding SVC_<name>.
var wrapperHarness = namespaceHarness(cloudflare.WrapperModule, cloudflare.NamespaceBinding, "SVC_")

// namespaceHarness is a main module that runs the fetch and scheduled
// handlers of module with env plus a stand-in for a dispatch namespace
// binding named binding, whose get(name) returns the service binding
// prefix+name, or throws as Cloudflare's binding does for a missing
// script.
func namespaceHarness(module, binding, prefix string) string {
	return `import inner from ` + strconv.Quote("./"+module) + `;
function withNamespace(env) {
  return { ...env, ` + binding + `: { get(name) {
    const f = env[` + strconv.Quote(prefix) + ` + name];
    if (!f) throw new Error("Worker not found.");
    return f;
  } } };
}
export default {
  fetch: (req, env, ctx) => inner.fetch(req, withNamespace(env), ctx),
  scheduled: (controller, env, ctx) => inner.scheduled(controller, withNamespace(env), ctx),
};`
}

// TestWrapperRuns runs the generated wrapper in workerd (through the local
// runtime): the worker's env.DB.fetch reaches db through the namespace
// binding, its vars pass through, the namespace binding is hidden from it,
// and its scheduled handler is forwarded too.
func TestWrapperRuns(t *testing.T) {
	rt := deploytest.StartRuntime(t)
	b := rt.Backend(t)
	ctx := context.Background()
	if _, err := b.EnsureNamespace(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	db := backend.Script{Name: "db", MainModule: "index.js", Modules: []backend.Module{{Name: "index.js", Content: []byte(
		`let posts = 0; export default { async fetch(req) { if (req.method === "POST") posts++; return new Response("db" + new URL(req.url).pathname + " posts=" + posts) } }`)}}}
	if err := b.Upload(ctx, "ns", db); err != nil {
		t.Fatal(err)
	}
	user := `export default {
  async fetch(req, env) {
    const r = await env.DB.fetch("http://db/items");
    return new Response(env.GREETING + " " + (await r.text()) + " ns-visible=" + ("` + cloudflare.NamespaceBinding + `" in env));
  },
  async scheduled(ev, env) { await env.DB.fetch("http://db/tick", { method: "POST" }); },
};
export const named = 1;`
	services := []backend.ServiceBinding{{Binding: "DB", Service: "db"}}
	gw := backend.Script{
		Name: "gateway", MainModule: "harness.js",
		Modules: []backend.Module{
			{Name: "harness.js", Content: []byte(wrapperHarness)},
			{Name: cloudflare.WrapperModule, Content: []byte(cloudflare.WrapperJS("src/index.js", services))},
			{Name: "src/index.js", Content: []byte(user)},
		},
		Vars:     map[string]string{"GREETING": "hello"},
		Services: []backend.ServiceBinding{{Binding: "SVC_db", Service: "db"}},
	}
	if err := b.Upload(ctx, "ns", gw); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if status, body := rt.Invoke(t, "ns", "gateway"); status != 200 || body != "hello db/items posts=0 ns-visible=false" {
		t.Fatalf("gateway answered %d %q", status, body)
	}
	if err := b.Scheduled(ctx, "ns", "gateway", "* * * * *"); err != nil {
		t.Fatalf("Scheduled: %v", err)
	}
	if status, body := rt.Invoke(t, "ns", "gateway"); status != 200 || body != "hello db/items posts=1 ns-visible=false" {
		t.Fatalf("gateway after its scheduled run answered %d %q", status, body)
	}
}
