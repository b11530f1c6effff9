package postgres_test

import (
	"strings"
	"testing"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
	"github.com/dot-do/platform/services/db/store/postgres/pgtest"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// explainRows is how many deployments TestHistoryPlans loads: enough that
// a sequential scan or a sort of every match would be the planner's
// choice if no index served a query, and few enough to load in a second.
const explainRows = 30000

// TestHistoryPlans checks, on a table of explainRows deployments loaded
// with COPY and ANALYZEd (not on an empty table with enable_seqscan off,
// which proves nothing), that every query shape of the deployment history
// reads an index in the order it pages: no sequential scan of deployments
// and no sort, so a page costs the same at a million rows (bench/scale/control
// measures it there).
func TestHistoryPlans(t *testing.T) {
	h := pgtest.Open(t)
	ctx := t.Context()
	var ids []string
	hist := storetest.History{Rows: explainRows, Environments: []string{"production", "staging", "development"}, Services: 100}
	if err := h.CopyDeployments(ctx, hist, explainRows/10, func(d store.Deployment) { ids = append(ids, d.ID) }); err != nil {
		t.Fatal(err)
	}
	// A token from the middle of the history, for the deep pages.
	page := store.ListFilter{PageSize: store.MaxPageSize}
	for range explainRows / 2 / store.MaxPageSize {
		_, next, err := h.ListDeployments(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		page.PageToken = next
	}
	envPage := store.ListFilter{Environment: "staging", PageSize: store.MaxPageSize}
	_, envPage.PageToken, _ = h.ListDeployments(ctx, envPage)

	shapes := map[string]store.ListFilter{
		"deep page by token":                page,
		"environment, second page by token": envPage,
	}
	for _, sh := range storetest.HistoryShapes {
		shapes[sh.Name] = sh.Filter
	}
	for name, f := range shapes {
		q, args, _, err := sqlstore.ListDeploymentsQuery(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkPlan(t, h, "ListDeployments "+name, q, args...)
	}
	checkPlan(t, h, "GetDeployment", sqlstore.GetDeploymentQuery, ids[len(ids)/2])
}

// checkPlan fails t when the plan of query reads deployments sequentially
// or sorts, and logs it.
func checkPlan(t *testing.T, h *pgtest.Harness, name, query string, args ...any) {
	t.Helper()
	plan, err := h.Explain(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	first, _, _ := strings.Cut(plan, "\n")
	t.Logf("%s: %s", name, strings.Join(strings.Fields(strings.ReplaceAll(plan, "\n", " | ")), " "))
	if strings.Contains(plan, "Seq Scan on deployments") || strings.Contains(plan, "Sort") || !strings.Contains(plan, "Index") {
		t.Errorf("%s does not read an index in page order (%s):\n%s", name, first, plan)
	}
}
