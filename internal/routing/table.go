package routing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/names"
)

// Table is the routing table of one environment. Its JSON form (the field
// tags) is the one format of a table: `dotdo routes get --output json`
// prints it, `dotdo routes set --file` reads it, the generated dispatch
// Worker embeds it and the test vectors are written in it.
type Table struct {
	// BaseDomains are the domains whose hosts are routed: each base domain
	// and the names one label below it.
	BaseDomains []string `json:"base_domains"`
	// Workers is the allow-list: the workers path routes and the default
	// worker may pick, and, unless SubdomainsAnyWorker is set, the only
	// workers subdomain routing serves.
	Workers []string `json:"workers"`
	// DefaultWorker serves DefaultHosts. It is one of Workers.
	DefaultWorker string `json:"default_worker"`
	// DefaultHosts are served by DefaultWorker (after their path routes).
	DefaultHosts []string `json:"default_hosts"`
	// Subdomains turns on "<worker>.<base domain>" for the workers of the
	// allow-list.
	Subdomains bool `json:"subdomains"`
	// PathRoutes send the requests of their hosts under their prefixes to
	// their workers.
	PathRoutes []PathRoute `json:"path_routes"`
	// SubdomainsAnyWorker widens subdomain routing (Subdomains must be on)
	// from the allow-list to every worker of the environment:
	// "<label>.<base domain>" serves worker <label> whenever <label> is a
	// worker name (names.ValidService), and whether that worker exists is
	// the live set's answer (404 no_live_version when nothing of it is
	// live), not the table's. So a table stays a few hundred bytes at
	// 10,000 workers instead of listing each one, up to MaxWorkers, in
	// every version, every push to the dispatchers and the dispatch
	// Worker.
	//
	// It is a field of its own rather than a "*" entry of Workers: Workers
	// stays a list of worker names with one meaning (what path routes and
	// the default worker may pick, what the metrics pre-create series
	// for), and every reader of the list (diff, CLI, both routers) keeps
	// reading it as names.
	SubdomainsAnyWorker bool `json:"subdomains_any_worker"`
}

// PathRoute sends requests for one of Hosts whose path is Prefix, or
// starts with Prefix and "/", to Worker.
type PathRoute struct {
	// Prefix is a path of whole segments, such as "/api/db". A trailing
	// "/" is dropped by Normalize: "/tools/" and "/tools" are one prefix.
	Prefix string `json:"prefix"`
	// Worker is the worker the route picks; one of the table's Workers.
	Worker string `json:"worker"`
	// Hosts are the hosts the route applies to; each is a base domain or
	// directly below one.
	Hosts []string `json:"hosts"`
}

// Limits of a table, so that a table stays small enough to embed in a
// Worker and to send with every change.
const (
	MaxBaseDomains  = 16
	MaxWorkers      = 256
	MaxDefaultHosts = 64
	MaxPathRoutes   = 256
	MaxRouteHosts   = 64
	MaxPrefixLen    = 256
	// MaxTableBytes bounds the JSON form of a table.
	MaxTableBytes = 256 << 10
)

// SeedWorkers is the allow-list of the original deployment.
var SeedWorkers = []string{"gateway", "db", "auth", "schedule", "webhooks", "email", "mcp", "queue"}

// Seed returns the table of the original deployment, the table of an
// environment that has none stored: base domain "do"; subdomain routing
// ("gateway.do" serves gateway); "/api/<worker>" on "do" and "api.do" for
// every worker of SeedWorkers; gateway for "do" and "api.do" otherwise.
func Seed() Table {
	hosts := []string{"do", "api.do"}
	t := Table{
		BaseDomains:   []string{"do"},
		Workers:       slices.Clone(SeedWorkers),
		DefaultWorker: "gateway",
		DefaultHosts:  slices.Clone(hosts),
		Subdomains:    true,
	}
	for _, w := range SeedWorkers {
		t.PathRoutes = append(t.PathRoutes, PathRoute{Prefix: "/api/" + w, Worker: w, Hosts: slices.Clone(hosts)})
	}
	return t
}

// Clone returns a deep copy of t.
func (t Table) Clone() Table {
	c := t
	c.BaseDomains = slices.Clone(t.BaseDomains)
	c.Workers = slices.Clone(t.Workers)
	c.DefaultHosts = slices.Clone(t.DefaultHosts)
	c.PathRoutes = make([]PathRoute, len(t.PathRoutes))
	for i, r := range t.PathRoutes {
		r.Hosts = slices.Clone(r.Hosts)
		c.PathRoutes[i] = r
	}
	return c
}

// Equal reports whether t and u are the same table, entry by entry.
func (t Table) Equal(u Table) bool {
	return slices.Equal(t.BaseDomains, u.BaseDomains) && slices.Equal(t.Workers, u.Workers) &&
		t.DefaultWorker == u.DefaultWorker && slices.Equal(t.DefaultHosts, u.DefaultHosts) &&
		t.Subdomains == u.Subdomains && t.SubdomainsAnyWorker == u.SubdomainsAnyWorker && slices.EqualFunc(t.PathRoutes, u.PathRoutes, func(a, b PathRoute) bool {
		return a.Prefix == b.Prefix && a.Worker == b.Worker && slices.Equal(a.Hosts, b.Hosts)
	})
}

// FieldError is an entry of a table that Validate refuses. Its kind is
// errkind.Invalid.
type FieldError struct {
	// Field is the entry's path in the JSON form, for example
	// "path_routes[2].prefix".
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns errkind.Invalid.
func (e *FieldError) Unwrap() error { return errkind.Invalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Normalize returns t in the form it is stored and compared in: names
// trimmed; domains and hosts in lower-case ASCII (punycode) without a
// trailing dot; prefixes without a trailing "/"; nil lists empty. It does
// not validate (see Validate); an entry it cannot convert stays as it is,
// for Validate to name.
func (t Table) Normalize() Table {
	t = t.Clone()
	for i, d := range t.BaseDomains {
		t.BaseDomains[i] = normalizeName(d)
	}
	for i, w := range t.Workers {
		t.Workers[i] = strings.TrimSpace(w)
	}
	t.DefaultWorker = strings.TrimSpace(t.DefaultWorker)
	for i, h := range t.DefaultHosts {
		t.DefaultHosts[i] = normalizeName(h)
	}
	for i := range t.PathRoutes {
		r := &t.PathRoutes[i]
		r.Prefix = strings.TrimSpace(r.Prefix)
		if len(r.Prefix) > 1 {
			r.Prefix = strings.TrimSuffix(r.Prefix, "/")
		}
		r.Worker = strings.TrimSpace(r.Worker)
		for j, h := range r.Hosts {
			r.Hosts[j] = normalizeName(h)
		}
		if r.Hosts == nil {
			r.Hosts = []string{}
		}
	}
	for _, s := range []*[]string{&t.BaseDomains, &t.Workers, &t.DefaultHosts} {
		if *s == nil {
			*s = []string{}
		}
	}
	return t
}

// normalizeName returns a domain name in lower-case ASCII without a
// trailing dot, or s trimmed when it cannot be converted.
func normalizeName(s string) string {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if a, err := idna.Lookup.ToASCII(s); err == nil {
		return a
	}
	return s
}

// Validate checks a table (normalize it first) and returns the first entry
// it refuses as a *FieldError naming it: a worker that is not on the
// allow-list, path routes that overlap on a host, a malformed domain, host
// or prefix, a host outside the base domains, a duplicate, a list over its
// limit, subdomains_any_worker without subdomains.
func (t Table) Validate() error {
	if err := checkCount("base_domains", len(t.BaseDomains), 1, MaxBaseDomains); err != nil {
		return err
	}
	bases := make([]string, 0, len(t.BaseDomains))
	for i, d := range t.BaseDomains {
		f := fmt.Sprintf("base_domains[%d]", i)
		if !validDomain(d) {
			return fieldErr(f, "%q is not a domain name (want labels of a-z, 0-9 and '-', such as \"example.com\")", d)
		}
		if slices.Contains(bases, d) {
			return fieldErr(f, "%q is listed twice", d)
		}
		bases = append(bases, d)
	}
	byLength := longestFirst(bases)
	if err := checkCount("workers", len(t.Workers), 1, MaxWorkers); err != nil {
		return err
	}
	allowed := make(map[string]bool, len(t.Workers))
	for i, w := range t.Workers {
		f := fmt.Sprintf("workers[%d]", i)
		if !names.ValidService(w) {
			return fieldErr(f, "%q is not a worker name (1 to 63 of a-z, 0-9 and '-', not starting or ending with '-')", w)
		}
		if allowed[w] {
			return fieldErr(f, "%q is listed twice", w)
		}
		allowed[w] = true
	}
	known := func(f, w string) error {
		if w == "" {
			return fieldErr(f, "a worker is required")
		}
		if !allowed[w] {
			return fieldErr(f, "unknown worker %q: it is not in workers", w)
		}
		return nil
	}
	if err := known("default_worker", t.DefaultWorker); err != nil {
		return err
	}
	if t.SubdomainsAnyWorker && !t.Subdomains {
		return fieldErr("subdomains_any_worker", "it widens subdomain routing, which is off: set subdomains too")
	}
	if err := checkCount("default_hosts", len(t.DefaultHosts), 0, MaxDefaultHosts); err != nil {
		return err
	}
	hosts := func(f string, list []string) error {
		seen := make(map[string]bool, len(list))
		for i, h := range list {
			f := fmt.Sprintf("%s[%d]", f, i)
			if !validDomain(h) {
				return fieldErr(f, "%q is not a host name", h)
			}
			if label, ok := belowBase(byLength, h); !ok || strings.Contains(label, ".") {
				return fieldErr(f, "host %q is not a base domain or directly below one (base domains: %s)", h, strings.Join(bases, ", "))
			}
			if seen[h] {
				return fieldErr(f, "%q is listed twice", h)
			}
			seen[h] = true
		}
		return nil
	}
	if err := hosts("default_hosts", t.DefaultHosts); err != nil {
		return err
	}
	if err := checkCount("path_routes", len(t.PathRoutes), 0, MaxPathRoutes); err != nil {
		return err
	}
	for i, r := range t.PathRoutes {
		f := fmt.Sprintf("path_routes[%d]", i)
		if why := checkPrefix(r.Prefix); why != "" {
			return fieldErr(f+".prefix", "%q: %s", r.Prefix, why)
		}
		if err := known(f+".worker", r.Worker); err != nil {
			return err
		}
		if err := checkCount(f+".hosts", len(r.Hosts), 1, MaxRouteHosts); err != nil {
			return err
		}
		if err := hosts(f+".hosts", r.Hosts); err != nil {
			return err
		}
		for j, o := range t.PathRoutes[:i] {
			if !overlaps(r.Prefix, o.Prefix) {
				continue
			}
			for _, h := range r.Hosts {
				if slices.Contains(o.Hosts, h) {
					return fieldErr(f+".prefix", "%q overlaps path_routes[%d] (%q) on host %q", r.Prefix, j, o.Prefix, h)
				}
			}
		}
	}
	return nil
}

func checkCount(field string, n, lo, hi int) error {
	switch {
	case n < lo && lo == 1:
		return fieldErr(field, "at least one entry is required")
	case n > hi:
		return fieldErr(field, "%d entries; at most %d", n, hi)
	}
	return nil
}

// validDomain reports whether s is a normalized DNS name that is not an IP
// address.
func validDomain(s string) bool {
	h, err := parseHost(s)
	return err == nil && !h.ip && h.name == s
}

// checkPrefix returns why p cannot be a path route's prefix, or "".
func checkPrefix(p string) string {
	switch {
	case p == "" || p[0] != '/':
		return "a prefix is an absolute path, such as \"/api/db\""
	case p == "/":
		return "\"/\" would take every path: use default_worker and default_hosts"
	case len(p) > MaxPrefixLen:
		return fmt.Sprintf("longer than %d bytes", MaxPrefixLen)
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" {
			return "a prefix has no empty segments (\"//\")"
		}
		if seg == "." || seg == ".." {
			return "a prefix has no dot segments"
		}
		for i := 0; i < len(seg); i++ {
			if !prefixByte(seg[i]) {
				return fmt.Sprintf("%q is not allowed in a prefix (letters, digits and -._~!$&'()*+,;=:@ are)", seg[i])
			}
		}
	}
	return ""
}

// prefixByte reports whether c may appear in a prefix segment: a path
// character of RFC 3986 other than '%', so that a prefix has one spelling.
func prefixByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}

// overlaps reports whether one of the prefixes a and b matches a path the
// other matches: they are equal, or one lies below the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// ParseTable reads a table from its JSON form (DecodeTable) and returns it
// normalized and validated.
func ParseTable(data []byte) (Table, error) {
	t, err := DecodeTable(data)
	if err != nil {
		return Table{}, err
	}
	if err := t.Validate(); err != nil {
		return Table{}, err
	}
	return t, nil
}

// DecodeTable reads a table from its JSON form, refusing unknown fields and
// trailing data, and returns it normalized but not validated.
func DecodeTable(data []byte) (Table, error) {
	if len(data) > MaxTableBytes {
		return Table{}, errkind.Errorf(errkind.Invalid, "the table is %d bytes; at most %d", len(data), MaxTableBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var t Table
	if err := dec.Decode(&t); err != nil {
		return Table{}, errkind.Errorf(errkind.Invalid, "the table is not valid JSON of a routing table: %v", err)
	}
	if dec.More() {
		return Table{}, errkind.Errorf(errkind.Invalid, "the table has data after its JSON object")
	}
	return t.Normalize(), nil
}

// MarshalIndent returns t's JSON form, indented, with a final newline.
func (t Table) MarshalIndent() []byte {
	t = t.Normalize() // no null lists
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("routing: marshal table: %v", err)) // only strings, bools and slices
	}
	return append(b, '\n')
}
