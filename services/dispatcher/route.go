package dispatcher

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Rule is the routing rule that picked a worker.
type Rule int

// The routing rules, in the terms of the package documentation.
const (
	// RuleNone means no rule picked a worker.
	RuleNone Rule = iota
	// RuleSubdomain routes "<worker>.<base domain>" to the worker.
	RuleSubdomain
	// RulePath routes "/api/<worker>[/...]" on a default host to the worker.
	RulePath
	// RuleDefault routes the default hosts to the default worker.
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

// The reasons for not forwarding, each with its HTTP status.
const (
	// MissNone means the request is forwarded.
	MissNone Miss = iota
	// MissBadHost: the Host is malformed (400).
	MissBadHost
	// MissBadPath: the path is not absolute, or holds a backslash or a dot
	// segment (400).
	MissBadPath
	// MissUnknownHost: the host is not routed by any rule (404).
	MissUnknownHost
	// MissUnknownWorker: the subdomain names no allowed worker (404).
	MissUnknownWorker
	// MissNotLive: the worker has no live version in the environment (404).
	MissNotLive
	// MissNotReady: the live versions have not been loaded yet (503).
	MissNotReady
)

// Route is how the dispatcher routes one request: the worker, namespace and
// version that serve it and the rule that picked them, or why none does.
type Route struct {
	// Rule is the rule that picked Worker (RuleNone if none did).
	Rule Rule
	// Worker is the worker (script) picked by Rule.
	Worker string
	// Environment is the dispatcher's environment.
	Environment string
	// Namespace is the dispatch namespace the worker is served from.
	Namespace string
	// Version is the worker's live version; 0 when nothing is live.
	Version int64
	// Path is the path the worker sees: the request's path as sent
	// (percent-encoding preserved), without the query.
	Path string
	// Miss is why the request is not forwarded; MissNone when it is.
	Miss Miss
	// Reason explains Miss for people; empty when Miss is MissNone.
	Reason string
}

// host is a parsed Host header.
type host struct {
	// name is the host without port, lower case, without a trailing dot;
	// an IPv6 address keeps no brackets.
	name string
	// ip is true when name is an IP address.
	ip bool
}

var errBadHost = errors.New("malformed host")

// maxHostLen is the longest host name (without port) accepted, as DNS.
const maxHostLen = 253

// parseHost parses a Host header value: a DNS name (ASCII only: an
// internationalized name arrives in punycode), an IPv4 address or a
// bracketed IPv6 address, with an optional numeric port.
func parseHost(s string) (host, error) {
	if s == "" {
		return host{}, fmt.Errorf("%w: empty", errBadHost)
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPort(s[end+1:]) {
			return host{}, fmt.Errorf("%w: %q", errBadHost, s)
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return host{}, fmt.Errorf("%w: %q", errBadHost, s)
		}
		return host{name: a.String(), ip: true}, nil
	}
	name := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if !validPort(s[i:]) {
			return host{}, fmt.Errorf("%w: %q", errBadHost, s)
		}
		name = s[:i]
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxHostLen {
		return host{}, fmt.Errorf("%w: %q", errBadHost, s)
	}
	upper, label := false, 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
		case c >= 'A' && c <= 'Z':
			upper = true
			label++
		case c == '.' && label > 0:
			label = 0
			continue
		default:
			return host{}, fmt.Errorf("%w: %q", errBadHost, s)
		}
		if label > 63 {
			return host{}, fmt.Errorf("%w: %q", errBadHost, s)
		}
	}
	if label == 0 { // an empty last label: "do.."
		return host{}, fmt.Errorf("%w: %q", errBadHost, s)
	}
	if upper {
		name = strings.ToLower(name)
	}
	// A name whose last label is numeric is an IPv4 address (no top-level
	// domain is numeric); anything else numeric is malformed.
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last[0] >= '0' && last[0] <= '9' {
		if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
			return host{name: name, ip: true}, nil
		}
		if strings.Trim(last, "0123456789") == "" {
			return host{}, fmt.Errorf("%w: %q", errBadHost, s)
		}
	}
	return host{name: name}, nil
}

// validPort reports whether p is empty or ":" followed by at most five
// digits of a number up to 65535 (an empty port is allowed, as RFC 3986
// does).
func validPort(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != ':' || len(p) > 6 {
		return false
	}
	n := 0
	for i := 1; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// checkPath returns why path cannot be routed, or "" when it can. A path must
// be absolute, without backslashes and without dot segments ("." or "..",
// also as %2e): a worker's URL parser would resolve them (and turn "\" into
// "/"), so the worker would see another path than the one routed on.
func checkPath(path string) string {
	if path == "" || path[0] != '/' {
		return "the request target must be an absolute path"
	}
	if !strings.ContainsAny(path, `.%\`) {
		return ""
	}
	if strings.IndexByte(path, '\\') >= 0 {
		return "the path must not hold a backslash"
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if isDotSegment(seg) {
			return "the path must not hold a dot segment (\".\" or \"..\")"
		}
	}
	return ""
}

// isDotSegment reports whether seg is ".", ".." or one of their
// percent-encoded forms, as the WHATWG URL parser recognizes them.
func isDotSegment(seg string) bool {
	if len(seg) > 6 {
		return false
	}
	s := strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
	return s == "." || s == ".."
}

// pathWorker returns the worker named by a path of the form
// "/api/<worker>[/...]", or "" when the path has no such form.
func pathWorker(path string) string {
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// route applies the routing rules to a request for host and path (as sent:
// escaped), with the live versions of t (nil before the first load).
func (d *Dispatcher) route(t *table, hostHeader, path string) Route {
	if path == "" { // an absolute URL without a path ("http://do")
		path = "/"
	}
	r := Route{Environment: d.cfg.Environment, Namespace: d.cfg.Namespace, Path: path}
	h, err := parseHost(hostHeader)
	if err != nil {
		return r.miss(MissBadHost, err.Error())
	}
	if why := checkPath(path); why != "" {
		return r.miss(MissBadPath, why)
	}
	label, ok := d.belowBase(h)
	if !ok {
		return r.miss(MissUnknownHost, fmt.Sprintf("no route for host %q: it is not one of the base domains %v or directly below one", h.name, d.cfg.BaseDomains))
	}
	if t == nil && d.cfg.AnyWorker {
		return r.miss(MissNotReady, "the live versions have not been loaded yet")
	}
	switch {
	case label == "" || label == APILabel:
		if w := pathWorker(path); w != "" && d.allowed(t, w) {
			r.Rule, r.Worker = RulePath, w
		} else {
			r.Rule, r.Worker = RuleDefault, d.cfg.DefaultWorker
		}
	case strings.IndexByte(label, '.') >= 0:
		return r.miss(MissUnknownHost, fmt.Sprintf("no route for host %q: only one label below a base domain names a worker", h.name))
	case !d.allowed(t, label):
		return r.miss(MissUnknownWorker, d.unknownWorker(label))
	default:
		r.Rule, r.Worker = RuleSubdomain, label
	}
	if t == nil {
		return r.miss(MissNotReady, "the live versions have not been loaded yet")
	}
	lv, ok := t.workers[r.Worker]
	if !ok {
		return r.miss(MissNotLive, fmt.Sprintf("worker %q has no live version in %s", r.Worker, d.cfg.Environment))
	}
	r.Namespace, r.Version = lv.Namespace, lv.Version
	return r
}

// miss returns r marked with why it is not forwarded.
func (r Route) miss(m Miss, reason string) Route {
	r.Miss, r.Reason = m, reason
	return r
}

// belowBase returns the part of h before the base domain it is equal to or
// below ("" for the base domain itself), and false when there is none.
func (d *Dispatcher) belowBase(h host) (string, bool) {
	if h.ip {
		return "", false
	}
	for _, b := range d.cfg.BaseDomains {
		if h.name == b {
			return "", true
		}
		if n := len(h.name) - len(b) - 1; n > 0 && h.name[n] == '.' && h.name[n+1:] == b {
			return h.name[:n], true
		}
	}
	return "", false
}

// allowed reports whether worker may be routed to: on the allow-list, or
// with Config.AnyWorker, live in t.
func (d *Dispatcher) allowed(t *table, worker string) bool {
	if d.cfg.AnyWorker {
		_, ok := t.workers[worker]
		return ok
	}
	_, ok := d.allow[worker]
	return ok
}

func (d *Dispatcher) unknownWorker(label string) string {
	if d.cfg.AnyWorker {
		return fmt.Sprintf("no worker %q is live in %s", label, d.cfg.Environment)
	}
	return fmt.Sprintf("no worker %q is served here; the workers are %v", label, d.cfg.Workers)
}
