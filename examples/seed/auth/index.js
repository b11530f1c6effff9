// auth: checks a bearer token against the AUTH_TOKEN secret, in constant
// time.
function equal(a, b) {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

export default {
  async fetch(request, env) {
    if (!env.AUTH_TOKEN) {
      return Response.json({ error: "AUTH_TOKEN is not set: dotdo secret put AUTH_TOKEN --service auth" }, { status: 503 });
    }
    const header = request.headers.get("Authorization") || "";
    const token = header.startsWith("Bearer ") ? header.slice(7) : "";
    if (!equal(token, env.AUTH_TOKEN)) {
      return Response.json({ ok: false }, { status: 401, headers: { "WWW-Authenticate": "Bearer" } });
    }
    return Response.json({ ok: true });
  },
};
