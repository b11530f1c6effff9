// gateway: the platform's front door. It answers on the default routes
// (api.do, do, gateway.do) and says which version of itself served the
// request, so a deploy or a rollback is easy to see from curl.
import { describe } from "./lib/describe.js";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") {
      return Response.json({ ok: true });
    }
    return Response.json(describe("gateway", request, env));
  },
};
