// mcp: a Model Context Protocol server over JSON-RPC 2.0 (POST /api/mcp):
// initialize, tools/list and tools/call of db_get, which reads a key of db.
const TOOLS = [{
  name: "db_get",
  description: "Read a key of the db worker",
  inputSchema: { type: "object", properties: { key: { type: "string" } }, required: ["key"] },
}];

async function call(msg, env) {
  switch (msg.method) {
    case "initialize":
      return { protocolVersion: "2025-03-26", serverInfo: { name: "dotdo-mcp", version: "1.0.0" }, capabilities: { tools: {} } };
    case "tools/list":
      return { tools: TOOLS };
    case "tools/call": {
      if (msg.params?.name !== "db_get") throw { code: -32602, message: "unknown tool" };
      const key = encodeURIComponent(String(msg.params?.arguments?.key ?? ""));
      const res = await env.DB.fetch(`http://db/api/db/${key}`);
      return { content: [{ type: "text", text: await res.text() }], isError: !res.ok };
    }
    default:
      throw { code: -32601, message: "method not found" };
  }
}

export default {
  async fetch(request, env) {
    if (request.method !== "POST") {
      return Response.json({ worker: "mcp", tools: TOOLS.map((t) => t.name) });
    }
    let msg;
    try {
      msg = await request.json();
    } catch {
      return Response.json({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } });
    }
    try {
      return Response.json({ jsonrpc: "2.0", id: msg.id ?? null, result: await call(msg, env) });
    } catch (e) {
      return Response.json({ jsonrpc: "2.0", id: msg.id ?? null, error: { code: e.code ?? -32603, message: e.message ?? String(e) } });
    }
  },
};
