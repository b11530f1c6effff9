// db: a tiny key/value API behind /api/db/*. It keeps values in memory per
// workerd process, which is enough to show routing by path; a real worker
// would use a binding to a database.
const values = new Map();

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const key = url.pathname.replace(/^\/api\/db\/?/, "");
    if (request.method === "PUT" && key) {
      values.set(key, await request.text());
      return Response.json({ worker: "db", key, stored: true });
    }
    if (request.method === "GET" && key) {
      return values.has(key)
        ? Response.json({ worker: "db", key, value: values.get(key) })
        : Response.json({ worker: "db", key, error: "not found" }, { status: 404 });
    }
    return Response.json({ worker: "db", keys: [...values.keys()] });
  },
};
