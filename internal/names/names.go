// Package names holds the name rules that more than one service applies:
// Cloudflare's rule for script and dispatch namespace names, the runtime's
// rule for binding and secret names, and the Deploy API's stricter rules for
// service (worker) and environment names, and for the names of vars,
// bindings and secrets (JavaScript identifiers).
//
// The runtime accepts every name Cloudflare accepts (ValidScript); the Deploy
// API accepts fewer (ValidService), because a service name also becomes a
// subdomain. Both rules are kept on purpose: every name the Deploy API
// accepts, the runtime accepts too, not the other way round.
//
// The package is a leaf: it imports only the standard library.
package names

import "regexp"

// Length bounds of the rules.
const (
	// MaxScriptLen is the longest script or namespace name ValidScript
	// accepts.
	MaxScriptLen = 63
	// MaxBindingLen is the longest binding or secret name ValidBinding
	// accepts.
	MaxBindingLen = 128
	// MaxServiceLen is the longest service name ValidService accepts.
	MaxServiceLen = 63
	// MaxEnvironmentLen is the longest environment name ValidEnvironment
	// accepts.
	MaxEnvironmentLen = 32
)

var environmentRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// ValidScript reports whether name is acceptable as a script or dispatch
// namespace name: 1 to 63 characters of lowercase letters, digits, '-' and
// '_', not starting with '-'. This is Cloudflare's script-name pattern with
// a length bound; it cannot express a path, so such names are safe to use
// as directory names.
func ValidScript(name string) bool {
	if len(name) == 0 || len(name) > MaxScriptLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidBinding reports whether name is acceptable as a binding or secret
// name (a key of a worker's env): 1 to 128 characters of letters, digits,
// '_', '$' and '-', not starting with a digit or '-'.
func ValidBinding(name string) bool { return validEnvName(name, MaxBindingLen, true) }

// ValidService reports whether name is acceptable to the Deploy API as a
// service (worker) name, and as the dispatch namespace of an environment:
// 1 to 63 lowercase letters, digits and dashes, not starting or ending with
// a dash (a lowercase DNS label, so that the name works as a subdomain).
// Every such name is also a ValidScript. It is a loop rather than a
// regular expression: the dispatcher applies it to a request's subdomain
// (routing's subdomains_any_worker), on every request.
func ValidService(name string) bool {
	n := len(name)
	if n == 0 || n > MaxServiceLen || name[0] == '-' || name[n-1] == '-' {
		return false
	}
	for i := 0; i < n; i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ValidEnvironment reports whether name is acceptable to the Deploy API as
// an environment name: 1 to 32 lowercase letters, digits and dashes,
// starting with a letter.
func ValidEnvironment(name string) bool {
	return len(name) <= MaxEnvironmentLen && environmentRE.MatchString(name)
}

// MaxIdentifierLen bounds a var or service binding name of the Deploy API.
const MaxIdentifierLen = 64

// ValidIdentifier reports whether name is a JavaScript identifier of ASCII
// letters, digits, '_' and '$' (not starting with a digit), 1 to
// MaxIdentifierLen characters: what the Deploy API accepts as the name of
// a var or a service binding, so that the worker can write env.NAME.
func ValidIdentifier(name string) bool { return validEnvName(name, MaxIdentifierLen, false) }

// MaxSecretNameLen bounds a secret name of the Deploy API: MaxBindingLen,
// the runtime's bound for the same key.
const MaxSecretNameLen = MaxBindingLen

// ValidSecretName reports whether name is acceptable to the Deploy API as
// a secret name: a JavaScript identifier as for ValidIdentifier, of 1 to
// MaxSecretNameLen characters, so that the worker can write env.NAME. Every
// such name is also a ValidBinding, the runtime's rule for a secret's key.
func ValidSecretName(name string) bool { return validEnvName(name, MaxSecretNameLen, false) }

// validEnvName reports whether name is 1 to max characters of ASCII
// letters, digits, '_', '$' and, when dash is set, '-', not starting with
// a digit or '-'.
func validEnvName(name string, max int, dash bool) bool {
	if len(name) == 0 || len(name) > max {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$':
		case (c >= '0' && c <= '9') || (dash && c == '-'):
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
