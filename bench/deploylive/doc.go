// Package deploylive measures how soon a deploy or a rollback, and a
// routing table change, reaches traffic through the front door after the
// Deploy API answers: the time from the API's answer until the dispatcher
// (port 8787's role) serves the new version, polled back to back.
//
// It builds the dotdo binary and runs a real `dotdo dev` on free loopback
// ports (db on SQLite, or on PostgreSQL in a schema of its own when
// DOTDO_TEST_DATABASE_URL's server answers), deploys a worker N times and
// rolls it back N times through the Deploy API, and reports p50 and p99 of
// each, then the same for `routes set`. It runs only when asked for by
// name:
//
//	go test ./bench/deploylive -run TestDeployToLive -v
//
// DOTDO_DEPLOYLIVE_N (default 40) sets N. Besides the time until the front
// door serves the new version ("deploy", "rollback", "routes set"), it
// reports the time until the dispatcher's state holds it ("pushed", from
// its Resolve RPC, for the deploys and rollbacks): the difference is the
// runtime's (a first request to a new version loads it in workerd).
package deploylive
