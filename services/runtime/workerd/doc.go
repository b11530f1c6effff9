// Package workerd runs user workers in workerd processes and keeps those
// processes healthy.
//
// A Supervisor keeps one workerd process per pool: one pool per dispatch
// namespace, started lazily on the first request, plus one pool for startup
// checks of uploads so that a script that hangs or crashes at start-up never
// touches a serving process. Each process runs a single static router worker
// (router.js) that loads user workers on demand through workerd's Worker
// Loader binding (workerd runs with --experimental). The loader asks for a
// worker's code once per id and process; the router fetches it from the
// supervisor's code server, a Go HTTP server on a Unix socket in a private
// (0700) directory, declared in the workerd config as an external service.
// Each process is started as
//
//	workerd serve --experimental --control-fd=3 <config>
//
// in its own process group, listens on a Unix socket in the same directory
// and is ready once it writes {"event":"listen","socket":"http",...} to fd 3.
//
// The supervisor health-checks every process (a request the router answers
// without touching user code) each HealthInterval. A process that does not
// answer within HealthTimeout, typically because a worker spins in
// while(true){} (workerd enforces no CPU limit and then ignores SIGTERM), is
// killed with SIGKILL to its process group; the next request starts a new
// one. A process whose loaded versions or RSS pass their bounds is replaced
// blue/green: the new process is started and made current, the old one
// drains its in-flight requests (up to DrainTimeout) and is then killed.
package workerd
