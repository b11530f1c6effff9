package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestMetricsForgetRemovedWorkers records requests for 1,000 workers, then
// forgets the 990 a routing table dropped: the cached attribute sets are
// those of the 10 left.
func TestMetricsForgetRemovedWorkers(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, kept = 1000, 10
	var removed []string
	for i := range workers {
		w := fmt.Sprintf("w%d", i)
		m.request(context.Background(), w, 200, time.Millisecond)
		m.request(context.Background(), w, 500, time.Millisecond)
		if i >= kept {
			removed = append(removed, w)
		}
	}
	m.forget(removed)
	n := 0
	m.attrs.Range(func(_, _ any) bool { n++; return true })
	if n != 2*kept {
		t.Fatalf("%d attribute sets cached after 990 of 1,000 workers left the table, want %d", n, 2*kept)
	}
}
