// webhooks: accepts POST /api/webhooks/<source> signed with
// X-Signature: sha256=<hex HMAC-SHA-256 of the body under WEBHOOK_SECRET>,
// and stores the event in db.
async function hmacHex(secret, body) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export default {
  async fetch(request, env) {
    if (request.method !== "POST") {
      return Response.json({ error: "POST a signed event" }, { status: 405 });
    }
    if (!env.WEBHOOK_SECRET) {
      return Response.json({ error: "WEBHOOK_SECRET is not set: dotdo secret put WEBHOOK_SECRET --service webhooks" }, { status: 503 });
    }
    const source = new URL(request.url).pathname.replace(/^\/api\/webhooks\/?/, "") || "default";
    const body = await request.text();
    const want = "sha256=" + (await hmacHex(env.WEBHOOK_SECRET, body));
    if ((request.headers.get("X-Signature") || "") !== want) {
      return Response.json({ error: "bad signature" }, { status: 401 });
    }
    await env.DB.fetch(`http://db/api/db/webhooks-${source}`, { method: "POST", body });
    return Response.json({ accepted: true, source }, { status: 202 });
  },
};
