// Package routing is the platform's one model of a routing table: what it
// holds (Table), what makes it valid (Table.Validate), how it routes a
// request (Router.Route), how the answers that do not come from a worker
// look (the codes, statuses and messages of Miss), and the dispatch Worker
// generated from it for Cloudflare (GenerateWorker).
//
// Every party that reads a table uses this package: the deploy service
// validates a table before it stores it, the local dispatcher routes with
// it, the dotdo CLI prints, diffs and builds it, and the generated Worker
// carries it as data for a small JavaScript router that mirrors Route. One
// file of test vectors (package routingtest) runs against both routers, so
// they cannot drift.
//
// # The table
//
// A table belongs to one environment:
//
//	{
//	  "base_domains": ["do"],
//	  "workers": ["gateway", "db", "mcp"],
//	  "default_worker": "gateway",
//	  "default_hosts": ["do", "api.do"],
//	  "subdomains": true,
//	  "path_routes": [
//	    {"prefix": "/api/db", "worker": "db", "hosts": ["do", "api.do"]}
//	  ],
//	  "subdomains_any_worker": false
//	}
//
// base_domains are the domains whose hosts are routed: a base domain and
// the names one label below it. workers is the allow-list: every worker a
// rule may pick. default_hosts are served by default_worker. A path route
// sends the requests for one of its hosts whose path is its prefix or
// starts with its prefix and "/" (whole segments, compared as sent: no
// decoding) to its worker. With subdomains on, "<worker>.<base domain>"
// serves that worker.
//
// # Any worker by subdomain
//
// The allow-list is bounded (MaxWorkers), because the table is stored with
// every version, sent to every dispatcher with every change and embedded
// in the dispatch Worker. An environment with more workers than that (a
// dispatch namespace holds any number) sets subdomains_any_worker (with
// subdomains): "<label>.<base domain>" then serves worker <label> for any
// label that is a worker name (names.ValidService), listed or not, and the
// live set decides whether it exists: the local dispatcher answers 404
// no_live_version for a name with nothing live, and the dispatch Worker
// the same when its namespace reports the Worker missing. The table stays
// the same few hundred bytes at any number of workers. Path routes and
// default_worker still pick workers of the allow-list, which keeps its
// bound. It is a field rather than a "*" entry of workers so that workers
// stays a list of names with one meaning for every reader. To switch an
// environment: `dotdo routes get --output json`, set
// "subdomains_any_worker": true, `dotdo routes set --file`.
//
// # Precedence
//
// A request is routed by its Host (port ignored, ASCII case-insensitive,
// one trailing dot ignored) and its path as sent:
//
//  1. A malformed Host is a bad request (400 bad_host), and so is a path
//     that is not absolute or holds a backslash or a dot segment ("." or
//     "..", also percent-encoded): a worker would see such a path resolved,
//     so it is refused rather than routed on a form the worker never sees
//     (400 bad_request).
//  2. A host that is not a base domain or directly below one matches no
//     rule (404 not_found).
//  3. A path route of the host whose prefix matches the path.
//  4. The default worker, for a default host.
//  5. With subdomains on, "<label>.<base domain>" with label on the
//     allow-list serves that worker, and with subdomains_any_worker so does
//     any label that is a worker name; any other label is 404 not_found.
//
// Path routes of one host never overlap (Validate refuses a prefix that is
// another's or lies below it on a common host), so at most one matches.
// When the rule's worker has no live version the answer is 404
// no_live_version; the router itself knows nothing of versions.
//
// The package imports no service: it is shared plumbing.
package routing
