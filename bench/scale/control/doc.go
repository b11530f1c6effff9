// Package control measures how the control plane's costs grow with the
// work it holds (issue 18, items 1 to 3), on loopback only, and stops by
// itself:
//
//   - Deploy latency vs namespace size: p50/p99 of a deploy of a 173 KiB
//     worker through the real Deploy API over Connect (auth, store, lease,
//     audit, upload to the local runtime, which start-checks it in workerd)
//     when the environment's namespace already holds N workers, on SQLite
//     and on PostgreSQL. The N workers are seeded in bulk: through the
//     store's API (a live deployment each) and straight into the runtime's
//     script store on disk before the runtime starts. One stack per size
//     is up at once and the deploys go round the sizes, so a load that
//     changes during the run falls on every size alike.
//   - History queries vs table size (PostgreSQL): p50/p99 of every
//     ListDeployments filter shape, of a deep page by token and of
//     GetDeployment with N deployment rows loaded with COPY and ANALYZEd.
//   - Audit log growth (PostgreSQL and SQLite): append rate at N events
//     against an empty log, the time of a full VerifyAudit at N events
//     with the process's peak RSS and Go heap while it runs, and the time
//     of a verification resumed from a checkpoint (store.AuditCheckpointer).
//
// By default TestScale runs small sizes (10 and 100 workers, 10k rows and
// events) in well under a minute and asserts only correctness: it is part
// of `go test ./...`. The full sizes run on demand:
//
//	go test ./bench/scale/control -run TestScale -v
//	SCALE=full go test ./bench/scale/control -run TestScale -v -timeout 60m
//	SCALE=full go test ./bench/scale/control -run 'TestScale/history' -v -timeout 30m
//	SCALE=full SCALE_WORKERS=10,10000 go test ./bench/scale/control -run 'TestScale/deploy/sqlite' -v -timeout 30m
//
// SCALE_WORKERS, SCALE_ROWS and SCALE_EVENTS (comma-separated) replace the
// namespace sizes, table sizes and audit log sizes of the run.
// SCALE_WITHOUT_0005=1 drops the indexes migration 0005 added after
// seeding, to show the history curve they fix. PostgreSQL is named by
// $DOTDO_TEST_DATABASE_URL (see pgtest) and its parts are skipped with a
// message when it is unreachable; the deploy part is skipped without a
// workerd binary (npm ci installs one). Figures are logged as tables,
// never asserted: this machine is shared and noisy, so compare the ratios
// within one run.
package control
