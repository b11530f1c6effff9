package workerd

import (
	"errors"
	"time"
)

// ErrNotFound is returned by a Source for a version that does not exist.
var ErrNotFound = errors.New("worker not found")

// Module types, as the runtime's store names them.
const (
	ModuleESM       = "js"
	ModuleCommonJS  = "cjs"
	ModuleText      = "text"
	ModuleData      = "data"
	ModuleJSON      = "json"
	ModuleWasm      = "wasm"
	ModuleSourceMap = "sourcemap"
)

// Module is one module of a Bundle.
type Module struct {
	// Name is the module name other modules import.
	Name string
	// Type is one of the Module* constants. Source maps are not loaded.
	Type string
	// Content is the module's bytes.
	Content []byte
}

// BindingKind is what a Binding puts into the worker's env.
type BindingKind int

// The binding kinds.
const (
	// BindingText is a string.
	BindingText BindingKind = iota
	// BindingJSON is a parsed JSON value; Value holds the JSON text.
	BindingJSON
	// BindingSecret is a string that is never written to disk: the
	// process gets it in its environment.
	BindingSecret
	// BindingService is a Fetcher whose fetch reaches the live version of
	// the script named by Value in the same namespace (a service binding).
	BindingService
)

// Binding is one entry of a worker's env.
type Binding struct {
	// Name is the env key (a JavaScript identifier).
	Name string
	// Kind is what the binding is.
	Kind BindingKind
	// Value is the text, the JSON text, the secret or the target script.
	// Secret values are never logged.
	Value string
}

// Limits bound one invocation of a worker, as Cloudflare's limits do.
type Limits struct {
	// CPU is the CPU time one invocation may use (the supervisor's
	// default when zero).
	CPU time.Duration
	// MemoryMB is the memory of the worker's isolate in MiB (the
	// supervisor's default when zero).
	MemoryMB int
}

// Bundle is one worker version as a workerd process serves it.
type Bundle struct {
	// CompatibilityDate is the worker's compatibility date.
	CompatibilityDate string
	// CompatibilityFlags are the worker's compatibility flags.
	CompatibilityFlags []string
	// MainModule names the entry module.
	MainModule string
	// Modules are the worker's modules.
	Modules []Module
	// Bindings are the worker's env: vars, secrets, service bindings.
	Bindings []Binding
	// Limits bound each invocation.
	Limits Limits
}

// Source gives the supervisor the bundle of a worker version when it
// starts a process for it.
type Source interface {
	// Bundle returns the bundle of namespace/script@version with the
	// script's current secrets, or an error wrapping ErrNotFound.
	Bundle(namespace, script string, version int64) (*Bundle, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(namespace, script string, version int64) (*Bundle, error)

// Bundle calls f.
func (f SourceFunc) Bundle(namespace, script string, version int64) (*Bundle, error) {
	return f(namespace, script, version)
}
