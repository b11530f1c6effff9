package scripts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
)

func draft(code string) Draft {
	return Draft{
		MainModule:        "worker.js",
		CompatibilityDate: "2025-01-01",
		Modules:           []Module{{ModuleInfo: ModuleInfo{Name: "worker.js", ContentType: "application/javascript+module"}, Content: []byte(code)}},
	}
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestVersionsPersistAndNeverRepeat(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.CreateNamespace("ns"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		sc, err := s.PutVersion("ns", "app", draft("v"+string(rune('0'+i))))
		if err != nil || sc.Current.Number != int64(i) {
			t.Fatalf("put %d: %+v %v", i, sc.Current, err)
		}
	}
	if err := s.PutSecret("ns", "app", "K", "value"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTags("ns", "app", []string{"t1"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	s = open(t, dir)
	sc, err := s.Script("ns", "app")
	if err != nil || !slices.Equal(sc.Versions, []int64{1, 2, 3}) || !slices.Equal(sc.Tags, []string{"t1"}) || !slices.Equal(sc.SecretNames, []string{"K"}) {
		t.Fatalf("after reopen: %+v %v", sc, err)
	}
	v, err := s.Version("ns", "app", 2)
	if err != nil || string(v.Contents[0]) != "v2" || v.Number != 2 {
		t.Fatalf("version 2: %+v %v", v, err)
	}
	if gen, ok := s.Lookup("ns", "app", 3); !ok || gen != 1 {
		t.Fatalf("lookup: %d %v", gen, ok)
	}
	if _, ok := s.Lookup("ns", "app", 4); ok {
		t.Fatal("lookup of a missing version succeeded")
	}
	if err := s.DeleteScript("ns", "app"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = open(t, dir)
	sc, err = s.PutVersion("ns", "app", draft("again"))
	if err != nil || sc.Current.Number != 4 || len(sc.SecretNames) != 0 {
		t.Fatalf("re-created script: %+v %v", sc, err)
	}
}

// openApp opens the store in dir with the namespace "ns" holding version
// 1 of the script "app".
func openApp(t *testing.T, dir string) *Store {
	t.Helper()
	s := open(t, dir)
	if _, err := s.CreateNamespace("ns"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutVersion("ns", "app", draft("v1")); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenCleansInterruptedWrites(t *testing.T) {
	dir := t.TempDir()
	s := openApp(t, dir)
	_ = s.Close()

	// A version renamed into place whose script.json was never updated
	// (crash between the two), a half-written temporary, a script whose
	// first upload never finished, a namespace whose creation never did.
	vdir := filepath.Join(dir, "namespaces", "ns", "scripts", "app", "versions")
	testsupport.WriteFile(t, filepath.Join(vdir, "7.json"), `{"format":1}`, 0o600)
	testsupport.WriteFile(t, filepath.Join(vdir, ".tmp-123"), `{"form`, 0o600)
	testsupport.WriteFile(t, filepath.Join(dir, "namespaces", "ns", "scripts", "half", "versions", "1.json"), `{}`, 0o600)
	if err := os.MkdirAll(filepath.Join(dir, "namespaces", "halfns", "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, filepath.Join(dir, "tmp", "trash-1", "x"), "x", 0o600)

	s = open(t, dir)
	for _, p := range []string{
		filepath.Join(vdir, "7.json"), filepath.Join(vdir, ".tmp-123"),
		filepath.Join(dir, "namespaces", "ns", "scripts", "half"),
		filepath.Join(dir, "namespaces", "halfns"), filepath.Join(dir, "tmp", "trash-1"),
	} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", p, err)
		}
	}
	if _, err := s.Script("ns", "half"); !errors.Is(err, ErrScriptNotFound) {
		t.Errorf("incomplete script is visible: %v", err)
	}
	if len(s.Namespaces()) != 1 {
		t.Errorf("namespaces: %+v", s.Namespaces())
	}
	// The orphan's number stays burned.
	sc, err := s.PutVersion("ns", "app", draft("v8"))
	if err != nil || sc.Current.Number != 8 {
		t.Fatalf("next version after orphan 7: %+v %v", sc.Current, err)
	}
	if sc.Versions[0] != 1 || len(sc.Versions) != 2 {
		t.Fatalf("versions: %v", sc.Versions)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	_ = s.Close()
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = s2.Close()
	if _, err := s2.CreateNamespace("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestModuleNames(t *testing.T) {
	for _, n := range []string{"worker.js", "src/lib/util.mjs", "a b.txt", "x.wasm"} {
		if !ValidModuleName(n) {
			t.Errorf("ValidModuleName(%q) = false", n)
		}
	}
	for _, n := range []string{"", "/abs.js", "../x.js", "a/../b.js", "a//b.js", "./a.js", "a\\b.js", "a\nb.js", "a/"} {
		if ValidModuleName(n) {
			t.Errorf("ValidModuleName(%q) = true", n)
		}
	}
}

func TestValidateDraftMainModuleType(t *testing.T) {
	d := draft("export default {}")
	d.Modules[0].ContentType = "application/javascript"
	if err := ValidateDraft(&d); err != nil || d.Modules[0].Type != ModuleESM {
		t.Fatalf("main module as application/javascript: %v %q", err, d.Modules[0].Type)
	}
	d = draft("export default {}")
	d.Modules = append(d.Modules, Module{ModuleInfo: ModuleInfo{Name: "bad.js", ContentType: "application/javascript"}, Content: []byte{0xff, 0xfe}})
	if err := ValidateDraft(&d); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8 module: %v", err)
	}
}

func TestEtagHidesSecrets(t *testing.T) {
	a := VersionInfo{MainModule: "w.js", Bindings: []Binding{{Name: "S", Type: BindingSecretText, Text: "one"}}}
	b := VersionInfo{MainModule: "w.js", Bindings: []Binding{{Name: "S", Type: BindingSecretText, Text: "two"}}}
	if Etag(a, nil) != Etag(b, nil) {
		t.Fatal("the etag depends on a secret value")
	}
	c := VersionInfo{MainModule: "w.js", Bindings: []Binding{{Name: "S", Type: BindingPlainText, Text: "one"}}}
	if Etag(a, nil) == Etag(c, nil) {
		t.Fatal("the etag ignores binding types")
	}
}

// TestPinnedVersion: a dotdo-version tag sets the version number, which must
// rise; untagged uploads continue from the last number.
func TestPinnedVersion(t *testing.T) {
	s := open(t, t.TempDir())
	if _, err := s.CreateNamespace("ns"); err != nil {
		t.Fatal(err)
	}
	put := func(tags ...string) (int64, error) {
		d := draft("export default {}")
		d.Tags = tags
		sc, err := s.PutVersion("ns", "w", d)
		return sc.Current.Number, err
	}
	for _, c := range []struct {
		tags []string
		want int64
	}{{[]string{"dotdo-version=3"}, 3}, {nil, 4}, {[]string{"x", "dotdo-version=9"}, 9}} {
		got, err := put(c.tags...)
		if err != nil || got != c.want {
			t.Fatalf("put %v = %d, %v; want %d", c.tags, got, err, c.want)
		}
	}
	// The same upload again (a retry) is idempotent; other content is not.
	if got, err := put("x", "dotdo-version=9"); err != nil || got != 9 {
		t.Fatalf("retried upload = %d, %v; want 9", got, err)
	}
	other := draft("export default { fetch() { return new Response('other') } }")
	other.Tags = []string{"dotdo-version=9"}
	if _, err := s.PutVersion("ns", "w", other); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("pinned version 9 again with other content: %v, want ErrVersionConflict", err)
	}
}

// TestPinnedRetryAfterBurnedVersion: when a crash burned version N (its file
// landed, the script's record did not), a retried upload of N with the
// current content must not pass for stored.
func TestPinnedRetryAfterBurnedVersion(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.CreateNamespace("ns"); err != nil {
		t.Fatal(err)
	}
	d := draft("export default {}")
	d.Tags = []string{"dotdo-version=1"}
	if _, err := s.PutVersion("ns", "w", d); err != nil {
		t.Fatal(err)
	}
	// Simulate the burn: the script's last version says 2, current is 1.
	sc, err := s.Script("ns", "w")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Current.Number != 1 {
		t.Fatalf("current = %d", sc.Current.Number)
	}
	st := s.ns["ns"].scripts["w"]
	st.file.LastVersion = 2
	d.Tags = []string{"dotdo-version=2"}
	got, err := s.PutVersion("ns", "w", d)
	if err == nil && got.Current.Number != 2 {
		t.Fatalf("retry of burned version 2 answered current=%d without storing 2", got.Current.Number)
	}
}
