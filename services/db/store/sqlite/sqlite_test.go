package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/sqlite"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/db/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return sqlitetest.Open(t) })
}

func TestOpenCreatesDirectoryAndUsesWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".dotdo", "dotdo.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file next to the database: %v", err)
	}
}

func TestOpenRejectsNonPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := sqlite.Open(context.Background(), p); !errors.Is(err, errkind.Invalid) {
			t.Errorf("Open(%q) = %v, want errkind.Invalid", p, err)
		}
	}
}

// TestDatabaseFilesArePrivate: the database and its WAL and shared-memory
// files are 0600 whatever the umask, and files an earlier version left
// readable by others are made private when opened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dotdo.db")
	check := func() {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v, want 0600", filepath.Base(p), fi.Mode().Perm())
			}
		}
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAudit(ctx, store.AuditEvent{Action: "x"}); err != nil {
		t.Fatal(err)
	}
	check()
	db.Close()

	// An earlier version's files, 0644.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err == nil {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AppendAudit(ctx, store.AuditEvent{Action: "y"}); err != nil {
		t.Fatal(err)
	}
	check()
}
