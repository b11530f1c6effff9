package deploy

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dot-do/platform/internal/config"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/deploy/backend"
)

func TestBundleRoundTrip(t *testing.T) {
	w := worker{
		MainModule:         "a.js",
		CompatibilityDate:  "2025-01-01",
		CompatibilityFlags: []string{"nodejs_compat"},
		Tags:               []string{"x"},
		Modules: []backend.Module{
			{Name: "a.js", Content: []byte("export default {}"), Type: backend.ModuleESM},
			{Name: "b.wasm", Content: []byte{0, 97, 115, 109}, Type: backend.ModuleWasm},
			{Name: "c.txt", Content: []byte("\xff binary-safe"), Type: backend.ModuleText},
		},
	}
	b1, err := encodeBundle(w)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := encodeBundle(w)
	if !bytes.Equal(b1, b2) {
		t.Fatal("the encoding is not deterministic")
	}
	got, err := decodeBundle(b1)
	if err != nil {
		t.Fatal(err)
	}
	if got.MainModule != w.MainModule || got.CompatibilityDate != w.CompatibilityDate || len(got.Modules) != 3 ||
		got.Modules[1].Type != backend.ModuleWasm || !bytes.Equal(got.Modules[2].Content, w.Modules[2].Content) {
		t.Fatalf("decoded %+v", got)
	}
	for _, bad := range []string{`{`, `{"format":"other","modules":[{}]}`, `{"format":"dotdo.worker.v1"}`,
		`{"format":"dotdo.worker.v1","modules":[{"name":"a","type":"cobol"}]}`} {
		if _, err := decodeBundle([]byte(bad)); !errors.Is(err, errkind.Corrupt) {
			t.Fatalf("decode %s: %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "": "", "Bearer": "", "abc": "",
	} {
		if got := bearerToken(h); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

// TestConfigValidation: New refuses environments that config.ParseEnvironments
// would refuse, and a bad default compatibility date.
func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Environments: []config.Environment{{Name: "Prod", Namespace: "ns"}}},
		{Environments: []config.Environment{{Name: "a", Namespace: "ns"}, {Name: "b", Namespace: "ns"}}},
		{DefaultCompatibilityDate: "yesterday"},
	} {
		if _, err := New(c, nil, nil, nil); err == nil {
			t.Fatalf("New(%+v) succeeded", c)
		}
	}
}
