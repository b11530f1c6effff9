package credential_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dot-do/platform/internal/credential"
)

// TestLoadOrCreateConcurrent: processes starting at once agree on one
// credential, and the file is 0600.
func TestLoadOrCreateConcurrent(t *testing.T) {
	for round := range 50 {
		path := filepath.Join(t.TempDir(), "sub", "internal.token")
		var wg sync.WaitGroup
		got := make([]string, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Go(func() { got[i], errs[i] = credential.LoadOrCreate(path) })
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i] != got[0] || got[i] == "" {
				t.Fatalf("round %d: caller %d got %q, %v; caller 0 got %q", round, i, got[i], errs[i], got[0])
			}
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("credential file: %v, mode %v", err, st.Mode())
		}
	}
}
