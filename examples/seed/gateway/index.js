// gateway: the front door. /api/<worker>/... goes to that worker through
// its service binding (env.DB.fetch(request) and so on); anything else is
// answered here.
const BINDINGS = {
  db: "DB", auth: "AUTH", schedule: "SCHEDULE", webhooks: "WEBHOOKS",
  email: "EMAIL", mcp: "MCP", queue: "QUEUE",
};

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const m = url.pathname.match(/^\/api\/([a-z]+)(\/.*)?$/);
    if (m && BINDINGS[m[1]]) {
      const target = env[BINDINGS[m[1]]];
      if (!target) {
        return Response.json({ error: `no binding for ${m[1]}` }, { status: 502 });
      }
      return target.fetch(request);
    }
    return Response.json({
      worker: "gateway",
      greeting: env.GREETING,
      method: request.method,
      path: url.pathname,
      routes: Object.keys(BINDINGS).map((w) => `/api/${w}/`),
    });
  },
};
