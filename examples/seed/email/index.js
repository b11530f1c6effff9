// email: POST /api/email/send {to, subject, text} puts the message in db's
// outbox, from EMAIL_FROM. A sender with EMAIL_API_KEY would deliver the
// outbox to a provider; this example stops at the outbox.
export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname.replace(/^\/api\/email/, "");
    if (request.method === "GET") {
      const res = await env.DB.fetch("http://db/api/db/email-outbox");
      return Response.json({ worker: "email", outbox: res.ok ? (await res.json()).value.map((m) => JSON.parse(m)) : [] });
    }
    if (request.method !== "POST" || path !== "/send") {
      return Response.json({ error: "POST /api/email/send {to, subject, text}" }, { status: 404 });
    }
    let msg;
    try {
      msg = await request.json();
    } catch {
      return Response.json({ error: "the body is not JSON" }, { status: 400 });
    }
    if (typeof msg.to !== "string" || !msg.to.includes("@")) {
      return Response.json({ error: "to: want an email address" }, { status: 400 });
    }
    const queued = { from: env.EMAIL_FROM, to: msg.to, subject: String(msg.subject || ""), text: String(msg.text || "") };
    await env.DB.fetch("http://db/api/db/email-outbox", { method: "POST", body: JSON.stringify(queued) });
    return Response.json({ queued: true, provider: env.EMAIL_API_KEY ? "configured" : "none" }, { status: 202 });
  },
};
