package sqlite_test

import (
	"strings"
	"testing"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
	"github.com/dot-do/platform/services/db/store/sqlite/sqlitetest"
	"github.com/dot-do/platform/services/db/store/storetest"
)

// TestHistoryPlans checks that every query shape of the deployment history
// reads deployments through an index in page order: a filtered page
// searches an index (never scans the table) and no page sorts in a
// temporary b-tree. SQLite plans without ANALYZE statistics from the
// schema alone, so the plans hold at any table size.
func TestHistoryPlans(t *testing.T) {
	h := sqlitetest.Open(t)
	ctx := t.Context()
	for i := range 3 {
		nd := store.NewDeployment{Service: "svc-0042", Environment: "production", ScriptSHA256: strings.Repeat("a", 63) + string(rune('0'+i))}
		if _, _, err := h.BeginDeployment(ctx, nd); err != nil {
			t.Fatal(err)
		}
	}
	for _, sh := range storetest.HistoryShapes {
		for _, paged := range []bool{false, true} {
			f := sh.Filter
			name := sh.Name
			if paged {
				f.PageSize = 1
				if _, f.PageToken, _ = h.ListDeployments(ctx, f); f.PageToken == "" {
					continue // nothing matches: no second page
				}
				name += ", second page by token"
			}
			q, args, _, err := sqlstore.ListDeploymentsQuery(f)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := h.Explain(ctx, q, args...)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			t.Logf("%s: %s", name, strings.ReplaceAll(plan, "\n", " | "))
			filtered := f.Environment != "" || f.Service != "" || f.Status != ""
			if strings.Contains(plan, "TEMP B-TREE") || (filtered && !strings.Contains(plan, "SEARCH deployments USING")) {
				t.Errorf("ListDeployments %s does not read an index in page order:\n%s", name, plan)
			}
		}
	}
	plan, err := h.Explain(ctx, sqlstore.GetDeploymentQuery, "dep_x")
	if err != nil || !strings.Contains(plan, "SEARCH deployments USING INDEX") {
		t.Errorf("GetDeployment plan %q, %v: want an index search", plan, err)
	}
}
