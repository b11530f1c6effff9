// schedule: its cron trigger records a tick in db; GET shows the ticks.
export default {
  async scheduled(controller, env) {
    const tick = JSON.stringify({ cron: controller.cron, at: new Date(controller.scheduledTime).toISOString() });
    const res = await env.DB.fetch("http://db/api/db/schedule-ticks", { method: "POST", body: tick });
    if (!res.ok) throw new Error(`db answered ${res.status}`);
  },
  async fetch(request, env) {
    const res = await env.DB.fetch("http://db/api/db/schedule-ticks");
    const ticks = res.ok ? (await res.json()).value : [];
    return Response.json({ worker: "schedule", ticks: ticks.map((t) => JSON.parse(t)) });
  },
};
