// Package dispatcher holds the load test and benchmarks of the dispatcher
// (services/dispatcher), on loopback only.
//
// TestLoad runs a hello worker in the real runtime (workerd) and drives it
// with 32 concurrent clients for about 5 s straight to the runtime's
// invocation endpoint and 5 s through the dispatcher (served as the
// dispatcher binary serves it), the two sides alternating in rounds so that
// both see the same background load, and reports throughput, p50 and p99 of
// both and their ratio. It runs only when asked for by name:
//
//	go test ./bench/dispatcher -run TestLoad -v
//
// DOTDO_LOAD_DURATION (default 5s per side), DOTDO_LOAD_CLIENTS (default
// 32) and DOTDO_LOAD_ROUNDS (default 5) change the duration, concurrency and
// number of rounds.
//
// The benchmarks measure the dispatcher alone: routing, and proxying to a
// trivial in-process upstream:
//
//	go test ./bench/dispatcher -run '^$' -bench . -benchmem
package dispatcher
