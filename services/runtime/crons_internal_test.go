package runtime

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime/scripts"
	"github.com/dot-do/platform/services/runtime/workerd"
)

// TestDueCrons checks which cron triggers the runner fires at a minute.
func TestDueCrons(t *testing.T) {
	if _, err := workerd.FindBinary("", ""); err != nil {
		t.Skipf("skipping: the runtime needs workerd: %v", err)
	}
	rt, err := New(context.Background(), Config{DataDir: t.TempDir(), APIToken: "t", InvokeToken: "i", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.store.CreateNamespace("ns"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		d := scripts.Draft{MainModule: "w.js", CompatibilityDate: "2025-01-01", Modules: []scripts.Module{{
			ModuleInfo: scripts.ModuleInfo{Name: "w.js", Type: scripts.ModuleESM}, Content: []byte("export default {}")}}}
		if _, err := rt.store.PutVersion("ns", name, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rt.store.SetCrons("ns", "a", []string{"*/5 * * * *", "0 12 * * *"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.store.SetCrons("ns", "b", []string{"0 12 * * *"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	want := []cronJob{{"ns", "a", "*/5 * * * *"}, {"ns", "a", "0 12 * * *"}, {"ns", "b", "0 12 * * *"}}
	if got := rt.dueCrons(at); !reflect.DeepEqual(got, want) {
		t.Fatalf("due at %v: %v, want %v", at, got, want)
	}
	if got := rt.dueCrons(at.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("due a minute later: %v", got)
	}
}
