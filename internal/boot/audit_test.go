package boot

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dot-do/platform/internal/testsupport"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite"
)

// TestAuditKeyLifecycle: the db service keys the audit chain with a key
// kept outside the database (DataDir/audit.key, mode 0600), migrating the
// chain an earlier version left unkeyed when it creates the key; a chain
// rewritten later without the key is not re-keyed: it fails verification.
func TestAuditKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "dotdo.db")

	// An earlier version's log: unkeyed.
	old, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"deployment.create", "admin.keys.create"} {
		if _, err := old.AppendAudit(ctx, store.AuditEvent{Action: a, Actor: "key_1"}); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	dbc := DBConfig{Common: Common{DataDir: dir}}
	open := func() store.Store {
		t.Helper()
		st, err := dbc.OpenStore(ctx, testsupport.QuietLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st := open()
	fi, err := os.Stat(filepath.Join(dir, AuditKeyFile))
	if err != nil {
		t.Fatalf("no audit key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit key mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, AuditKeyFile+".new")); !os.IsNotExist(err) {
		t.Fatalf("audit.key.new left behind: %v", err)
	}
	r, err := st.VerifyAudit(ctx, nil)
	if err != nil || !r.OK || !r.Keyed || r.Checked != 3 {
		t.Fatalf("after migration VerifyAudit = %+v, %v; want 3 keyed events (2 + audit.rekey)", r, err)
	}
	head, err := st.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Someone with write access to the database, without the key, rewrites
	// the chain as an unkeyed one. A restart does not re-key it.
	raw, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := raw.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()
	forge, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "forged.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		e.Seq, e.PrevHash, e.Hash = 0, "", ""
		if e.Action == "deployment.create" {
			e.Actor = "key_mallory"
		}
		if _, err := forge.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	forge.Close()
	copyFile(t, forge.Path(), dbPath)
	os.Remove(dbPath + "-wal")
	os.Remove(dbPath + "-shm")

	st = open()
	if r, err := st.VerifyAudit(ctx, nil); err != nil || r.OK {
		t.Fatalf("a chain rewritten without the key verified after a restart: %+v, %v", r, err)
	}
	if r, err := st.VerifyAudit(ctx, &head); err != nil || r.OK {
		t.Fatalf("the exported head verified against a forged chain: %+v, %v", r, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDataDirPermissions: a service warns at start when its data directory
// is open to other users, and the database it creates there is 0600.
func TestDataDirPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := Common{DataDir: dir}
	c.checkDataDir(logger)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "chmod 700") {
		t.Fatalf("no warning for a 0755 data directory: %q", logs.String())
	}
	dbc := DBConfig{Common: c}
	st, err := dbc.OpenStore(context.Background(), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, f := range []string{"dotdo.db", AuditKeyFile, CredentialsDir} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if f == CredentialsDir {
			if err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %v", f, fi.Mode().Perm())
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", f, fi.Mode().Perm())
		}
	}
	logs.Reset()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c.checkDataDir(logger)
	if logs.Len() != 0 {
		t.Fatalf("a warning for a 0700 data directory: %q", logs.String())
	}
}
