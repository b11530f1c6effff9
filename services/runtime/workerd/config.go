package workerd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// protoHeader is the request header with which the supervisor tells
// workerd the scheme of the request URL the worker sees; workerd consumes
// it (the worker never sees it).
const protoHeader = "x-dotdo-proto"

// processConfig is what a process's configuration needs beyond its bundle.
type processConfig struct {
	// dir is the process's private directory (0700): the configuration,
	// the module files and the socket live there.
	dir string
	// sock is the Unix socket the process serves on.
	sock string
	// memoryMB is the V8 heap limit.
	memoryMB int
	// bindingSocket returns the socket of the service binding to script.
	bindingSocket func(script string) string
	// tail, when set, is the props (JSON) of the process's tail worker,
	// which sends every invocation's events to tailSocket.
	tail       string
	tailSocket string
}

// cronSocket is the socket, in a process's directory, of its cron shim: a
// worker of the platform's in the same process that runs the user worker's
// scheduled handler over a JS-RPC binding (workerd has no other way to fire
// it without --experimental). Only the supervisor reaches it.
const cronSocket = "cron.sock"

// cronJS is the cron shim: GET /?cron=<expr>&time=<ms> runs
// env.TARGET.scheduled(controller) and answers 200, or 500 with the
// handler's error.
const cronJS = `export default { async fetch(req, env) {
  const u = new URL(req.url);
  const controller = { type: "scheduled", cron: u.searchParams.get("cron") || "",
    scheduledTime: Number(u.searchParams.get("time")) || Date.now(), noRetry() {} };
  try { await env.TARGET.scheduled(controller); return new Response("ok"); }
  catch (e) { return new Response(String((e && e.stack) || e), { status: 500 }); }
} }`

// tailJS is the platform's tail worker: it receives each invocation's
// events (tail(events), with the process's props as ctx.props) and sends
// them to the supervisor's sink in batches (50 ms or 100 events), with a
// timeout, so that a slow sink never holds the worker's requests.
const tailJS = `let batch = null;
async function flush(env, props) {
  const events = batch; batch = null;
  if (!events || events.length === 0) return;
  try {
    const r = await env.SINK.fetch("http://sink/", { method: "POST",
      body: JSON.stringify({ props, events }), signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
  } catch (e) {}
}
export default { tail(events, env, ctx) {
  if (batch === null) {
    batch = [];
    ctx.waitUntil(new Promise((done) => setTimeout(done, 50)).then(() => flush(env, ctx.props)));
  }
  for (const e of events) batch.push(e);
  if (batch.length >= 100) ctx.waitUntil(flush(env, ctx.props));
} }`

// secretEnvVar names the environment variable that carries the secret of
// binding i to the process.
func secretEnvVar(i int) string { return "DOTDO_SECRET_" + strconv.Itoa(i) }

// writeConfig writes b's modules and a workerd configuration serving b
// statically into pc.dir, and returns the configuration's path and the
// environment (the secrets) the process needs. Module files are named by
// index, so no module name becomes a path; secrets reach the process in its
// environment only, never on disk.
func writeConfig(b *Bundle, pc processConfig) (string, []string, error) {
	var mods strings.Builder
	for i, m := range b.Modules {
		kind := ""
		switch m.Type {
		case ModuleESM:
			kind = "esModule"
		case ModuleCommonJS:
			kind = "commonJsModule"
		case ModuleText:
			kind = "text"
		case ModuleData:
			kind = "data"
		case ModuleJSON:
			kind = "json"
		case ModuleWasm:
			kind = "wasm"
		default:
			continue // source maps and unknown types are not loaded
		}
		file := "m" + strconv.Itoa(i)
		if err := os.WriteFile(filepath.Join(pc.dir, file), m.Content, 0o600); err != nil {
			return "", nil, err
		}
		fmt.Fprintf(&mods, "      (name = %s, %s = embed %s),\n", capnpString(m.Name), kind, capnpString(file))
	}
	var binds, services strings.Builder
	var env []string
	for i, bd := range b.Bindings {
		switch bd.Kind {
		case BindingText:
			fmt.Fprintf(&binds, "      (name = %s, text = %s),\n", capnpString(bd.Name), capnpString(bd.Value))
		case BindingJSON:
			fmt.Fprintf(&binds, "      (name = %s, json = %s),\n", capnpString(bd.Name), capnpString(bd.Value))
		case BindingSecret:
			v := secretEnvVar(i)
			env = append(env, v+"="+bd.Value)
			fmt.Fprintf(&binds, "      (name = %s, fromEnvironment = %s),\n", capnpString(bd.Name), capnpString(v))
		case BindingService:
			if pc.bindingSocket == nil {
				return "", nil, fmt.Errorf("service binding %q: this supervisor serves no bindings", bd.Name)
			}
			svc := "binding" + strconv.Itoa(i)
			fmt.Fprintf(&binds, "      (name = %s, service = %s),\n", capnpString(bd.Name), capnpString(svc))
			fmt.Fprintf(&services, "    (name = %s, external = (address = %s, http = (forwardedProtoHeader = %s))),\n",
				capnpString(svc), capnpString("unix:"+pc.bindingSocket(bd.Value)), capnpString(protoHeader))
		}
	}
	tails := ""
	if pc.tail != "" {
		tails = "  tails = [(name = \"dotdo-tail\", props = (json = " + capnpString(pc.tail) + "))],\n"
		fmt.Fprintf(&services, "    (name = \"dotdo-tail\", worker = .tail),\n")
		fmt.Fprintf(&services, "    (name = \"dotdo-tail-sink\", external = (address = %s, http = ())),\n", capnpString("unix:"+pc.tailSocket))
	}
	var flags strings.Builder
	for _, f := range b.CompatibilityFlags {
		flags.WriteString(capnpString(f))
		flags.WriteString(", ")
	}
	cfg := `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "dotdo-cron", worker = .cron),
` + services.String() + `  ],
  sockets = [
    (name = "http", address = ` + capnpString("unix:"+pc.sock) + `,
      http = (forwardedProtoHeader = ` + capnpString(protoHeader) + `), service = "main"),
    (name = "cron", address = ` + capnpString("unix:"+filepath.Join(pc.dir, cronSocket)) + `, http = (), service = "dotdo-cron"),
  ],
  v8Flags = [` + capnpString("--max-heap-size="+strconv.Itoa(pc.memoryMB)) + `],
);
const worker :Workerd.Worker = (
  modules = [
` + mods.String() + `  ],
  compatibilityDate = ` + capnpString(b.CompatibilityDate) + `,
  compatibilityFlags = [` + strings.TrimSuffix(flags.String(), ", ") + `],
  bindings = [
` + binds.String() + `  ],
` + tails + `);
const tail :Workerd.Worker = (
  modules = [(name = "tail.js", esModule = ` + capnpString(tailJS) + `)],
  compatibilityDate = "2025-01-01",
  bindings = [(name = "SINK", service = "dotdo-tail-sink")],
);
const cron :Workerd.Worker = (
  modules = [(name = "cron.js", esModule = ` + capnpString(cronJS) + `)],
  compatibilityDate = "2025-01-01",
  bindings = [(name = "TARGET", service = "main")],
);
`
	path := filepath.Join(pc.dir, "config.capnp")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	return path, env, nil
}

// capnpString quotes s as a Cap'n Proto text string: UTF-8 as it is, with
// quotes, backslashes and control characters escaped (the text format has
// no \u escape).
func capnpString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
