package dataplane

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// sizes are the sizes of one run: small ones for CI, full ones with
// SCALE=full.
type sizes struct {
	full bool
	// live are the numbers of live workers the routing part measures.
	live []int
	// changes is the number of deploys and of table changes timed.
	changes int
	// cold* drive the cold-start part: deployed workers, requests,
	// concurrent clients, idle timeout.
	coldWorkers, coldRequests, clients int
	idle                               time.Duration
	// active is the number of workers kept active at once to measure
	// what each costs.
	active int
	// burst is the number of cold workers sent their first request at
	// once.
	burst int
}

func scaleSizes() sizes {
	if os.Getenv("SCALE") == "full" {
		return sizes{full: true, live: []int{10, 1000, 10000}, changes: 50,
			coldWorkers: 1000, coldRequests: 3000, clients: 16, idle: 2 * time.Second, active: 300, burst: 200}
	}
	if os.Getenv("SCALE") == "zipf" { // a quicker look at the Zipf spread alone
		return sizes{coldWorkers: 200, coldRequests: 1500, clients: 16, idle: 2 * time.Second}
	}
	return sizes{live: []int{10, 20}, changes: 5,
		coldWorkers: 12, coldRequests: 60, clients: 4, idle: 300 * time.Millisecond, active: 6, burst: 8}
}

// quiet returns the logger of the services under test: nothing, or their
// warnings and errors on stderr with SCALE_LOG=1.
func quiet() *slog.Logger {
	if os.Getenv("SCALE_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// percentile returns the p-th percentile (0 < p <= 1) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// report collects the rows of a Markdown table and logs it.
type report struct {
	title string
	head  []string
	rows  [][]string
}

func (r *report) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	r.rows = append(r.rows, row)
}

func (r *report) log(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n\n| %s |\n|%s\n", r.title, strings.Join(r.head, " | "), strings.Repeat("---|", len(r.head)))
	for _, row := range r.rows {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
	}
	t.Log(b.String())
}

// TestScale runs both parts at the sizes of scaleSizes (see the package
// documentation).
func TestScale(t *testing.T) {
	sz := scaleSizes()
	t.Run("routing", func(t *testing.T) { testRouting(t, sz) })
	t.Run("coldstart", func(t *testing.T) { testColdStart(t, sz) })
}
