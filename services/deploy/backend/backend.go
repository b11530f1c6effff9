// Package backend defines where the Deploy API puts workers: a Backend holds
// dispatch namespaces and the scripts uploaded into them. Package
// backend/cloudflare implements it on the Cloudflare API (Cloudflare Workers
// for Platforms, or the local runtime, which speaks the same API); Memory is
// an in-process implementation for tests and benchmarks.
//
// Errors that callers act on wrap one of the sentinels below (ErrNotFound,
// ErrRejected, ErrUnavailable, ErrUnauthorized); their messages never hold a
// credential.
package backend

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/dot-do/platform/internal/errkind"
)

// Backend stores dispatch namespaces and the worker scripts in them.
// Implementations are safe for concurrent use.
type Backend interface {
	// Name names the backend for operators, for example "cloudflare" or
	// "runtime".
	Name() string
	// EnsureNamespace creates the namespace name unless it exists, and
	// reports whether this call created it.
	EnsureNamespace(ctx context.Context, name string) (created bool, err error)
	// NamespaceInfo describes the namespace name, or returns an error
	// wrapping ErrNotFound when it does not exist.
	NamespaceInfo(ctx context.Context, name string) (Namespace, error)
	// Upload puts script into namespace, replacing the script of the same
	// name. It returns an error wrapping ErrNotFound when the namespace does
	// not exist and ErrRejected when the backend refuses the script.
	Upload(ctx context.Context, namespace string, script Script) error
	// ScriptTags returns the tags of the script named script in namespace,
	// or an error wrapping ErrNotFound when there is no such script.
	ScriptTags(ctx context.Context, namespace, script string) ([]string, error)
	// Scheduled runs the scheduled() handler of the script named script in
	// namespace now, with cron as the controller's cron expression. It
	// returns an error wrapping ErrNotFound when there is no such script,
	// ErrRejected when the handler failed, and ErrUnsupported when the
	// backend cannot run handlers by request.
	Scheduled(ctx context.Context, namespace, script, cron string) error
}

// Namespace describes a dispatch namespace.
type Namespace struct {
	// Name is the namespace's name.
	Name string
	// ID is the backend's id of the namespace, when it has one.
	ID string
	// ScriptCount is how many scripts the namespace holds.
	ScriptCount int64
	// CreatedOn is when the namespace was created, when known.
	CreatedOn time.Time
}

// Script is a worker to upload: its ES modules and other modules, and the
// settings workerd runs it with.
type Script struct {
	// Name is the script's name in the namespace.
	Name string
	// MainModule names the module the worker runs; one of Modules.
	MainModule string
	// Modules are the worker's modules; each Name is the file name the
	// others import it by.
	Modules []Module
	// CompatibilityDate is the workerd compatibility date (YYYY-MM-DD).
	CompatibilityDate string
	// CompatibilityFlags are workerd compatibility flags.
	CompatibilityFlags []string
	// Tags are the script's tags.
	Tags []string
	// Vars are plain-text environment variables (env.NAME).
	Vars map[string]string
	// Services are bindings to other scripts of the same namespace:
	// env.<Binding>.fetch reaches the script named Service.
	Services []ServiceBinding
	// Crons are the script's cron triggers (5-field, UTC).
	Crons []string
	// Limits bound each invocation of the script.
	Limits Limits
}

// Limits bound each invocation of a script, as the `limits` of Cloudflare's
// script upload do.
type Limits struct {
	// CPUMs is the CPU time one invocation may use, in milliseconds; 0
	// leaves the backend's default.
	CPUMs int64
}

// ServiceBinding binds another script of the namespace into a script's
// env.
type ServiceBinding struct {
	// Binding is the name in env.
	Binding string
	// Service is the target script's name.
	Service string
}

// Size returns the total size of the script's modules in bytes.
func (s Script) Size() int64 {
	var n int64
	for _, m := range s.Modules {
		n += int64(len(m.Content))
	}
	return n
}

// Module is one module of a worker.
type Module struct {
	// Name is the module's file name, for example "index.js".
	Name string
	// Content is the module's source or bytes.
	Content []byte
	// Type is the kind of module; ModuleInferred infers it from Name.
	Type ModuleType
}

// ContentType returns the MIME type the module is uploaded with.
func (m Module) ContentType() string { return m.Type.Resolve(m.Name).ContentType() }

// ModuleType is the kind of a module.
type ModuleType int

// The module types.
const (
	// ModuleInferred infers the type from the module name (see Resolve).
	ModuleInferred ModuleType = iota
	// ModuleESM is a JavaScript ES module.
	ModuleESM
	// ModuleWasm is a WebAssembly module.
	ModuleWasm
	// ModuleText is a text module, imported as a string.
	ModuleText
	// ModuleJSON is a JSON module, imported as a value.
	ModuleJSON
)

// Resolve returns t, or for ModuleInferred the type implied by name's
// extension: .js and .mjs are ES modules, .wasm WebAssembly, .json JSON and
// anything else text.
func (t ModuleType) Resolve(name string) ModuleType {
	if t != ModuleInferred {
		return t
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".js", ".mjs":
		return ModuleESM
	case ".wasm":
		return ModuleWasm
	case ".json":
		return ModuleJSON
	default:
		return ModuleText
	}
}

// ContentType returns the MIME type of the module type in an upload. A
// ModuleInferred type has none; Resolve it first.
func (t ModuleType) ContentType() string {
	switch t {
	case ModuleESM:
		return "application/javascript+module"
	case ModuleWasm:
		return "application/wasm"
	case ModuleText:
		return "text/plain"
	case ModuleJSON:
		return "application/json"
	default:
		return ""
	}
}

// String returns the type's short name: "esm", "wasm", "text", "json" or
// "inferred".
func (t ModuleType) String() string {
	switch t {
	case ModuleESM:
		return "esm"
	case ModuleWasm:
		return "wasm"
	case ModuleText:
		return "text"
	case ModuleJSON:
		return "json"
	case ModuleInferred:
		return "inferred"
	default:
		return fmt.Sprintf("ModuleType(%d)", int(t))
	}
}

// ParseModuleType is the inverse of String for the four concrete types.
func ParseModuleType(s string) (ModuleType, error) {
	for _, t := range []ModuleType{ModuleESM, ModuleWasm, ModuleText, ModuleJSON} {
		if t.String() == s {
			return t, nil
		}
	}
	return ModuleInferred, fmt.Errorf("unknown module type %q", s)
}

// Sentinel errors. Test for them with errors.Is. Each has the kind (package
// errkind) the Deploy API answers with when one reaches its caller.
var (
	// ErrNotFound means the namespace or script does not exist. To the
	// Deploy API's caller that is a state to fix (create the namespace), so
	// its kind is Precondition.
	ErrNotFound = errkind.New(errkind.Precondition, "not found in the namespace backend")
	// ErrRejected means the backend refused the request as invalid, for
	// example a script that does not parse or start.
	ErrRejected = errkind.New(errkind.Invalid, "rejected by the namespace backend")
	// ErrUnavailable means the backend could not be reached or failed
	// (network error, timeout, rate limit, server error); a retry may
	// succeed.
	ErrUnavailable = errkind.New(errkind.Unavailable, "namespace backend unavailable")
	// ErrUnauthorized means the backend refused the configured credential:
	// the platform's configuration is at fault, not the caller.
	ErrUnauthorized = errkind.New(errkind.Internal, "namespace backend refused the credential")
	// ErrUnsupported means the backend cannot do what was asked, for
	// example run a scheduled handler by request on Cloudflare.
	ErrUnsupported = errkind.New(errkind.Precondition, "not supported by the namespace backend")
)

// Error is a failed backend operation. Its message says what was attempted
// and what the backend answered; it never holds a credential.
type Error struct {
	// Op is the operation, for example "upload script gateway to namespace
	// dotdo-production".
	Op string
	// Status is the HTTP status of the backend's answer, 0 when there was
	// none.
	Status int
	// Message is what the backend said, credential-free.
	Message string
	// Sentinel is the sentinel the error wraps (ErrNotFound, ErrRejected,
	// ErrUnavailable, ErrUnauthorized), or nil.
	Sentinel error
	// Cause is an underlying error kept for errors.Is, such as
	// context.DeadlineExceeded; it is not part of the message.
	Cause error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Sentinel != nil {
		b.WriteString(e.Sentinel.Error())
	} else {
		b.WriteString("failed")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Sentinel != nil {
		errs = append(errs, e.Sentinel)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}
