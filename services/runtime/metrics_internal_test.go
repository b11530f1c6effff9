package runtime

import (
	"fmt"
	"testing"
	"time"

	"github.com/dot-do/platform/services/runtime/workerd"
)

// cachedSets counts the attribute sets m caches.
func cachedSets(m *metrics) int {
	n := 0
	m.attrs.Range(func(_, _ any) bool { n++; return true })
	return n
}

// TestMetricsForgetDeletedWorkers invokes 1,000 workers in two namespaces,
// then deletes all but 10 of them (most one by one, the rest with their
// namespace): the cached attribute sets are those of the 10 live workers.
func TestMetricsForgetDeletedWorkers(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, kept = 1000, 10
	for i := range workers {
		ns := "a"
		if i >= workers/2 {
			ns = "b"
		}
		m.invocation(workerd.Invocation{Key: workerd.Key{Namespace: ns, Script: fmt.Sprintf("w%d", i), Version: 1},
			Outcome: workerd.OutcomeOK, Duration: time.Millisecond})
	}
	perWorker := len(Outcomes) + 1
	if n := cachedSets(m); n != workers*perWorker {
		t.Fatalf("%d attribute sets cached for %d workers, want %d", n, workers, workers*perWorker)
	}
	for i := kept; i < workers/2; i++ {
		m.forget("a", fmt.Sprintf("w%d", i))
	}
	m.forgetNamespace("b")
	if n := cachedSets(m); n != kept*perWorker {
		t.Fatalf("%d attribute sets cached after deleting all but %d workers, want %d", n, kept, kept*perWorker)
	}
}
