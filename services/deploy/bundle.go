package deploy

import (
	"encoding/json"
	"fmt"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/deploy/backend"
)

// bundleFormat names the encoding of a stored worker.
const bundleFormat = "dotdo.worker.v1"

// bundle is how a worker is stored: one JSON document holding every module
// (name, resolved type, content in base64), the main module and the
// settings, so that a rollback re-uploads exactly what was deployed. The
// encoding is deterministic: fields in a fixed order, modules, flags and
// tags in the order of the request, so the same worker always has the same
// SHA-256 address.
type bundle struct {
	Format             string         `json:"format"`
	MainModule         string         `json:"main_module"`
	CompatibilityDate  string         `json:"compatibility_date"`
	CompatibilityFlags []string       `json:"compatibility_flags,omitempty"`
	Tags               []string       `json:"tags,omitempty"`
	Modules            []bundleModule `json:"modules"`
}

type bundleModule struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Content []byte `json:"content"`
}

func encodeBundle(w worker) ([]byte, error) {
	b := bundle{
		Format:             bundleFormat,
		MainModule:         w.MainModule,
		CompatibilityDate:  w.CompatibilityDate,
		CompatibilityFlags: w.CompatibilityFlags,
		Tags:               w.Tags,
		Modules:            make([]bundleModule, len(w.Modules)),
	}
	for i, m := range w.Modules {
		b.Modules[i] = bundleModule{Name: m.Name, Type: m.Type.Resolve(m.Name).String(), Content: m.Content}
	}
	return json.Marshal(b)
}

func decodeBundle(data []byte) (worker, error) {
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return worker{}, fmt.Errorf("decode script bundle: %v: %w", err, errkind.Corrupt)
	}
	if b.Format != bundleFormat {
		return worker{}, fmt.Errorf("script bundle has format %q, want %q: %w", b.Format, bundleFormat, errkind.Corrupt)
	}
	if len(b.Modules) == 0 {
		return worker{}, fmt.Errorf("script bundle has no modules: %w", errkind.Corrupt)
	}
	w := worker{
		MainModule:         b.MainModule,
		CompatibilityDate:  b.CompatibilityDate,
		CompatibilityFlags: b.CompatibilityFlags,
		Tags:               b.Tags,
		Modules:            make([]backend.Module, len(b.Modules)),
	}
	for i, m := range b.Modules {
		t, err := backend.ParseModuleType(m.Type)
		if err != nil {
			return worker{}, fmt.Errorf("script bundle module %q: %v: %w", m.Name, err, errkind.Corrupt)
		}
		w.Modules[i] = backend.Module{Name: m.Name, Content: m.Content, Type: t}
	}
	return w, nil
}
