// describe reports what a worker knows about a request: its own name, the
// greeting configured for it (a plain_text binding, when there is one), and
// the method and path it saw.
export function describe(worker, request, env) {
  const url = new URL(request.url);
  return {
    worker,
    greeting: env.GREETING ?? `hello from ${worker}`,
    method: request.method,
    path: url.pathname,
    query: url.search,
  };
}
