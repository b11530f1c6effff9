package routing

import (
	"errors"
	"net/netip"
	"strings"
)

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
		return host{}, errBadHost
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPort(s[end+1:]) {
			return host{}, errBadHost
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return host{}, errBadHost
		}
		return host{name: a.String(), ip: true}, nil
	}
	name := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if !validPort(s[i:]) {
			return host{}, errBadHost
		}
		name = s[:i]
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxHostLen {
		return host{}, errBadHost
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
			return host{}, errBadHost
		}
		if label > 63 {
			return host{}, errBadHost
		}
	}
	if label == 0 { // an empty last label: "do.."
		return host{}, errBadHost
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
			return host{}, errBadHost
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

// The reasons checkPath gives, also the messages of MissBadPath.
const (
	reasonNotAbsolute = "the request target must be an absolute path"
	reasonBackslash   = "the path must not hold a backslash"
	reasonDotSegment  = "the path must not hold a dot segment (\".\" or \"..\")"
)

// checkPath returns why path cannot be routed, or "" when it can. A path must
// be absolute, without backslashes and without dot segments ("." or "..",
// also as %2e): a worker's URL parser would resolve them (and turn "\" into
// "/"), so the worker would see another path than the one routed on.
func checkPath(path string) string {
	if path == "" || path[0] != '/' {
		return reasonNotAbsolute
	}
	if !strings.ContainsAny(path, `.%\`) {
		return ""
	}
	if strings.IndexByte(path, '\\') >= 0 {
		return reasonBackslash
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if isDotSegment(seg) {
			return reasonDotSegment
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

// belowBase returns the part of name before the base domain (of bases,
// longest first) it is equal to or below ("" for a base domain itself), and
// false when there is none.
func belowBase(bases []string, name string) (string, bool) {
	for _, b := range bases {
		if name == b {
			return "", true
		}
		if n := len(name) - len(b) - 1; n > 0 && name[n] == '.' && name[n+1:] == b {
			return name[:n], true
		}
	}
	return "", false
}
