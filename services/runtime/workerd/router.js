// dotdo runtime router. One copy runs in every workerd process started by the
// Go supervisor (package workerd). It is the only statically configured
// worker; user workers are loaded on demand through the Worker Loader binding
// under ids "<namespace>/<script>@<version>[#s<secrets generation>]", so a new
// version needs no restart and no new config.
//
// Every request must come from the supervisor: it carries x-dotdo-key (the
// per-supervisor secret in env.KEY) and x-dotdo-op:
//   health  answer at once, without touching any user worker;
//   invoke  run the worker x-dotdo-id (code from x-dotdo-code on env.CODE)
//           on a request for x-dotdo-url, with the control headers removed;
//   check   load the worker and report whether it starts, without calling
//           any of its handlers.
// Responses the router makes itself carry x-dotdo-error (the kind) and
// x-dotdo-auth (the key) so that the supervisor can tell them from a user
// worker's response; the supervisor strips both.

const CONTROL = ["x-dotdo-key", "x-dotdo-op", "x-dotdo-id", "x-dotdo-code", "x-dotdo-url"];
const PROBE = "__dotdoStartupProbe";
const CODE_FAILURE = "dotdo: worker code unavailable";

function sameString(a, b) {
  if (typeof a !== "string" || typeof b !== "string" || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function reply(env, status, kind, body) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "x-dotdo-error": kind, "x-dotdo-auth": env.KEY },
  });
}

async function loadCode(env, path) {
  let res;
  try {
    res = await env.CODE.fetch("http://code" + path);
  } catch (e) {
    throw new Error(CODE_FAILURE + ": " + e);
  }
  if (res.status !== 200) {
    throw new Error(CODE_FAILURE + ": status " + res.status);
  }
  const code = await res.json();
  for (const m of Object.values(code.modules)) {
    if (typeof m.data === "string") m.data = fromBase64(m.data);
    if (typeof m.wasm === "string") m.wasm = fromBase64(m.wasm);
  }
  return code;
}

function message(e) {
  return String((e && e.message) || e);
}

export default {
  async fetch(req, env) {
    const h = req.headers;
    if (!sameString(h.get("x-dotdo-key"), env.KEY)) {
      return new Response("forbidden", { status: 403 });
    }
    const op = h.get("x-dotdo-op");
    if (op === "health") {
      return new Response("ok");
    }
    const id = h.get("x-dotdo-id");
    const path = h.get("x-dotdo-code");
    if (!id || !path || (op !== "invoke" && op !== "check")) {
      return reply(env, 400, "router", { error: "bad router request" });
    }
    const worker = env.LOADER.get(id, () => loadCode(env, path));

    if (op === "check") {
      // Calling a method no worker defines makes workerd load (and so start)
      // the worker without running any of its handlers.
      try {
        await worker.getEntrypoint()[PROBE]();
        return reply(env, 200, "check", { ok: true });
      } catch (e) {
        const msg = message(e);
        if (msg.includes("does not implement the method \"" + PROBE + "\"")) {
          return reply(env, 200, "check", { ok: true });
        }
        return reply(env, 200, "check", { ok: false, error: msg, code: msg.includes(CODE_FAILURE) });
      }
    }

    const headers = new Headers(h);
    for (const k of CONTROL) headers.delete(k);
    const init = { method: req.method, headers, redirect: "manual" };
    if (req.method !== "GET" && req.method !== "HEAD") init.body = req.body;
    let wreq;
    try {
      wreq = new Request(h.get("x-dotdo-url"), init);
    } catch (e) {
      return reply(env, 400, "router", { error: "bad request url" });
    }
    try {
      return await worker.getEntrypoint().fetch(wreq);
    } catch (e) {
      const msg = message(e);
      if (msg.includes(CODE_FAILURE)) {
        console.error(`dotdo: ${id}: ${msg}`);
        return reply(env, 503, "code", { error: "Worker code unavailable" });
      }
      if (msg.startsWith("Failed to start Worker")) {
        console.error(`dotdo: ${id} failed to start: ${msg}`);
        return reply(env, 500, "startup", { error: "Worker failed to start" });
      }
      console.error(`dotdo: ${id} threw: ${(e && e.stack) || msg}`);
      return reply(env, 500, "exception", { error: "Worker threw exception" });
    }
  },
};
