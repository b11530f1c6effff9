// db: an in-memory key/value store (one per worker process: data lives
// until the process stops). Keys are the path after /api/db/.
const data = new Map();

function keyOf(url) {
  return decodeURIComponent(url.pathname.replace(/^\/api\/db/, "").replace(/^\/+/, ""));
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const key = keyOf(url);
    if (key === "") {
      return Response.json({ worker: "db", keys: [...data.keys()].sort() });
    }
    switch (request.method) {
      case "GET":
      case "HEAD":
        if (!data.has(key)) return Response.json({ error: "not found", key }, { status: 404 });
        return Response.json({ key, value: data.get(key) });
      case "PUT":
        data.set(key, await request.text());
        return Response.json({ key, value: data.get(key) });
      case "POST": {
        const list = Array.isArray(data.get(key)) ? data.get(key) : [];
        list.push(await request.text());
        data.set(key, list);
        return Response.json({ key, length: list.length });
      }
      case "DELETE":
        return Response.json({ key, deleted: data.delete(key) });
      default:
        return Response.json({ error: "method not allowed" }, { status: 405 });
    }
  },
};
