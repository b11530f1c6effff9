// Package dispatcher is the data plane's front door: it routes incoming HTTP
// traffic to the workers of one environment by subdomain, path or default,
// and forwards each request to the live version of its worker through the
// runtime's invocation endpoint.
//
// The domain (routing rules, the live-version table, the proxy) has no
// transport dependency on Connect; handler.go holds the DispatcherService
// handler (Resolve) and the middleware that mounts the proxy next to it.
//
// Wiring, as a binary does it:
//
//	d, err := dispatcher.New(cfg, liveSource) // liveSource: store.Store or remote.Store
//	go d.Run(ctx)                              // load, then refresh the live versions
//	srv := server.New("dispatcher", server.WithMiddleware(dispatcher.Middleware(d)))
//	srv.Register(dispatcherv1connect.NewDispatcherServiceHandler(dispatcher.NewHandler(d), opts...))
//	srv.ListenAndServe(ctx, "127.0.0.1:8787")
//
// Middleware makes the proxy the root of the listener: workers' hosts reach
// workers on every path, while the listener's own address (an IP, localhost)
// also serves Resolve, gRPC health and reflection.
//
// # Routing rules and precedence
//
// A request is routed by its Host (port ignored, ASCII case-insensitive, one
// trailing dot ignored) and its path as sent (percent-encoding preserved).
// With the default configuration (base domain "do", default worker
// "gateway", allow-list DefaultWorkers):
//
//  1. A malformed Host is a bad request (400), and so is a path that is not
//     absolute or holds a dot segment ("." or "..", also percent-encoded):
//     a worker would see such a path resolved, so it is refused rather than
//     routed on a form the worker never sees. (A raw backslash is sent on
//     escaped, as %5C, which workers do not read as "/".)
//  2. A host that is not a base domain or directly below one (IP addresses,
//     other domains, "a.b.do", "x.api.do") matches no rule: 404.
//  3. Subdomain: "<worker>.do", with <worker> on the allow-list, routes to
//     <worker>, whatever the path: the subdomain wins, so
//     "gateway.do/api/db/x" goes to gateway. "<label>.do" with a label not on
//     the allow-list is a 404. The label "api" is reserved for the default
//     hosts (rules 4 and 5).
//  4. Path: on the default hosts "do" and "api.do" only, a path whose first
//     two raw segments are "api" and an allowed worker ("/api/db",
//     "/api/db/", "/api/db/users") routes to that worker. The segment is
//     compared as sent: "/api/%64b/x" does not name db (the worker would see
//     "%64b" too), nor do "/api/DB", "/api/dbx", "/api/" or "/api//db".
//  5. Default: any other request to "do" or "api.do" goes to the default
//     worker.
//
// When a rule picks a worker that has no live version in the environment,
// the answer is 404 saying so. With Config.AnyWorker the allow-list is the
// set of workers that have a live version, so an undeployed worker is simply
// unknown (404).
//
// # What the worker sees
//
// Every rule forwards the request unchanged, as the original dispatch worker
// did (env.NAMESPACE.get(worker).fetch(request)): the worker sees the
// original Host (X-Forwarded-Host), scheme (X-Forwarded-Proto), full path and
// query. A path-routed request keeps its prefix: "https://api.do/api/db/users?x=1"
// reaches db as "https://api.do/api/db/users?x=1", not "/users". Route.Path
// (and the Resolve response's path) is this path.
//
// # Live versions and how fast a deploy reaches traffic
//
// The table of the environment's live versions is read from the control
// plane (Deployments, the db service's store) every Config.RefreshInterval
// (500 ms by default) by Run, in the background, and swapped in atomically:
// the request path takes no lock and makes no call. A deploy or rollback that
// the store has recorded live reaches traffic within RefreshInterval plus one
// ListDeployments round trip (bounded by RefreshTimeout), as reads start on
// a fixed ticker: about 0.5 s with the defaults and a local db. When a refresh
// fails the last table keeps serving and the failure is logged, at most once
// per LogInterval. Until the first table has loaded, requests get 503.
//
// # Errors
//
// Answers that do not come from a worker are JSON,
//
//	{"error": {"code": "...", "message": "...", "request_id": "..."}}
//
// with the request id also in the X-Request-Id header (an incoming
// well-formed X-Request-Id is kept, else one is generated; it is passed to the
// worker too). Codes: bad_request and bad_host (400), not_found and
// no_live_version (404), method_not_allowed (405), request_timeout (408:
// the request body made no progress for StreamTimeout),
// headers_too_large (431), runtime_unreachable and runtime_error (502),
// not_ready (503), runtime_timeout (504). Answers of the runtime itself (for example its 404
// "Worker not found") are passed through as the worker's would be.
//
// # Forwarding
//
// A routed request goes to the runtime's invocation endpoint,
// /invoke/{namespace}/{worker}/{version}{path}?{query}, with the invocation
// credential. Method, headers and body pass through, streamed both ways;
// hop-by-hop headers are removed (an upgrade keeps Connection: Upgrade and
// Upgrade, so WebSockets pass); X-Forwarded-For, X-Forwarded-Host (the Host
// as sent) and X-Forwarded-Proto are set (see Config.TrustForwardedHeaders).
// A client that goes away cancels the runtime's work. UpstreamTimeout bounds
// the wait for the response headers, from when the runtime has the whole
// request. Bodies stream for as long as they make progress: StreamTimeout
// bounds each read of the request body and each write of the response, in
// place of the server's read and write timeouts; an upgraded connection
// has no deadline. On HTTP/1.1 an answer that starts before the request
// body has been read to its end closes the connection after it. The
// endpoint is reached one of two
// ways, which give the runtime the same request:
//
//   - over HTTP, at Config.RuntimeURL, through a pooled HTTP/1.1 transport
//     (the dispatcher binary, a process of its own);
//   - in process, through Config.Runtime, the runtime's handler, called with
//     the client's ResponseWriter and body: no connection, copy or parse in
//     between (`dotdo dev`, which runs both in one process). This removes a
//     whole HTTP hop, the dispatcher's main cost: bench/dispatcher measures
//     both.
//
// # Metrics
//
// Recorded on Config.MeterProvider, never on the global provider (metrics.go):
// MetricRequests and MetricDuration by worker and status, MetricNotFound by
// reason, MetricUpstreamErrors by worker and kind, MetricRefreshErrors. New
// starts the error counters' series at zero.
package dispatcher
