package scripts

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// grepDir fails t when any file under dir holds needle.
func grepDir(t *testing.T, dir, needle string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			t.Errorf("%s holds the secret value", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecretsSealedAtRest: values are sealed in script.json under a 0600
// key file created by the first put, open again after a reopen, are bound
// to their secret, and plain secrets of an older runtime are sealed on
// open.
func TestSecretsSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openApp(t, dir)
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("key file before the first secret: %v", err)
	}
	const marker = "sealed-marker-9f3a"
	if err := s.PutSecret("ns", "app", "API_KEY", marker); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != keyLen {
		t.Fatalf("key file: %v %v", fi, err)
	}
	grepDir(t, dir, marker)
	// A secret_text binding of an upload is sealed too, in the version
	// file and in script.json.
	d := draft("v2")
	d.Bindings = []Binding{{Name: "BOUND", Type: BindingSecretText, Text: "binding-marker-31"}, {Name: "PLAIN", Type: BindingPlainText, Text: "visible"}}
	if _, err := s.PutVersion("ns", "app", d); err != nil {
		t.Fatal(err)
	}
	grepDir(t, dir, "binding-marker-31")
	_ = s.Close()

	s = open(t, dir)
	sc, err := s.Script("ns", "app")
	if err != nil || len(sc.Current.Bindings) != 2 || sc.Current.Bindings[0].Text != "binding-marker-31" || sc.Current.Bindings[1].Text != "visible" {
		t.Fatalf("current bindings after reopen: %v", err)
	}
	v, err := s.Version("ns", "app", sc.Current.Number)
	if err != nil || v.Bindings[0].Text != "binding-marker-31" {
		t.Fatalf("version bindings: %v", err)
	}
	_ = s.Close()

	s = open(t, dir)
	got, gen, err := s.Secrets("ns", "app")
	if err != nil || got["API_KEY"] != marker || gen != 1 {
		t.Fatalf("after reopen: %v %d %v", len(got), gen, err)
	}
	// A sealed value moved to another secret does not open.
	b, _ := os.ReadFile(s.scriptPath("ns", "app"))
	if !strings.Contains(string(b), `"sealed_secrets"`) {
		t.Fatalf("script.json has no sealed secrets: %s", b)
	}
	ss := s.ns["ns"].scripts["app"]
	ss.file.Secrets["OTHER"] = ss.file.Secrets["API_KEY"]
	if _, _, err := s.Secrets("ns", "app"); !errors.Is(err, ErrSealed) {
		t.Fatalf("moved value opened: %v", err)
	}
	delete(ss.file.Secrets, "OTHER")
	_ = s.Close()

	// A plain secret of an older runtime is sealed when the store opens.
	path := filepath.Join(dir, "namespaces", "ns", "scripts", "app", "script.json")
	b, _ = os.ReadFile(path)
	b = bytes.Replace(b, []byte(`"secrets_generation"`), []byte(`"secrets":{"OLD":"plain-marker-77"},"secrets_generation"`), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	grepDir(t, dir, "plain-marker-77")
	got, _, err = s.Secrets("ns", "app")
	if err != nil || got["OLD"] != "plain-marker-77" || got["API_KEY"] != marker {
		t.Fatalf("after migration: %d %v", len(got), err)
	}
}
