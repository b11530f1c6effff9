package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

// script is a valid ScriptSHA256 for n.
func script(n int) string { return store.SHA256Hex(fmt.Appendf(nil, "script %d", n)) }

func newDep(env, svc string) store.NewDeployment {
	return store.NewDeployment{Environment: env, Service: svc, ScriptSHA256: script(1), ScriptSize: 100, MainModule: "index.js"}
}

func begin(t *testing.T, s store.Store, nd store.NewDeployment) store.Deployment {
	t.Helper()
	d, created, err := s.BeginDeployment(t.Context(), nd)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatalf("BeginDeployment(%+v) replayed %s", nd, d.ID)
	}
	return d
}

func complete(t *testing.T, s store.Store, id string, st store.Status) store.Deployment {
	t.Helper()
	o := store.Outcome{Status: st}
	if st == store.StatusFailed {
		o.Error = "boom"
	}
	d, err := s.CompleteDeployment(t.Context(), id, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func get(t *testing.T, s store.Store, id string) store.Deployment {
	t.Helper()
	return must[store.Deployment](t)(s.GetDeployment(t.Context(), id))
}

func wantEqual[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func testVersions(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	nd := store.NewDeployment{
		Environment: "prod", Service: "api", Namespace: "ns", ScriptSHA256: strings.ToUpper(script(7)), ScriptSize: 42,
		MainModule: "worker.mjs", CompatibilityDate: "2030-01-01", Tags: []string{"a", "b"},
		Metadata:   map[string]string{"commit": "abc123", "branch": "main"},
		ActorKeyID: "key_1", ActorName: "alice",
	}
	d1 := begin(t, s, nd)
	if d1.Version != 1 || d1.Status != store.StatusPending || d1.Kind != store.KindDeploy ||
		!strings.HasPrefix(d1.ID, "dep_") || len(d1.ID) != 30 || d1.CreatedAt.IsZero() || !d1.FinishedAt.IsZero() {
		t.Fatalf("first deployment: %+v", d1)
	}
	if d1.ScriptSHA256 != script(7) {
		t.Fatalf("script sha not normalized to lowercase: %q", d1.ScriptSHA256)
	}
	wantEqual(t, get(t, s, d1.ID), d1)
	want := store.Deployment{
		ID: d1.ID, Service: "api", Environment: "prod", Namespace: "ns", Version: 1, Status: store.StatusPending,
		Kind: store.KindDeploy, ScriptSHA256: script(7), ScriptSize: 42, MainModule: "worker.mjs",
		CompatibilityDate: "2030-01-01", Tags: []string{"a", "b"}, Metadata: map[string]string{"commit": "abc123", "branch": "main"},
		ActorKeyID: "key_1", ActorName: "alice", CreatedAt: d1.CreatedAt,
	}
	wantEqual(t, d1, want)

	f := complete(t, s, d1.ID, store.StatusFailed)
	if f.Status != store.StatusFailed || f.Error != "boom" || f.FinishedAt.IsZero() {
		t.Fatalf("failed deployment: %+v", f)
	}
	wantEqual(t, get(t, s, d1.ID), f)

	// A failed version is never reused.
	d2 := begin(t, s, nd)
	if d2.Version != 2 || d2.ID == d1.ID {
		t.Fatalf("second deployment: version %d id %s (first %s)", d2.Version, d2.ID, d1.ID)
	}
	wantEqual(t, must[store.Deployment](t)(s.GetDeploymentByVersion(ctx, "prod", "api", 2)), d2)
	// Versions count per (environment, service).
	for _, o := range []store.NewDeployment{newDep("staging", "api"), newDep("prod", "web")} {
		if d := begin(t, s, o); d.Version != 1 {
			t.Fatalf("%s/%s starts at version %d", o.Environment, o.Service, d.Version)
		}
	}
	if d := begin(t, s, nd); d.Version != 3 {
		t.Fatalf("third deployment of prod/api has version %d", d.Version)
	}

	_, err := s.GetDeployment(ctx, "dep_missing")
	wantErr(t, err, errkind.NotFound)
	_, err = s.GetDeploymentByVersion(ctx, "prod", "api", 99)
	wantErr(t, err, errkind.NotFound)
	_, err = s.GetLive(ctx, "prod", "api")
	wantErr(t, err, errkind.NotFound)
	_, err = s.CompleteDeployment(ctx, "dep_missing", store.Outcome{Status: store.StatusLive})
	wantErr(t, err, errkind.NotFound)
}

func testDeploymentValidation(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	mod := func(f func(*store.NewDeployment)) store.NewDeployment {
		nd := newDep("prod", "api")
		f(&nd)
		return nd
	}
	for name, nd := range map[string]store.NewDeployment{
		"no service":              mod(func(n *store.NewDeployment) { n.Service = "" }),
		"no environment":          mod(func(n *store.NewDeployment) { n.Environment = "" }),
		"long service":            mod(func(n *store.NewDeployment) { n.Service = strings.Repeat("s", 256) }),
		"no script":               mod(func(n *store.NewDeployment) { n.ScriptSHA256 = "" }),
		"short script":            mod(func(n *store.NewDeployment) { n.ScriptSHA256 = "abc" }),
		"non-hex script":          mod(func(n *store.NewDeployment) { n.ScriptSHA256 = strings.Repeat("z", 64) }),
		"negative size":           mod(func(n *store.NewDeployment) { n.ScriptSize = -1 }),
		"unknown kind":            mod(func(n *store.NewDeployment) { n.Kind = "redeploy" }),
		"deploy restoring":        mod(func(n *store.NewDeployment) { n.RestoredVersion = 1 }),
		"rollback without target": mod(func(n *store.NewDeployment) { n.Kind = store.KindRollback }),
		"empty tag":               mod(func(n *store.NewDeployment) { n.Tags = []string{""} }),
		"too many tags":           mod(func(n *store.NewDeployment) { n.Tags = slices.Repeat([]string{"t"}, store.MaxTags+1) }),
		"empty metadata key":      mod(func(n *store.NewDeployment) { n.Metadata = map[string]string{"": "v"} }),
		"config not JSON":         mod(func(n *store.NewDeployment) { n.Config = "{vars" }),
		"config not an object":    mod(func(n *store.NewDeployment) { n.Config = `["x"]` }),
		"config too long":         mod(func(n *store.NewDeployment) { n.Config = `{"x":"` + strings.Repeat("x", store.MaxConfigLen) + `"}` }),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.BeginDeployment(t.Context(), nd)
			wantErr(t, err, errkind.Invalid)
		})
	}
	// Nothing was allocated by the rejected calls.
	if d := begin(t, s, newDep("prod", "api")); d.Version != 1 {
		t.Fatalf("version after rejected begins: %d", d.Version)
	}
}

func testConcurrentVersions(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	const n = 100
	versions := make([]int64, n)
	ids := make([]string, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		d, _, err := s.BeginDeployment(t.Context(), newDep("prod", "api"))
		versions[i], ids[i], errs[i] = d.Version, d.ID, err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("versions are not exactly 1..%d: %v", n, versions)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Fatal("duplicate deployment ids")
	}
}

func testTransitions(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	// prepare returns a deployment of a fresh service in state from.
	svc := 0
	prepare := func(t *testing.T, from store.Status) store.Deployment {
		svc++
		name := fmt.Sprintf("svc%d", svc)
		d := begin(t, s, newDep("prod", name))
		switch from {
		case store.StatusLive, store.StatusFailed:
			d = complete(t, s, d.ID, from)
		case store.StatusSuperseded:
			complete(t, s, d.ID, store.StatusLive)
			complete(t, s, begin(t, s, newDep("prod", name)).ID, store.StatusLive)
			d = get(t, s, d.ID)
		}
		if d.Status != from {
			t.Fatalf("prepared %s, got %s", from, d.Status)
		}
		return d
	}
	outcomes := []store.Outcome{
		{Status: store.StatusLive},
		{Status: store.StatusFailed, Error: "x"},
		{Status: store.StatusPending},
		{Status: store.StatusSuperseded},
		{Status: "bogus"},
		{Status: store.StatusLive, Error: "live with an error"},
	}
	for _, from := range []store.Status{store.StatusPending, store.StatusLive, store.StatusFailed, store.StatusSuperseded} {
		for _, o := range outcomes {
			t.Run(fmt.Sprintf("%s_to_%s/%q", from, o.Status, o.Error), func(t *testing.T) {
				d := prepare(t, from)
				got, err := s.CompleteDeployment(ctx, d.ID, o)
				legalOutcome := (o.Status == store.StatusLive && o.Error == "") || o.Status == store.StatusFailed
				switch {
				case !legalOutcome:
					wantErr(t, err, errkind.Invalid)
				case from != store.StatusPending:
					wantErr(t, err, errkind.Precondition)
				default:
					if err != nil {
						t.Fatal(err)
					}
					if got.Status != o.Status || got.FinishedAt.IsZero() || got.Error != o.Error {
						t.Fatalf("completed: %+v", got)
					}
					wantEqual(t, get(t, s, d.ID), got)
					return
				}
				wantEqual(t, get(t, s, d.ID), d) // unchanged
			})
		}
	}
	// Long errors are truncated, not rejected.
	d := begin(t, s, newDep("prod", "long"))
	got, err := s.CompleteDeployment(ctx, d.ID, store.Outcome{Status: store.StatusFailed, Error: strings.Repeat("é", store.MaxErrorLen)})
	if err != nil || len(got.Error) > store.MaxErrorLen || len(get(t, s, d.ID).Error) != len(got.Error) {
		t.Fatalf("long error: %v, %d bytes", err, len(got.Error))
	}
}

func testSupersede(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	d1 := complete(t, s, begin(t, s, newDep("prod", "api")).ID, store.StatusLive)
	wantEqual(t, must[store.Deployment](t)(s.GetLive(ctx, "prod", "api")), d1)
	staging := complete(t, s, begin(t, s, newDep("staging", "api")).ID, store.StatusLive)

	d2 := begin(t, s, newDep("prod", "api"))
	// Still d1 while d2 is pending.
	wantEqual(t, must[store.Deployment](t)(s.GetLive(ctx, "prod", "api")), d1)
	d2 = complete(t, s, d2.ID, store.StatusLive)
	old := get(t, s, d1.ID)
	if old.Status != store.StatusSuperseded || old.SupersededBy != d2.ID || !old.FinishedAt.Equal(d1.FinishedAt) {
		t.Fatalf("previous live deployment: %+v", old)
	}
	wantEqual(t, must[store.Deployment](t)(s.GetLive(ctx, "prod", "api")), d2)

	// A failure leaves the live deployment alone.
	complete(t, s, begin(t, s, newDep("prod", "api")).ID, store.StatusFailed)
	wantEqual(t, must[store.Deployment](t)(s.GetLive(ctx, "prod", "api")), d2)
	// Other environments are independent.
	wantEqual(t, must[store.Deployment](t)(s.GetLive(ctx, "staging", "api")), staging)
}

func testConcurrentGoLive(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	const n = 12
	ids := make([]string, n)
	for i := range ids {
		ids[i] = begin(t, s, newDep("prod", "api")).ID
	}
	errs := make([]error, n)
	parallel(n, func(i int) {
		_, errs[i] = s.CompleteDeployment(t.Context(), ids[i], store.Outcome{Status: store.StatusLive})
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	counts := map[store.Status]int{}
	for _, id := range ids {
		counts[get(t, s, id).Status]++
	}
	if counts[store.StatusLive] != 1 || counts[store.StatusSuperseded] != n-1 {
		t.Fatalf("statuses after %d concurrent go-lives: %v", n, counts)
	}
}

func testOneLiveConstraint(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	d := complete(t, h, begin(t, h, newDep("prod", "api")).ID, store.StatusLive)
	insert := `INSERT INTO deployments (id, environment, service, version, status, kind, script_sha256, created_at)
VALUES (?, 'prod', 'api', ?, ?, 'deploy', ?, 0)`
	// The row itself is acceptable...
	if _, err := h.ExecSQL(ctx, insert, "dep_raw_pending", 98, "pending", script(1)); err != nil {
		t.Fatalf("raw insert of a pending row: %v", err)
	}
	// ...but the database refuses a second live one, however it is written.
	_, err := h.ExecSQL(ctx, `UPDATE deployments SET status = 'live' WHERE id = ?`, "dep_raw_pending")
	wantErrContaining(t, err, "unique")
	_, err = h.ExecSQL(ctx, insert, "dep_raw_live", 99, "live", script(1))
	wantErrContaining(t, err, "unique")
	wantEqual(t, must[store.Deployment](t)(h.GetLive(ctx, "prod", "api")), d)
}

func testIdempotency(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	nd := newDep("prod", "api")
	nd.ActorKeyID, nd.IdempotencyKey = "key_a", "req-1"
	first := begin(t, s, nd)
	for range 2 {
		again, created, err := s.BeginDeployment(ctx, nd)
		if err != nil || created {
			t.Fatalf("replay: created=%v err=%v", created, err)
		}
		wantEqual(t, again, first)
	}
	// Still replayed once the deployment finished.
	first = complete(t, s, first.ID, store.StatusFailed)
	again, created, err := s.BeginDeployment(ctx, nd)
	if err != nil || created {
		t.Fatalf("replay after completion: created=%v err=%v", created, err)
	}
	wantEqual(t, again, first)

	// The key is scoped to the actor.
	other := nd
	other.ActorKeyID = "key_b"
	if d := begin(t, s, other); d.ID == first.ID || d.Version != 2 {
		t.Fatalf("other actor's deployment: %+v", d)
	}
	// Without an actor or a key, nothing is deduplicated.
	for _, f := range []func(*store.NewDeployment){
		func(n *store.NewDeployment) { n.ActorKeyID = "" },
		func(n *store.NewDeployment) { n.IdempotencyKey = "" },
	} {
		x := nd
		f(&x)
		a, b := begin(t, s, x), begin(t, s, x)
		if a.ID == b.ID {
			t.Fatal("deduplicated without actor and key")
		}
	}
	// Reusing the key for another request is an error.
	for _, f := range []func(*store.NewDeployment){
		func(n *store.NewDeployment) { n.Service = "web" },
		func(n *store.NewDeployment) { n.Environment = "staging" },
		func(n *store.NewDeployment) { n.ScriptSHA256 = script(2) },
	} {
		x := nd
		f(&x)
		_, _, err := s.BeginDeployment(ctx, x)
		wantErr(t, err, errkind.Invalid)
	}
	// Replays allocated no versions.
	if d := begin(t, s, newDep("prod", "api")); d.Version != 7 {
		t.Fatalf("next version is %d, want 7", d.Version)
	}
}

func testConcurrentIdempotency(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	const n = 16
	nd := newDep("prod", "api")
	nd.ActorKeyID, nd.IdempotencyKey = "key_a", "req-1"
	ids := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	parallel(n, func(i int) {
		var d store.Deployment
		d, created[i], errs[i] = s.BeginDeployment(t.Context(), nd)
		ids[i] = d.ID
	})
	wins := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("different deployments for one idempotency key: %s, %s", ids[0], ids[i])
		}
		if created[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d calls created the deployment", wins)
	}
	if d := begin(t, s, newDep("prod", "api")); d.Version != 2 {
		t.Fatalf("next version is %d, want 2", d.Version)
	}
}

func testRollback(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	nd1 := newDep("prod", "api")
	nd1.ScriptSHA256, nd1.ScriptSize, nd1.MainModule, nd1.CompatibilityDate = script(1), 11, "one.js", "2030-01-01"
	nd1.Config = `{"vars":{"GREETING":"hi"}}`
	v1 := complete(t, s, begin(t, s, nd1).ID, store.StatusLive)
	if got := get(t, s, v1.ID); got.Config != nd1.Config {
		t.Fatalf("config of version 1 read back as %q, want %q", got.Config, nd1.Config)
	}
	nd2 := newDep("prod", "api")
	nd2.ScriptSHA256 = script(2)
	v2 := complete(t, s, begin(t, s, nd2).ID, store.StatusLive)
	v3 := complete(t, s, begin(t, s, nd2).ID, store.StatusFailed)

	rb := store.NewDeployment{Environment: "prod", Service: "api", Kind: store.KindRollback, RestoredVersion: v1.Version}
	r := begin(t, s, rb)
	if r.Version != 4 || r.Kind != store.KindRollback || r.RestoredVersion != 1 || r.ScriptSHA256 != script(1) ||
		r.ScriptSize != 11 || r.MainModule != "one.js" || r.CompatibilityDate != "2030-01-01" || r.Config != nd1.Config {
		t.Fatalf("rollback: %+v", r)
	}
	if got := get(t, s, r.ID); got.Config != nd1.Config {
		t.Fatalf("config of the rollback read back as %q, want the restored version's %q", got.Config, nd1.Config)
	}
	complete(t, s, r.ID, store.StatusLive)
	if got := get(t, s, v2.ID); got.Status != store.StatusSuperseded || got.SupersededBy != r.ID {
		t.Fatalf("rolled back deployment: %+v", got)
	}

	for _, tc := range []struct {
		version int64
		service string
		want    error
	}{
		{v3.Version, "api", errkind.Precondition}, // never went live
		{99, "api", errkind.NotFound},
		{v1.Version, "web", errkind.NotFound},
	} {
		x := rb
		x.RestoredVersion, x.Service = tc.version, tc.service
		_, _, err := s.BeginDeployment(ctx, x)
		wantErr(t, err, tc.want)
	}
}

// listAll pages through f, checking that pages are full except the last.
func listAll(t *testing.T, s store.Store, f store.ListFilter) []store.Deployment {
	t.Helper()
	var all []store.Deployment
	for pages := 0; ; pages++ {
		items, next, err := s.ListDeployments(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) != store.PageSize(f.PageSize) {
			t.Fatalf("page %d has %d items and a next page", pages, len(items))
		}
		f.PageToken = next
	}
}

func testPagination(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	ctx := t.Context()
	// 22 prod/api, 8 staging/api, 8 prod/web: every 3rd failed, every 5th live.
	var all []store.Deployment
	for i := range 38 {
		env, svc := "prod", "api"
		switch i % 19 {
		case 4, 9, 14, 18:
			env = "staging"
		case 5, 10, 15, 17:
			svc = "web"
		}
		d := begin(t, s, newDep(env, svc))
		switch {
		case i%3 == 0:
			d = complete(t, s, d.ID, store.StatusFailed)
		case i%5 == 0:
			d = complete(t, s, d.ID, store.StatusLive)
		}
		all = append(all, d)
	}
	// Refresh: going live supersedes earlier rows.
	for i := range all {
		all[i] = get(t, s, all[i].ID)
	}
	slices.Reverse(all) // newest first
	filter := func(f store.ListFilter) []store.Deployment {
		var out []store.Deployment
		for _, d := range all {
			if (f.Service == "" || d.Service == f.Service) && (f.Environment == "" || d.Environment == f.Environment) &&
				(f.Status == "" || d.Status == f.Status) {
				out = append(out, d)
			}
		}
		return out
	}
	for _, tc := range []struct {
		f        store.ListFilter
		minPages int
	}{
		{store.ListFilter{PageSize: 7}, 5},
		{store.ListFilter{Service: "api", Environment: "prod", PageSize: 5}, 4},
		{store.ListFilter{Service: "api", PageSize: 4}, 5},
		{store.ListFilter{Environment: "prod", PageSize: 3}, 5},
		{store.ListFilter{Status: store.StatusFailed, PageSize: 2}, 5},
		{store.ListFilter{Environment: "prod", Status: store.StatusSuperseded, PageSize: 1}, 3},
		{store.ListFilter{Service: "nope", PageSize: 3}, 0},
		{store.ListFilter{}, 1},                 // default page size: one page
		{store.ListFilter{PageSize: 100000}, 1}, // capped, still one page
	} {
		t.Run(fmt.Sprintf("%+v", tc.f), func(t *testing.T) {
			want := filter(tc.f)
			if pages := (len(want) + store.PageSize(tc.f.PageSize) - 1) / store.PageSize(tc.f.PageSize); pages < tc.minPages {
				t.Fatalf("filter matches %d deployments: %d pages, want at least %d", len(want), pages, tc.minPages)
			}
			wantEqual(t, listAll(t, s, tc.f), want)
		})
	}

	// Deployments made between pages do not disturb the walk.
	f := store.ListFilter{Service: "api", Environment: "prod", PageSize: 5}
	first, next, err := s.ListDeployments(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	begin(t, s, newDep("prod", "api"))
	f.PageToken = next
	wantEqual(t, append(first, listAll(t, s, f)...), filter(store.ListFilter{Service: "api", Environment: "prod"}))

	// Tokens are opaque and bound to their filter.
	for _, bad := range []store.ListFilter{
		{Service: "web", PageToken: next},
		{PageToken: "not-a-token"},
		{PageToken: next + "x"},
		{Status: "bogus"},
	} {
		_, _, err := s.ListDeployments(ctx, bad)
		wantErr(t, err, errkind.Invalid)
	}
}

func testListPending(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	if got := listPending(t, s, 0); len(got) != 0 {
		t.Fatalf("pending in an empty store: %v", got)
	}
	var want []store.Deployment
	for i := range 12 {
		d := begin(t, s, newDep("prod", fmt.Sprint("svc", i%2)))
		switch i % 3 {
		case 0:
			want = append(want, d)
		case 1:
			complete(t, s, d.ID, store.StatusLive)
		case 2:
			complete(t, s, d.ID, store.StatusFailed)
		}
	}
	wantEqual(t, listPending(t, s, 0), want)
	// Bounded pages, oldest first, that add up to the whole list.
	wantEqual(t, listPending(t, s, 3), want)
	wantEqual(t, listPending(t, s, 1), want)
	for _, bad := range []string{"garbage", "AQ"} {
		_, _, err := s.ListPending(t.Context(), store.Page{PageToken: bad})
		wantErr(t, err, errkind.Invalid)
	}
	_, dtok, err := s.ListDeployments(t.Context(), store.ListFilter{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.ListPending(t.Context(), store.Page{PageToken: dtok})
	wantErr(t, err, errkind.Invalid)
}

// listPending pages through ListPending with pages of size (the default
// when 0) and checks that every page but the last is full.
func listPending(t *testing.T, s store.Store, size int) []store.Deployment {
	t.Helper()
	var all []store.Deployment
	p := store.Page{PageSize: size}
	for pages := 0; ; pages++ {
		items, next, err := s.ListPending(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 1000 {
			t.Fatal("ListPending does not end")
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) != store.PageSize(size) {
			t.Fatalf("short page of %d with a next page", len(items))
		}
		p.PageToken = next
	}
}

// testCompleteFence checks that a deployment's completion is fenced by the
// deploy lease of its service: a holder whose lease expired and was taken
// over cannot complete its deployment, however late its answer comes.
func testCompleteFence(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))
	name := store.DeployLeaseName("prod", "api")
	la := must[store.Lease](t)(s.AcquireLease(ctx, name, "A", 10*time.Second))
	stale := begin(t, s, newDep("prod", "api"))

	// A stalls past its lease; B takes over and deploys a newer version.
	clk.Advance(11 * time.Second)
	lb := must[store.Lease](t)(s.AcquireLease(ctx, name, "B", 10*time.Second))
	if lb.Token <= la.Token {
		t.Fatalf("takeover token %d not above %d", lb.Token, la.Token)
	}
	newer := begin(t, s, newDep("prod", "api"))
	fenceB := &store.LeaseFence{Holder: "B", Token: lb.Token}
	if _, err := s.CompleteDeployment(ctx, newer.ID, store.Outcome{Status: store.StatusLive, Lease: fenceB}); err != nil {
		t.Fatal(err)
	}

	// A's late completion is refused and changes nothing.
	for _, f := range []*store.LeaseFence{
		{Holder: "A", Token: la.Token},
		{Holder: "A", Token: lb.Token}, // the right token, the wrong holder
		{Holder: "B", Token: la.Token}, // the right holder, an old token
	} {
		_, err := s.CompleteDeployment(ctx, stale.ID, store.Outcome{Status: store.StatusLive, Lease: f})
		wantErr(t, err, errkind.Precondition)
	}
	if d := must[store.Deployment](t)(s.GetDeployment(ctx, stale.ID)); d.Status != store.StatusPending {
		t.Fatalf("stale deployment is %s after a refused completion", d.Status)
	}
	if d := must[store.Deployment](t)(s.GetLive(ctx, "prod", "api")); d.ID != newer.ID {
		t.Fatalf("live is %s, want the newer %s", d.ID, newer.ID)
	}

	// An expired lease fences too, even before anyone takes it over.
	clk.Advance(11 * time.Second)
	_, err := s.CompleteDeployment(ctx, stale.ID, store.Outcome{Status: store.StatusFailed, Error: "x", Lease: fenceB})
	wantErr(t, err, errkind.Precondition)
	// A lease that never existed fences as well.
	other := begin(t, s, newDep("prod", "web"))
	_, err = s.CompleteDeployment(ctx, other.ID, store.Outcome{Status: store.StatusLive, Lease: &store.LeaseFence{Holder: "A", Token: 1}})
	wantErr(t, err, errkind.Precondition)

	// The current holder completes.
	lb = must[store.Lease](t)(s.AcquireLease(ctx, name, "B", 10*time.Second))
	got, err := s.CompleteDeployment(ctx, stale.ID, store.Outcome{Status: store.StatusFailed, Error: "superseded", Lease: &store.LeaseFence{Holder: "B", Token: lb.Token}})
	if err != nil || got.Status != store.StatusFailed {
		t.Fatalf("completion under the current lease: %v, %v", got, err)
	}
}
