package scripts

import (
	"encoding/json"
	"errors"
	"time"
)

// Errors returned by the store. Callers match them with errors.Is.
var (
	// ErrNamespaceNotFound means the dispatch namespace does not exist.
	ErrNamespaceNotFound = errors.New("dispatch namespace not found")
	// ErrNamespaceExists means a namespace of that name already exists.
	ErrNamespaceExists = errors.New("dispatch namespace already exists")
	// ErrScriptNotFound means the script does not exist in the namespace.
	ErrScriptNotFound = errors.New("script not found")
	// ErrVersionNotFound means the script has no such version.
	ErrVersionNotFound = errors.New("script version not found")
	// ErrSecretNotFound means the script has no secret of that name.
	ErrSecretNotFound = errors.New("secret not found")
	// ErrInvalid means an argument failed validation; nothing was written.
	ErrInvalid = errors.New("invalid argument")
	// ErrVersionConflict is returned when an upload pins a version number
	// (see VersionTag) that is not above the script's last version.
	ErrVersionConflict = errors.New("script version conflict")
	// ErrLocked means another process holds the data directory.
	ErrLocked = errors.New("data directory is in use by another process")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store is closed")
)

// ModuleType is how workerd loads a module.
type ModuleType string

// Module types, named as workerd's Worker Loader names them.
const (
	// ModuleESM is an ES module (application/javascript+module).
	ModuleESM ModuleType = "js"
	// ModuleCommonJS is a CommonJS module (application/javascript).
	ModuleCommonJS ModuleType = "cjs"
	// ModuleText is a text module whose default export is a string.
	ModuleText ModuleType = "text"
	// ModuleData is a binary module whose default export is an ArrayBuffer.
	ModuleData ModuleType = "data"
	// ModuleJSON is a JSON module whose default export is the parsed value.
	ModuleJSON ModuleType = "json"
	// ModuleWasm is a WebAssembly module.
	ModuleWasm ModuleType = "wasm"
	// ModuleSourceMap is a source map: stored and returned, never loaded.
	ModuleSourceMap ModuleType = "sourcemap"
)

// Binding types the local runtime supports.
const (
	// BindingPlainText puts a string into env.
	BindingPlainText = "plain_text"
	// BindingJSON puts a JSON value into env.
	BindingJSON = "json"
	// BindingSecretText puts a string into env; its value is never echoed.
	BindingSecretText = "secret_text"
	// BindingService puts a Fetcher into env whose fetch reaches the live
	// version of the script named by Service in the same namespace.
	BindingService = "service"
)

// Binding is one entry of a version's env.
type Binding struct {
	// Name is the env key.
	Name string `json:"name"`
	// Type is one of BindingPlainText, BindingJSON, BindingSecretText,
	// BindingService.
	Type string `json:"type"`
	// Text is the value of plain_text and secret_text bindings.
	Text string `json:"text,omitempty"`
	// JSON is the value of json bindings.
	JSON json.RawMessage `json:"json,omitempty"`
	// Service is the target script of service bindings.
	Service string `json:"service,omitempty"`
}

// Limits are a version's limits per invocation, as Cloudflare's script
// metadata names them.
type Limits struct {
	// CPUMs is the CPU time one invocation may use, in milliseconds (the
	// runtime's default when zero).
	CPUMs int64 `json:"cpu_ms,omitempty"`
}

// MaxCPUMs is the largest CPU limit a script may ask for: Cloudflare's
// five minutes.
const MaxCPUMs = 300_000

// ModuleInfo describes one module of a version without its content.
type ModuleInfo struct {
	// Name is the module's file name, as imported by other modules.
	Name string `json:"name"`
	// ContentType is the MIME type it was uploaded with.
	ContentType string `json:"content_type"`
	// Type is how workerd loads it.
	Type ModuleType `json:"type"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
}

// Module is one module of a version with its content.
type Module struct {
	ModuleInfo
	// Content is the module's bytes.
	Content []byte `json:"content"`
}

// VersionInfo is a version's metadata, without module contents.
type VersionInfo struct {
	// Number is the version number: per script, from 1, never reused.
	Number int64 `json:"number"`
	// CreatedOn is when the version was uploaded.
	CreatedOn time.Time `json:"created_on"`
	// MainModule names the entry module.
	MainModule string `json:"main_module"`
	// CompatibilityDate is the workerd compatibility date.
	CompatibilityDate string `json:"compatibility_date"`
	// CompatibilityFlags are the workerd compatibility flags.
	CompatibilityFlags []string `json:"compatibility_flags,omitempty"`
	// Bindings are the version's env bindings.
	Bindings []Binding `json:"bindings,omitempty"`
	// Crons are the cron triggers of the current version (see
	// Store.SetCrons); a new version starts without any.
	Crons []string `json:"crons,omitempty"`
	// Logpush is stored and echoed only.
	Logpush bool `json:"logpush,omitempty"`
	// UsageModel is stored and echoed only.
	UsageModel string `json:"usage_model,omitempty"`
	// Limits bound each invocation.
	Limits Limits `json:"limits,omitzero"`
	// Modules lists the modules.
	Modules []ModuleInfo `json:"modules"`
	// Size is the total size of the modules in bytes.
	Size int64 `json:"size"`
	// Etag is a hex SHA-256 over the version's modules and configuration.
	Etag string `json:"etag"`
	// StartupTimeMs is how long the upload's trial start took.
	StartupTimeMs int64 `json:"startup_time_ms,omitempty"`
}

// Version is a version with its module contents.
type Version struct {
	VersionInfo
	// Contents holds the bytes of each module, index-aligned with Modules.
	Contents [][]byte `json:"-"`
}

// Draft is a new version to store.
type Draft struct {
	// MainModule names the entry module; it must be one of Modules.
	MainModule string
	// CompatibilityDate is the workerd compatibility date (YYYY-MM-DD).
	CompatibilityDate string
	// CompatibilityFlags are the workerd compatibility flags.
	CompatibilityFlags []string
	// Bindings are the env bindings.
	Bindings []Binding
	// Modules are the modules with their contents.
	Modules []Module
	// Tags, when non-nil, replace the script's tags; nil keeps them.
	Tags []string
	// Logpush is stored and echoed only.
	Logpush bool
	// UsageModel is stored and echoed only.
	UsageModel string
	// Limits bound each invocation.
	Limits Limits
	// StartupTimeMs records how long the trial start took.
	StartupTimeMs int64
}

// Namespace describes a dispatch namespace.
type Namespace struct {
	// ID is a random UUID given at creation.
	ID string
	// Name is the namespace name.
	Name string
	// CreatedOn is when it was created.
	CreatedOn time.Time
	// ModifiedOn is when it or one of its scripts last changed.
	ModifiedOn time.Time
	// ScriptCount is the number of scripts in it.
	ScriptCount int
}

// Script describes a script and its current version.
type Script struct {
	// Namespace is the namespace holding the script.
	Namespace string
	// Name is the script name.
	Name string
	// CreatedOn is when the script was first uploaded.
	CreatedOn time.Time
	// ModifiedOn is when the script last changed.
	ModifiedOn time.Time
	// Versions lists the stored version numbers, ascending.
	Versions []int64
	// Tags are the script's tags.
	Tags []string
	// SecretNames lists the script's secrets, sorted.
	SecretNames []string
	// SecretsGeneration changes whenever a secret is put or deleted.
	SecretsGeneration uint64
	// Current is the newest version's metadata.
	Current VersionInfo
}
