package routing

import (
	"net/http"
	"slices"
	"strings"

	"github.com/dot-do/platform/internal/names"
)

// Rule is the routing rule that picked a worker.
type Rule int

// The routing rules, in the terms of the package documentation.
const (
	// RuleNone means no rule picked a worker.
	RuleNone Rule = iota
	// RuleSubdomain routes "<worker>.<base domain>" to the worker.
	RuleSubdomain
	// RulePath routes a path under a path route's prefix to its worker.
	RulePath
	// RuleDefault routes a default host to the default worker.
	RuleDefault
)

// String returns the rule's name: "none", "subdomain", "path" or "default".
func (r Rule) String() string {
	switch r {
	case RuleSubdomain:
		return "subdomain"
	case RulePath:
		return "path"
	case RuleDefault:
		return "default"
	}
	return "none"
}

// Miss says why a request is not forwarded to a worker.
type Miss int

// The reasons for not forwarding. Status and Code give each one's answer.
const (
	// MissNone means the request is forwarded.
	MissNone Miss = iota
	// MissBadHost: the Host is malformed.
	MissBadHost
	// MissBadPath: the path is not absolute, or holds a backslash or a dot
	// segment.
	MissBadPath
	// MissUnknownHost: no rule routes the host.
	MissUnknownHost
	// MissUnknownWorker: the subdomain names no worker of the allow-list
	// (with SubdomainsAnyWorker: it is not a worker name).
	MissUnknownWorker
	// MissNotLive: the worker has no live version in the environment (the
	// caller of Route decides this; see NotLive).
	MissNotLive
	// MissNotReady: the live versions have not been loaded yet (the local
	// dispatcher's answer before its first snapshot).
	MissNotReady
)

// The codes of the JSON error answers, {"error": {"code", "message",
// "request_id"}}, of both routers.
const (
	CodeBadHost          = "bad_host"
	CodeBadRequest       = "bad_request"
	CodeNotFound         = "not_found"
	CodeNoLiveVersion    = "no_live_version"
	CodeNotReady         = "not_ready"
	CodeMethodNotAllowed = "method_not_allowed"
)

// Status returns the HTTP status of the answer to a request that m keeps
// from its worker (200 for MissNone).
func (m Miss) Status() int {
	switch m {
	case MissNone:
		return http.StatusOK
	case MissBadHost, MissBadPath:
		return http.StatusBadRequest
	case MissNotReady:
		return http.StatusServiceUnavailable
	}
	return http.StatusNotFound
}

// Code returns the code of the JSON error answer for m ("" for MissNone).
func (m Miss) Code() string {
	switch m {
	case MissNone:
		return ""
	case MissBadHost:
		return CodeBadHost
	case MissBadPath:
		return CodeBadRequest
	case MissNotLive:
		return CodeNoLiveVersion
	case MissNotReady:
		return CodeNotReady
	}
	return CodeNotFound
}

// Match is how a table routes one request: the rule and worker, or why
// none serves it.
type Match struct {
	// Rule picked Worker; RuleNone when no rule did.
	Rule Rule
	// Worker is the worker picked by Rule.
	Worker string
	// Path is the path the worker sees: the request's path as sent
	// (percent-encoding preserved), "/" for an empty one.
	Path string
	// Miss is why the request is not forwarded; MissNone when it is.
	Miss Miss
	// Reason is the message of the JSON error answer for Miss; empty for
	// MissNone.
	Reason string
}

// Messages of the answers that do not come from a worker. The generated
// dispatch Worker builds the same strings; the test vectors compare them.
const (
	// MessageBadHost is the message of MissBadHost.
	MessageBadHost = "the Host header is malformed"
	// MessageNotReady is the message of MissNotReady.
	MessageNotReady = "the routing table and live versions have not been loaded yet"
	// MessageConnect is the message of the 405 answer to CONNECT.
	MessageConnect = "CONNECT is not supported"
)

// NotLive returns m as a MissNotLive for worker in environment: the
// request was routed, but the worker has nothing live there.
func (m Match) NotLive(environment string) Match {
	m.Miss, m.Reason = MissNotLive, "worker "+quote(m.Worker)+" has no live version in "+environment
	return m
}

// NotReady returns m as a MissNotReady.
func (m Match) NotReady() Match {
	m.Miss, m.Reason = MissNotReady, MessageNotReady
	return m
}

func (m Match) miss(miss Miss, reason string) Match {
	m.Rule, m.Worker, m.Miss, m.Reason = RuleNone, "", miss, reason
	return m
}

// quote quotes a name that holds no character to escape (a checked host,
// label or worker name), as both routers do.
func quote(s string) string { return `"` + s + `"` }

// Router routes requests with one table. It is immutable and safe for
// concurrent use.
type Router struct {
	table    Table
	bases    []string // longest first
	allowed  map[string]bool
	defaults map[string]bool
	paths    map[string][]pathRule // by host

	basesText string
}

type pathRule struct {
	prefix, worker string
}

// Compile normalizes and validates t and returns its Router.
func Compile(t Table) (*Router, error) {
	t = t.Normalize()
	if err := t.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		table:     t,
		bases:     longestFirst(t.BaseDomains),
		allowed:   make(map[string]bool, len(t.Workers)),
		defaults:  make(map[string]bool, len(t.DefaultHosts)),
		paths:     make(map[string][]pathRule),
		basesText: strings.Join(t.BaseDomains, ", "),
	}
	for _, w := range t.Workers {
		r.allowed[w] = true
	}
	for _, h := range t.DefaultHosts {
		r.defaults[h] = true
	}
	for _, p := range t.PathRoutes {
		for _, h := range p.Hosts {
			r.paths[h] = append(r.paths[h], pathRule{prefix: p.Prefix, worker: p.Worker})
		}
	}
	return r, nil
}

// MustCompile is Compile for tables known to be valid (Seed, tests); it
// panics on an invalid one.
func MustCompile(t Table) *Router {
	r, err := Compile(t)
	if err != nil {
		panic("routing: " + err.Error())
	}
	return r
}

// Table returns the router's table (normalized); the caller may change the
// copy.
func (r *Router) Table() Table { return r.table.Clone() }

// Allowed reports whether worker is on the table's allow-list.
func (r *Router) Allowed(worker string) bool { return r.allowed[worker] }

// servesSubdomain reports whether "<label>.<base domain>" names a worker
// the table serves by subdomain: one of the allow-list, or with
// SubdomainsAnyWorker any worker name, whose existence is the live set's
// to decide.
func (r *Router) servesSubdomain(label string) bool {
	return r.allowed[label] || (r.table.SubdomainsAnyWorker && names.ValidService(label))
}

// RoutesHost reports whether requests for host (a Host header value) are
// the table's: whether it is a base domain or below one.
func (r *Router) RoutesHost(hostHeader string) bool {
	h, err := parseHost(hostHeader)
	if err != nil || h.ip {
		return false
	}
	_, ok := belowBase(r.bases, h.name)
	return ok
}

// Route applies the table to a request for hostHeader (a Host header value)
// and path (as sent: escaped), following the precedence of the package
// documentation. Liveness is the caller's: a Match with MissNone names a
// worker of the allow-list, or with SubdomainsAnyWorker any worker name,
// which may have nothing live (see NotLive).
func (r *Router) Route(hostHeader, path string) Match {
	if path == "" { // an absolute URL without a path ("http://do")
		path = "/"
	}
	m := Match{Path: path}
	h, err := parseHost(hostHeader)
	if err != nil {
		return m.miss(MissBadHost, MessageBadHost)
	}
	if why := checkPath(path); why != "" {
		return m.miss(MissBadPath, why)
	}
	if h.ip {
		return m.miss(MissUnknownHost, "no route for an IP address host: the routed hosts are the base domains ("+r.basesText+") and the names directly below them")
	}
	label, ok := belowBase(r.bases, h.name)
	if !ok {
		return m.miss(MissUnknownHost, "no route for host "+quote(h.name)+": it is not one of the base domains ("+r.basesText+") or directly below one")
	}
	for _, p := range r.paths[h.name] {
		if path == p.prefix || (strings.HasPrefix(path, p.prefix) && path[len(p.prefix)] == '/') {
			m.Rule, m.Worker = RulePath, p.worker
			return m
		}
	}
	switch {
	case r.defaults[h.name]:
		m.Rule, m.Worker = RuleDefault, r.table.DefaultWorker
		return m
	case strings.IndexByte(label, '.') >= 0:
		return m.miss(MissUnknownHost, "no route for host "+quote(h.name)+": only one label below a base domain names a worker")
	case label == "" || !r.table.Subdomains:
		return m.miss(MissUnknownHost, "no route for host "+quote(h.name)+": no rule of the routing table matches it")
	case !r.servesSubdomain(label):
		return m.miss(MissUnknownWorker, "no worker "+quote(label)+" is served here")
	}
	m.Rule, m.Worker = RuleSubdomain, label
	return m
}

// longestFirst returns a copy of domains, longest first, so that a host
// below two base domains ("x.a.do" with "do" and "a.do") is read against
// the more specific one.
func longestFirst(domains []string) []string {
	s := slices.Clone(domains)
	slices.SortStableFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}
