package control

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// indexes0005 are the deployments indexes of migration 0005, dropped with
// SCALE_WITHOUT_0005=1 to measure the curve they fix.
var indexes0005 = []string{"deployments_env_seq", "deployments_env_status_seq", "deployments_service_status_seq", "deployments_env_service_status_seq"}

func testHistoryCurve(t *testing.T, sz sizes) {
	pgtest.Require(t)
	without := os.Getenv("SCALE_WITHOUT_0005") == "1"
	title := "History queries vs table size (PostgreSQL, store API, page size 50)"
	if without {
		title += ", WITHOUT the indexes of migration 0005"
	}
	tb := newTable(t, title, "rows", "query", "p50 ms", "p99 ms")
	seeds := newTable(t, "History seeding (COPY + ANALYZE)", "rows", "seconds", "rows/s")
	for _, n := range sz.rows {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := t.Context()
			h := pgtest.Open(t)
			hist := storetest.History{Rows: n, Environments: []string{"production", "staging", "development"}, Services: 1000, Start: time.Now().Add(-time.Duration(n) * time.Millisecond)}
			var ids []string
			start := time.Now()
			if err := h.CopyDeployments(ctx, hist, max(1, n/1000), func(d store.Deployment) { ids = append(ids, d.ID) }); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			seeds.add(n, fmt.Sprintf("%.1f", took.Seconds()), fmt.Sprintf("%.0f", float64(n)/took.Seconds()))
			if without {
				for _, ix := range indexes0005 {
					if _, err := h.ExecSQL(ctx, "DROP INDEX "+ix); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A token from the middle of the table, found by paging there.
			deep := store.ListFilter{PageSize: store.MaxPageSize}
			for range n / 2 / store.MaxPageSize {
				items, next, err := h.ListDeployments(ctx, deep)
				if err != nil || next == "" || len(items) != store.MaxPageSize {
					t.Fatalf("paging to the middle: %d items, next %q, %v", len(items), next, err)
				}
				deep.PageToken = next
			}
			deep.PageSize = 0
			shapes := append(storetest.HistoryShapes[:len(storetest.HistoryShapes):len(storetest.HistoryShapes)],
				struct {
					Name   string
					Filter store.ListFilter
				}{"deep page by token (middle of the table)", deep})
			for _, sh := range shapes {
				lat := timeN(t, sz.queries, func(int) error {
					items, _, err := h.ListDeployments(ctx, sh.Filter)
					if err == nil && len(items) == 0 && sh.Filter.Status != store.StatusPending {
						err = fmt.Errorf("%s: empty page", sh.Name)
					}
					return err
				})
				tb.add(n, "ListDeployments "+sh.Name, ms(lat.pct(0.5)), ms(lat.pct(0.99)))
			}
			lat := timeN(t, sz.queries, func(i int) error {
				id := ids[(i*7919)%len(ids)]
				d, err := h.GetDeployment(ctx, id)
				if err == nil && d.ID != id {
					err = fmt.Errorf("GetDeployment(%s) returned %s", id, d.ID)
				}
				return err
			})
			tb.add(n, "GetDeployment", ms(lat.pct(0.5)), ms(lat.pct(0.99)))
		})
	}
}
