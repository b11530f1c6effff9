// Package workerd runs user workers in workerd processes and keeps them
// within their limits.
//
// A Supervisor runs one workerd process per worker version that has
// traffic. Each process serves its version statically (no Worker Loader,
// no --experimental): the supervisor writes the worker's modules and a
// configuration into the process's private directory (0700, below the
// supervisor's own), binds the process's Unix socket itself and hands it
// over (--socket-fd), and waits for workerd to report listening on its
// control fd:
//
//	workerd serve --socket-fd http=3 --control-fd=4 config.capnp
//
// Secrets reach the process in its environment, never on disk. Service
// bindings are external services on Unix sockets that the supervisor serves
// (one per target script): a call through one runs on the live version of
// the target, in the target's own process.
//
// Life cycle:
//
//   - Start on demand: the first request for a version starts its process
//     (the cold start); concurrent requests wait for the same start.
//   - Blue/green: once the process of a newer version (or of newer
//     secrets) of a script serves, the older one gets SIGTERM, which makes
//     workerd finish its requests and exit, and SIGKILL after DrainTimeout.
//   - Scale to zero: a process that served nothing for IdleTimeout stops.
//   - At MaxProcesses, the least recently used idle process makes room.
//
// Limits: workerd enforces none (a while(true){} hangs its process and
// ignores SIGTERM), so the supervisor does, per process and so per worker.
// While a process has requests in flight, a watchdog reads the CPU time of
// its main thread (which runs all JavaScript) every CPUInterval; when the
// CPU used since the process was last idle or last finished a request
// passes the worker's limit (Cloudflare's cpu_ms, 30 s by default) the
// process is killed and its requests in flight answer exceeded_cpu. The
// JavaScript heap is bounded by V8 (--max-heap-size, 128 MB by default:
// workerd aborts at the limit), and the process's anonymous memory (which
// ArrayBuffers escape the heap limit into) is read every MemoryInterval
// and bounded by the heap limit plus MemoryHeadroom; either way the
// requests answer exceeded_memory. The next request starts a new process.
// One worker's process never holds another's requests, so a worker that
// spins or allocates without bound costs no other worker anything.
package workerd
