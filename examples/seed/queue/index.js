// queue: a plain HTTP queue per name (in memory): POST /api/queue/<name>
// enqueues the body, GET dequeues the oldest message (204 when empty).
const queues = new Map();

export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.replace(/^\/api\/queue\/?/, "") || "default";
    const q = queues.get(name) || [];
    queues.set(name, q);
    if (request.method === "POST") {
      q.push(await request.text());
      return Response.json({ queue: name, length: q.length }, { status: 202 });
    }
    if (q.length === 0) return new Response(null, { status: 204 });
    return new Response(q.shift(), { headers: { "X-Queue-Remaining": String(q.length) } });
  },
};
