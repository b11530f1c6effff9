package workerd

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotFound is returned by a Source for a version that does not exist.
var ErrNotFound = errors.New("worker not found")

// Module is one module of a Bundle.
type Module struct {
	// Name is the module name other modules import.
	Name string
	// Type is the Worker Loader module type: js, cjs, text, data, json or
	// wasm. Modules of any other type (source maps) are not loaded.
	Type string
	// Content is the module's bytes.
	Content []byte
}

// Bundle is what the Worker Loader needs to start one worker version.
type Bundle struct {
	// CompatibilityDate is the worker's compatibility date.
	CompatibilityDate string
	// CompatibilityFlags are the worker's compatibility flags.
	CompatibilityFlags []string
	// MainModule names the entry module.
	MainModule string
	// Modules are the worker's modules.
	Modules []Module
	// Env is the worker's env: each value is JSON (a string for text and
	// secret bindings). Values are secrets: never log them.
	Env map[string]json.RawMessage
}

// Source gives the supervisor the bundle of a worker version when a workerd
// process loads it for the first time.
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

// encode renders b as the JSON WorkerCode object the router hands to
// env.LOADER.get: binary modules are base64 strings the router decodes.
func (b *Bundle) encode() ([]byte, error) {
	mods := make(map[string]map[string]any, len(b.Modules))
	for _, m := range b.Modules {
		var v any
		switch m.Type {
		case "js", "cjs", "text":
			v = string(m.Content)
		case "json":
			if !json.Valid(m.Content) {
				return nil, fmt.Errorf("module %q is not valid JSON", m.Name)
			}
			v = json.RawMessage(m.Content)
		case "data", "wasm":
			v = base64.StdEncoding.EncodeToString(m.Content)
		default:
			continue
		}
		mods[m.Name] = map[string]any{m.Type: v}
	}
	env := b.Env
	if env == nil {
		env = map[string]json.RawMessage{}
	}
	flags := b.CompatibilityFlags
	if flags == nil {
		flags = []string{}
	}
	return json.Marshal(struct {
		CompatibilityDate  string                     `json:"compatibilityDate"`
		CompatibilityFlags []string                   `json:"compatibilityFlags"`
		MainModule         string                     `json:"mainModule"`
		Modules            map[string]map[string]any  `json:"modules"`
		Env                map[string]json.RawMessage `json:"env"`
	}{b.CompatibilityDate, flags, b.MainModule, mods, env})
}
