// The dotdo dispatch Worker: routes each request by its Host and path, with
// the routing table below, to a user Worker of the environment's dispatch
// namespace (the DISPATCHER binding), and on each cron trigger runs the
// scheduled() handlers of the workers whose trigger it is (CRONS). Its
// rules, status codes and JSON error bodies are those of the platform's Go
// dispatcher (package internal/routing); both run the same routing test
// vectors.
//
// @generated-data-begin
const ENVIRONMENT = "example";
const TABLE_VERSION = 0;
const TABLE = {
  "base_domains": ["do"],
  "workers": ["gateway", "db"],
  "default_worker": "gateway",
  "default_hosts": ["do", "api.do"],
  "subdomains": true,
  "path_routes": [{ "prefix": "/api/db", "worker": "db", "hosts": ["do", "api.do"] }]
};
const CRONS = {
  "0 * * * *": ["db"]
};
// @generated-data-end

// BINDING is the dispatch namespace binding of wrangler.json.
const BINDING = "DISPATCHER";

// WORKER_NAME is the rule of a worker name (internal/names.ValidService;
// parseHost bounds a label to 63 characters): with subdomains_any_worker a
// subdomain that is one names that worker, and the namespace says whether
// it exists ("Worker not found": 404 no_live_version).
const WORKER_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

// SCHEDULED_HEADER marks the request that runs a user worker's scheduled()
// handler: the platform's wrapper module of the worker (on Cloudflare,
// __dotdo_service_bindings.js) answers it by calling the handler, and
// confirms with SCHEDULED_HEADER: ran. Cloudflare cannot call a dispatch
// namespace script's scheduled() directly: Fetcher.scheduled() needs
// workerd's experimental service_binding_extra_handlers flag, which
// Cloudflare refuses in uploads. fetch() removes the header from every
// request it routes, so no outside request runs a handler. Residual risk:
// code in the namespace that reaches a sibling through the namespace
// binding itself (not through the env the wrapper gives it, which removes
// the header too, e.g. via the env of "cloudflare:workers") can still send
// it and run that sibling's scheduled() at will.
const SCHEDULED_HEADER = "x-dotdo-scheduled";

// Base domains, longest first: a host below two of them is read against
// the more specific one.
const BASES = [...TABLE.base_domains].sort((a, b) => b.length - a.length);

export default {
  async fetch(request, env) {
    const id = requestId(request.headers.get("x-request-id"));
    if (request.method === "CONNECT") {
      return error(405, "method_not_allowed", "CONNECT is not supported", id);
    }
    const url = new URL(request.url);
    const m = route(request.headers.get("host") ?? url.host, url.pathname);
    if (m.code) {
      return error(m.status, m.code, m.message, id);
    }
    const headers = new Headers(request.headers);
    headers.set("x-request-id", id);
    headers.delete(SCHEDULED_HEADER);
    let res;
    try {
      // Both get and fetch may report a missing Worker.
      res = await env[BINDING].get(m.worker).fetch(new Request(request, { headers }));
    } catch (e) {
      if (String(e?.message ?? e).startsWith("Worker not found")) {
        return error(404, "no_live_version", `worker "${m.worker}" has no live version in ${ENVIRONMENT}`, id);
      }
      return error(502, "runtime_error", "the runtime failed while handling the request", id);
    }
    if (res.webSocket) {
      const h = new Headers(res.headers);
      h.set("x-request-id", id);
      return new Response(null, { status: 101, webSocket: res.webSocket, headers: h });
    }
    const out = new Response(res.body, res);
    out.headers.set("x-request-id", id);
    return out;
  },

  // scheduled runs, for the cron trigger that fired, the scheduled()
  // handler of each of its workers with the same cron and scheduledTime,
  // each in its own waitUntil: one that fails is logged and does not stop
  // the others.
  scheduled(controller, env, ctx) {
    for (const worker of CRONS[controller.cron] ?? []) {
      ctx.waitUntil(runScheduled(env, worker, controller));
    }
  },
};

async function runScheduled(env, worker, controller) {
  const where = `cron "${controller.cron}": worker "${worker}" of ${ENVIRONMENT}`;
  try {
    const res = await env[BINDING].get(worker).fetch(`https://${worker}.internal/`, {
      method: "POST",
      headers: { [SCHEDULED_HEADER]: `${controller.scheduledTime} ${controller.cron}` },
    });
    const body = await res.text();
    if (res.headers.get(SCHEDULED_HEADER) !== "ran") {
      console.error(`${where}: scheduled() did not run (answer ${res.status}): the live version has no cron triggers; deploy it again, then dotdo dispatcher deploy`);
    } else if (!res.ok) {
      console.error(`${where}: scheduled() failed: ${body.slice(0, 2000)}`);
    }
  } catch (e) {
    console.error(`${where}: ${e?.message ?? e}`);
  }
}

// route applies the table to a request for host (a Host header value) and
// path (as sent), in the order of the Go router: a path route of the host,
// then the default worker of a default host, then the subdomain (a worker
// of the allow-list, or with subdomains_any_worker any worker name).
function route(hostHeader, path) {
  if (path === "") path = "/";
  const h = parseHost(hostHeader);
  if (h === null) return miss(400, "bad_host", "the Host header is malformed");
  const why = checkPath(path);
  if (why) return miss(400, "bad_request", why);
  if (h.ip) {
    return miss(404, "not_found", `no route for an IP address host: the routed hosts are the base domains (${TABLE.base_domains.join(", ")}) and the names directly below them`);
  }
  const label = belowBase(h.name);
  if (label === null) {
    return miss(404, "not_found", `no route for host "${h.name}": it is not one of the base domains (${TABLE.base_domains.join(", ")}) or directly below one`);
  }
  for (const r of TABLE.path_routes) {
    if (!r.hosts.includes(h.name)) continue;
    if (path === r.prefix || (path.startsWith(r.prefix) && path[r.prefix.length] === "/")) {
      return { rule: "path", worker: r.worker };
    }
  }
  if (TABLE.default_hosts.includes(h.name)) return { rule: "default", worker: TABLE.default_worker };
  if (label.includes(".")) {
    return miss(404, "not_found", `no route for host "${h.name}": only one label below a base domain names a worker`);
  }
  if (label === "" || !TABLE.subdomains) {
    return miss(404, "not_found", `no route for host "${h.name}": no rule of the routing table matches it`);
  }
  if (!TABLE.workers.includes(label) && !(TABLE.subdomains_any_worker && WORKER_NAME.test(label))) {
    return miss(404, "not_found", `no worker "${label}" is served here`);
  }
  return { rule: "subdomain", worker: label };
}

function miss(status, code, message) {
  return { status, code, message };
}

// belowBase returns the part of name before the base domain it is equal to
// or below ("" for a base domain itself), or null.
function belowBase(name) {
  for (const b of BASES) {
    if (name === b) return "";
    const n = name.length - b.length - 1;
    if (n > 0 && name[n] === "." && name.slice(n + 1) === b) return name.slice(0, n);
  }
  return null;
}

// parseHost parses a Host header: a DNS name (ASCII), an IPv4 address or a
// bracketed IPv6 address, with an optional port. It returns {name, ip}, the
// name in lower case without a trailing dot, or null when malformed.
function parseHost(s) {
  if (!s) return null;
  if (s[0] === "[") {
    const end = s.indexOf("]");
    if (end < 0 || !validPort(s.slice(end + 1))) return null;
    return validIPv6(s.slice(1, end)) ? { name: s.slice(1, end), ip: true } : null;
  }
  let name = s;
  const colon = s.indexOf(":");
  if (colon >= 0) {
    if (!validPort(s.slice(colon))) return null;
    name = s.slice(0, colon);
  }
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "" || name.length > 253) return null;
  let label = 0;
  for (const c of name) {
    if (c === ".") {
      if (label === 0) return null;
      label = 0;
      continue;
    }
    if (!/^[a-zA-Z0-9_-]$/.test(c)) return null;
    if (++label > 63) return null;
  }
  if (label === 0) return null;
  name = name.toLowerCase();
  const last = name.slice(name.lastIndexOf(".") + 1);
  if (last[0] >= "0" && last[0] <= "9") {
    if (validIPv4(name)) return { name, ip: true };
    if (/^[0-9]+$/.test(last)) return null;
  }
  return { name, ip: false };
}

function validPort(p) {
  if (p === "") return true;
  return /^:[0-9]{0,5}$/.test(p) && (p.length === 1 || Number(p.slice(1)) <= 65535);
}

function validIPv4(s) {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function validIPv6(s) {
  const zone = s.indexOf("%");
  if (zone === s.length - 1) return false;
  const addr = zone < 0 ? s : s.slice(0, zone);
  if (!addr.includes(":")) return false;
  try {
    new URL(`http://[${addr}]/`);
    return true;
  } catch {
    return false;
  }
}

// checkPath returns why path cannot be routed, or "": a worker's URL parser
// would resolve a dot segment or turn "\" into "/", so the worker would see
// another path than the one routed on.
function checkPath(path) {
  if (path === "" || path[0] !== "/") return "the request target must be an absolute path";
  if (path.includes("\\")) return "the path must not hold a backslash";
  for (const seg of path.slice(1).split("/")) {
    if (seg.length > 6) continue;
    const s = seg.toLowerCase().replaceAll("%2e", ".");
    if (s === "." || s === "..") return 'the path must not hold a dot segment ("." or "..")';
  }
  return "";
}

// requestId keeps a well-formed incoming request id (1 to 128 of A-Z a-z
// 0-9 - _ . : + / = @) or makes one.
function requestId(incoming) {
  if (incoming && incoming.length <= 128 && /^[A-Za-z0-9\-_.:+/=@]+$/.test(incoming)) return incoming;
  return crypto.randomUUID();
}

function error(status, code, message, id) {
  return new Response(JSON.stringify({ error: { code, message, request_id: id } }) + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "x-request-id": id,
    },
  });
}
