// Package dispatcher holds the load test and benchmarks of the dispatcher
// (services/dispatcher), on loopback only.
//
// TestLoad runs a hello worker in the real runtime (workerd) and drives it
// with 32 concurrent clients, for about 10 s on each of three sides:
// straight to the runtime's invocation endpoint; through the dispatcher
// with the runtime in its process (as `dotdo dev` runs them); and through
// the dispatcher forwarding to the runtime over HTTP (as the dispatcher
// binary does). The sides alternate in 15 short rounds, in a different
// order each round, so that all see the same background load; it reports
// throughput, p50 and p99 of each, and, as medians over the rounds, each
// side's throughput ratio to the direct side and the p50 it adds; then the
// same with one client.
// It runs only when asked for by name, and stops by itself:
//
//	go test ./bench/dispatcher -run TestLoad -v
//
// DOTDO_LOAD_DURATION (default 10s per side), DOTDO_LOAD_CLIENTS (default
// 32) and DOTDO_LOAD_ROUNDS (default 15) change the duration, concurrency
// and number of rounds.
//
// The benchmarks measure the dispatcher alone: routing, and forwarding to a
// trivial upstream, in process and over HTTP:
//
//	go test ./bench/dispatcher -run '^$' -bench . -benchmem
package dispatcher
