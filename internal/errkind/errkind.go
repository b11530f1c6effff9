// Package errkind is the platform's one vocabulary of error kinds: what
// class of failure an error is (not found, invalid, permission, ...),
// independent of any transport. Domain packages give their errors a kind;
// the RPC edge (internal/rpcerr) maps kinds to Connect codes in one table,
// and maps the codes of errors that come back from other services to kinds
// again, so that a caller tests an error the same way whether the service
// it called runs in process or across the network:
//
//	if errors.Is(err, errkind.NotFound) { ... }
//	switch errkind.Of(err) { ... }
//
// A Kind is itself an error, so the simplest way to give an error a kind is
// to wrap the Kind:
//
//	fmt.Errorf("deployment %q: %w", id, errkind.NotFound)
//
// and the way to make a sentinel that callers in the same process can tell
// apart from others of its kind is New:
//
//	var ErrLeaseLost = errkind.New(errkind.Conflict, "deploy lease lost")
//
// Across a service boundary only the kind survives (it travels as a Connect
// code), so code that may talk to a remote service tests kinds, never
// another package's sentinels. The model is upspin's errors.Kind.
//
// The package imports nothing but the standard library and is imported by
// every layer.
package errkind

import (
	"errors"
	"fmt"
)

// Kind is the class of an error. The zero Kind, Other, is no class at all:
// an error without a kind is an internal fault whose details the caller
// does not see.
type Kind uint8

// The kinds. Each has exactly one Connect code (see internal/rpcerr).
const (
	// Other is not a kind: an error of unknown class, treated as an
	// internal fault.
	Other Kind = iota
	// Invalid: the request is malformed (a field out of range, a bad name).
	Invalid
	// NotFound: the named thing does not exist.
	NotFound
	// Exists: the thing to create already exists.
	Exists
	// Precondition: the request is valid but the current state does not
	// allow it (a revoked key, a version that never went live).
	Precondition
	// Permission: the caller is known but may not do this.
	Permission
	// Unauthenticated: the caller's credential is missing or invalid.
	Unauthenticated
	// Exhausted: a limit was reached (too large, too many attempts); the
	// caller may retry later or with less.
	Exhausted
	// Conflict: a concurrent actor won (a lease held by another holder);
	// the caller may retry the whole operation.
	Conflict
	// Unavailable: a dependency cannot be reached right now; retrying the
	// same request may succeed.
	Unavailable
	// Corrupt: stored data failed an integrity check.
	Corrupt
	// Internal: the platform itself is at fault (misconfiguration, a bug);
	// the message is for operators, not for the caller.
	Internal
	numKinds
)

var names = [numKinds]string{
	Other:           "other error",
	Invalid:         "invalid argument",
	NotFound:        "not found",
	Exists:          "already exists",
	Precondition:    "failed precondition",
	Permission:      "permission denied",
	Unauthenticated: "unauthenticated",
	Exhausted:       "resource exhausted",
	Conflict:        "conflict",
	Unavailable:     "unavailable",
	Corrupt:         "corrupt data",
	Internal:        "internal error",
}

// Kinds returns every kind but Other, in declaration order.
func Kinds() []Kind {
	out := make([]Kind, 0, numKinds-1)
	for k := Other + 1; k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// String returns the kind's name, for example "not found".
func (k Kind) String() string {
	if k < numKinds {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error makes a Kind an error, so that it can be wrapped with %w and found
// with errors.Is and errors.As. Its message is String.
func (k Kind) Error() string { return k.String() }

// Of returns the kind of err: the first Kind found in err's chain (errors.As
// order: an outer error's kind before the kinds it wraps), or Other.
func Of(err error) Kind {
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return Other
}

// New returns an error with message msg and kind k. Each call returns a
// distinct error, so New suits sentinels: errors.Is(err, sentinel) tells
// it apart from other errors of its kind, and errors.Is(err, k) holds too.
func New(k Kind, msg string) error {
	return &kinded{kind: k, err: errors.New(msg)}
}

// Errorf formats an error as fmt.Errorf does (including %w) and gives it
// kind k, which wins over the kinds of the errors it wraps. With k Other
// it is fmt.Errorf.
func Errorf(k Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if k == Other {
		return err
	}
	return &kinded{kind: k, err: err}
}

// kinded is an error with a kind. Its message is its error's alone.
type kinded struct {
	kind Kind
	err  error
}

func (e *kinded) Error() string { return e.err.Error() }

// Unwrap returns the kind first, so that Of finds it before the kinds of
// the wrapped errors, then the error it gives a kind to.
func (e *kinded) Unwrap() []error { return []error{e.kind, e.err} }
