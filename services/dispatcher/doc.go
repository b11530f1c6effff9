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
//	d, err := dispatcher.New(cfg, src) // src: remote.Store, the db service's client
//	go d.Run(ctx)                       // watch the live versions and routing table
//	srv := server.New("dispatcher", server.WithMiddleware(dispatcher.Middleware(d)))
//	srv.Register(dispatcherv1connect.NewDispatcherServiceHandler(dispatcher.NewHandler(d), opts...))
//	srv.ListenAndServe(ctx, "127.0.0.1:8787")
//
// Middleware makes the proxy the root of the listener: workers' hosts reach
// workers on every path, while the listener's own address (an IP, localhost)
// also serves Resolve, gRPC health and reflection.
//
// # Routing
//
// Requests are routed by the environment's routing table, which is data:
// stored versioned in the db service, set with `dotdo routes set`, and
// pushed to the dispatcher as it changes. Its model, validation, rules and
// precedence, and the codes, statuses and messages of the answers that do
// not come from a worker, are package internal/routing's (Router.Route);
// the dispatch Worker generated for Cloudflare routes with the same table
// and rules, and both pass the test vectors of routing/routingtest
// (vectors_test.go here runs them on this package). Until the environment
// has a table stored, the dispatcher routes with routing.Seed(), the rules
// of the original deployment: "<worker>.do" for the allow-listed workers,
// "/api/<worker>" on "do" and "api.do", and gateway for "do" and "api.do".
//
// When a rule picks a worker that has no live version in the environment,
// the answer is 404 no_live_version.
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
// # Live versions, tables, and how fast a change reaches traffic
//
// Run watches the environment's routing state through its Source (the db
// service's WatchEnvironment stream, through remote.Store): a snapshot of
// every live deployment and the current routing table, then each change as
// the store commits it, which Run applies at once by swapping an immutable
// state in atomically: the request path takes no lock and makes no call. A
// deploy, rollback or `routes set` so reaches traffic a few milliseconds
// after the db service records it (bench/dispatcher measures deploy to
// traffic). When the watch fails (the db service restarts, the network
// drops, nothing is heard for three heartbeats), the last state keeps
// serving, the failure is logged at most once per LogInterval, and Run
// watches again after a backoff (50 ms doubling to WatchBackoff); the new
// watch begins with a snapshot, so nothing missed meanwhile is lost. Until
// the first snapshot, requests get 503 not_ready.
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
// reason, MetricUpstreamErrors by worker and kind, MetricRefreshErrors (failed
// watches of the routing state). The error counters' series start at zero,
// for the workers of every table the dispatcher routes with.
package dispatcher
