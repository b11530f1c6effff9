// Package dataplane measures how the local data plane's costs grow with
// the number of workers (issue 18, items 4 and 5), loopback only.
//
// TestScale has two parts:
//
//   - routing: the dispatcher's routing state with N live workers (a db
//     service over SQLite pushes it through WatchEnvironment): the heap it
//     takes, the cost of routing one request (ns and allocations), and how
//     long a change takes to reach traffic, p50/p99: a deploy of one worker
//     (the store's commit until Route returns the new version) and a
//     routing-table change (the commit until Table returns it). Then the
//     same N with subdomains_any_worker: a table that lists one worker yet
//     serves every live one by subdomain, routed over the hosts of all N
//     workers (the table's JSON size, the state's heap, Route ns and
//     allocations).
//   - coldstart: W deployed hello workers behind one workerd supervisor
//     with a short idle timeout (scale to zero), a closed loop of clients
//     spreading requests over them uniformly and by Zipf (s = 1.1): latency
//     p50/p99 of all, of cold (no request to the worker within the idle
//     timeout) and of warm requests, the processes alive and the memory of
//     the workerd processes (sum of RSS, of PSS, of anonymous memory) and
//     of this process. Then a burst sends the first request to B cold
//     workers all at once, with the supervisor's start queue
//     (workerd.DefaultMaxStarting) and without it (B starts at once), side
//     by side. Last, A workers are kept active at once to measure the
//     memory, threads and descriptors each active worker costs, and the
//     limits of this machine (memory available, descriptors, pids,
//     threads, MaxProcesses) are divided by them: how many active workers
//     each limit allows, extrapolated, not measured.
//
// By default the sizes are small enough for `go test ./...` (CI): it checks
// that every request is answered and every change arrives, and asserts no
// speed. The full sizes (10, 1,000 and 10,000 live workers; 1,000 deployed
// workers; a burst of 200; 300 active) run on demand:
//
//	go test ./bench/scale/dataplane -run TestScale -v
//	SCALE=full go test ./bench/scale/dataplane -run TestScale -v -timeout 60m
//	SCALE=full go test ./bench/scale/dataplane -run TestScale/routing -v   # the routing part alone
//
// SCALE=zipf runs the Zipf spread alone over 200 workers (a quick look);
// SCALE_LOG=1 writes the supervisor's and dispatcher's warnings to stderr.
// The cold-start figures include the wait in the supervisor's start queue
// (MaxStarting); the serial row, one client starting one new worker at a
// time, is the cold start without it. The machine is shared: each table
// gives the load average it began with.
//
// The routing lookup alone, with allocations, is also a Go benchmark:
//
//	go test ./bench/scale/dataplane -run '^$' -bench . -benchmem
//
// The tests need workerd from node_modules (npm ci) for the cold-start
// part, which is skipped without it. Every process they start belongs to a
// supervisor of their own (its own temporary directory) and is killed when
// they end.
package dataplane
