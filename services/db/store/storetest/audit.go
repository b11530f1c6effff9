package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

func appendAudit(t *testing.T, s store.Store, e store.AuditEvent) store.AuditEvent {
	t.Helper()
	return must[store.AuditEvent](t)(s.AppendAudit(t.Context(), e))
}

func verifyOK(t *testing.T, s store.Store, checked int64) {
	t.Helper()
	r := must[store.VerifyResult](t)(s.VerifyAudit(t.Context(), nil))
	if !r.OK || r.Checked != checked || r.FirstBrokenSeq != 0 {
		t.Fatalf("VerifyAudit = %+v, want OK with %d checked", r, checked)
	}
}

// event returns a fully populated event number i.
func event(i int) store.AuditEvent {
	return store.AuditEvent{
		Actor: fmt.Sprint("key_", i%2), ActorName: "alice", Action: []string{"deploy.begin", "apikey.revoke", "deploy.complete"}[i%3],
		Resource: fmt.Sprint("prod/svc", i%4), Outcome: "success", Detail: map[string]string{"i": fmt.Sprint(i), "z": "last", "a": "first"},
		RequestID: fmt.Sprint("req-", i), TraceID: fmt.Sprint("trace-", i),
	}
}

func testAuditChain(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))
	verifyOK(t, s, 0)

	var evs []store.AuditEvent
	for i := range 5 {
		e := event(i)
		if i == 3 {
			e.Time = epoch.Add(-time.Hour + 1500*time.Nanosecond) // explicit; truncated to µs
			e.Detail = nil
		}
		got := appendAudit(t, s, e)
		want := e
		want.Seq, want.Time = int64(i+1), store.Timestamp(e.Time)
		if e.Time.IsZero() {
			want.Time = clk.Now()
		}
		want.PrevHash = store.AuditGenesisHash
		if i > 0 {
			want.PrevHash = evs[i-1].Hash
		}
		want.Hash = store.HashAuditEvent(want)
		wantEqual(t, got, want)
		evs = append(evs, got)
		clk.Advance(time.Second)
	}
	slices.Reverse(evs)
	wantEqual(t, must2(t)(s.ListAudit(ctx, store.AuditFilter{})), evs)
	verifyOK(t, s, 5)

	for _, bad := range []store.AuditEvent{
		{},
		{Action: "x", Actor: string(make([]byte, store.MaxAuditFieldLen+1))},
		{Action: "x", Detail: map[string]string{"": "v"}},
		{Action: string([]byte{0xff})},
	} {
		_, err := s.AppendAudit(ctx, bad)
		wantErr(t, err, errkind.Invalid)
	}
	verifyOK(t, s, 5)
}

// must2 unwraps the (items, token, err) of a List call, requiring one page.
func must2(t *testing.T) func([]store.AuditEvent, string, error) []store.AuditEvent {
	return func(evs []store.AuditEvent, next string, err error) []store.AuditEvent {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if next != "" {
			t.Fatal("unexpected next page")
		}
		return evs
	}
}

func testAuditList(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	clk := NewClock(epoch)
	s := h.Reopen(t, store.WithClock(clk.Now))
	var all []store.AuditEvent
	for i := range 36 {
		all = append(all, appendAudit(t, s, event(i)))
		clk.Advance(time.Minute)
	}
	slices.Reverse(all)
	for _, tc := range []struct {
		f     store.AuditFilter
		match func(store.AuditEvent) bool
	}{
		{store.AuditFilter{PageSize: 5}, func(store.AuditEvent) bool { return true }},
		{store.AuditFilter{Actor: "key_1", PageSize: 4}, func(e store.AuditEvent) bool { return e.Actor == "key_1" }},
		{store.AuditFilter{Action: "deploy.begin", PageSize: 3}, func(e store.AuditEvent) bool { return e.Action == "deploy.begin" }},
		{store.AuditFilter{Resource: "prod/svc2", Actor: "key_0", PageSize: 2}, func(e store.AuditEvent) bool {
			return e.Resource == "prod/svc2" && e.Actor == "key_0"
		}},
		{store.AuditFilter{Since: epoch.Add(10 * time.Minute), Until: epoch.Add(30 * time.Minute), PageSize: 6}, func(e store.AuditEvent) bool {
			return !e.Time.Before(epoch.Add(10*time.Minute)) && e.Time.Before(epoch.Add(30*time.Minute))
		}},
		{store.AuditFilter{Since: epoch.Add(30 * time.Minute), PageSize: 2}, func(e store.AuditEvent) bool {
			return !e.Time.Before(epoch.Add(30 * time.Minute))
		}},
		{store.AuditFilter{Actor: "nobody"}, func(store.AuditEvent) bool { return false }},
	} {
		t.Run(fmt.Sprintf("%+v", tc.f), func(t *testing.T) {
			var want []store.AuditEvent
			for _, e := range all {
				if tc.match(e) {
					want = append(want, e)
				}
			}
			f := tc.f
			var got []store.AuditEvent
			pages := 0
			for {
				items, next, err := s.ListAudit(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				got, pages = append(got, items...), pages+1
				if next == "" {
					break
				}
				if len(items) != store.PageSize(f.PageSize) {
					t.Fatalf("short page %d with a next page", pages)
				}
				f.PageToken = next
			}
			wantEqual(t, got, want)
			if tc.f.PageSize > 0 && len(want) > 0 && pages < 3 {
				t.Fatalf("only %d pages for %d events", pages, len(want))
			}
		})
	}
	_, next, err := s.ListAudit(ctx, store.AuditFilter{Actor: "key_1", PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []store.AuditFilter{
		{Actor: "key_0", PageToken: next},
		{PageToken: "garbage"},
	} {
		_, _, err := s.ListAudit(ctx, bad)
		wantErr(t, err, errkind.Invalid)
	}
	// A deployments token is not an audit token.
	_, dtok, err := s.ListDeployments(ctx, store.ListFilter{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if dtok != "" {
		_, _, err = s.ListAudit(ctx, store.AuditFilter{PageToken: dtok})
		wantErr(t, err, errkind.Invalid)
	}
}

func testAuditConcurrent(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	procs := []store.Store{h, h.Reopen(t)} // two processes
	const n = 60
	var mu sync.Mutex
	seqs := map[int64]bool{}
	errs := make([]error, n)
	parallel(n, func(i int) {
		e, err := procs[i%2].AppendAudit(ctx, event(i))
		errs[i] = err
		mu.Lock()
		seqs[e.Seq] = true
		mu.Unlock()
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := int64(1); i <= n; i++ {
		if !seqs[i] {
			t.Fatalf("seq %d missing from %d concurrent appends", i, n)
		}
	}
	verifyOK(t, h, n)
	verifyOK(t, procs[1], n)
}

func testAuditTamper(t *testing.T, open func(*testing.T) store.Store) {
	const events = 8
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, h Harness, evs []store.AuditEvent)
		broken int64
	}{
		{"outcome changed", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET outcome = 'denied' WHERE seq = 4`)
		}, 4},
		{"detail changed", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET detail = '{"i":"3"}' WHERE seq = 4`)
		}, 4},
		{"detail not json", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET detail = 'nope' WHERE seq = 2`)
		}, 2},
		{"time changed", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET occurred_at = occurred_at + 1 WHERE seq = 1`)
		}, 1},
		{"first event rehashed", func(t *testing.T, h Harness, evs []store.AuditEvent) {
			// A forger who recomputes the hash of the row breaks the next link.
			e := evs[0]
			e.Actor = "key_mallory"
			exec(t, h, `UPDATE audit_events SET actor = ?, hash = ? WHERE seq = 1`, e.Actor, store.HashAuditEvent(e))
		}, 2},
		{"last event rehashed", func(t *testing.T, h Harness, evs []store.AuditEvent) {
			e := evs[events-1]
			e.Outcome = "denied"
			exec(t, h, `UPDATE audit_events SET outcome = ?, hash = ? WHERE seq = ?`, e.Outcome, store.HashAuditEvent(e), e.Seq)
		}, events},
		{"prev hash changed", func(t *testing.T, h Harness, evs []store.AuditEvent) {
			exec(t, h, `UPDATE audit_events SET prev_hash = ? WHERE seq = 6`, evs[3].Hash)
		}, 6},
		{"event deleted", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, `DELETE FROM audit_events WHERE seq = 5`)
		}, 5},
		{"tail deleted", func(t *testing.T, h Harness, _ []store.AuditEvent) {
			exec(t, h, fmt.Sprintf(`DELETE FROM audit_events WHERE seq >= %d`, events-1))
		}, events - 1},
		{"event appended behind the store's back", func(t *testing.T, h Harness, evs []store.AuditEvent) {
			e := event(99)
			e.Seq, e.Time, e.PrevHash = events+1, epoch, evs[events-1].Hash
			e.Detail = nil
			exec(t, h, `INSERT INTO audit_events (seq, occurred_at, actor, actor_name, action, resource, outcome, detail,
	request_id, trace_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?)`,
				e.Seq, e.Time.UnixMicro(), e.Actor, e.ActorName, e.Action, e.Resource, e.Outcome, e.RequestID, e.TraceID,
				e.PrevHash, store.HashAuditEvent(e))
		}, events + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harness(t, open(t))
			var evs []store.AuditEvent
			for i := range events {
				evs = append(evs, appendAudit(t, h, event(i)))
			}
			// Small batches, so breaks are found across batch boundaries.
			s := h.Reopen(t, store.WithVerifyBatchSize(3))
			verifyOK(t, s, events)
			tc.tamper(t, h, evs)
			r := must[store.VerifyResult](t)(s.VerifyAudit(t.Context(), nil))
			if r.OK || r.FirstBrokenSeq != tc.broken || r.Reason == "" || r.Checked != min(tc.broken-1, events) {
				t.Fatalf("VerifyAudit after tampering = %+v, want first broken seq %d", r, tc.broken)
			}
			t.Logf("detected: %+v", r)
		})
	}
}

func exec(t *testing.T, h Harness, query string, args ...any) {
	t.Helper()
	n, err := h.ExecSQL(t.Context(), query, args...)
	if err != nil || n == 0 {
		t.Fatalf("%s: %d rows, %v", query, n, err)
	}
}

// auditKey is the audit key of the keyed tests.
var auditKey = []byte("0123456789abcdef0123456789abcdef")

// rewriteUnkeyed rewrites every link of the chain (and the head) with plain
// SHA-256, as a forger who can write the database but does not hold the
// audit key would after changing events: the chain is consistent again as
// far as anyone without the key can tell.
func rewriteUnkeyed(t *testing.T, h Harness, s store.Store, upTo int64) {
	t.Helper()
	evs := must2(t)(s.ListAudit(t.Context(), store.AuditFilter{PageSize: store.MaxPageSize}))
	slices.Reverse(evs)
	prev := store.AuditGenesisHash
	for _, e := range evs {
		if e.Seq > upTo {
			break
		}
		e.PrevHash = prev
		e.Hash = store.HashAuditEvent(e)
		exec(t, h, `UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, e.PrevHash, e.Hash, e.Seq)
		prev = e.Hash
	}
	if _, err := h.ExecSQL(t.Context(), `DELETE FROM audit_events WHERE seq > ?`, upTo); err != nil {
		t.Fatal(err)
	}
	exec(t, h, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, upTo, prev)
}

// testAuditKeyed checks that a chain keyed with an audit key cannot be
// rewritten by someone who can write the database but does not hold the
// key: neither an edited event with its links recomputed, nor the newest
// events deleted with the head moved back when an exported head is checked.
func testAuditKeyed(t *testing.T, open func(*testing.T) store.Store) {
	const events = 6
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, h Harness, s store.Store)
		head   bool // check against the head exported before the tampering
		broken int64
	}{
		{"event edited, chain relinked without the key", func(t *testing.T, h Harness, s store.Store) {
			exec(t, h, `UPDATE audit_events SET outcome = 'denied' WHERE seq = 3`)
			rewriteUnkeyed(t, h, s, events)
		}, false, 1},
		{"newest events deleted, head moved back", func(t *testing.T, h Harness, s store.Store) {
			last := must2(t)(s.ListAudit(t.Context(), store.AuditFilter{PageSize: store.MaxPageSize}))[2] // seq events-2
			exec(t, h, `DELETE FROM audit_events WHERE seq > ?`, last.Seq)
			exec(t, h, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash)
		}, true, events - 1},
		{"chain rewritten from scratch with plain SHA-256", func(t *testing.T, h Harness, s store.Store) {
			rewriteUnkeyed(t, h, s, events-1)
		}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harness(t, open(t))
			s := h.Reopen(t, store.WithAuditKey(auditKey), store.WithVerifyBatchSize(4))
			var last store.AuditEvent
			for i := range events {
				last = appendAudit(t, s, event(i))
				var want = last
				if want.Hash != store.AuditMAC(auditKey, want) || want.Hash == store.HashAuditEvent(want) {
					t.Fatalf("event %d is not linked with the audit key's MAC", want.Seq)
				}
			}
			head := must[store.AuditHead](t)(s.AuditHead(t.Context()))
			if head.Seq != events || head.Hash != last.Hash || !head.Keyed {
				t.Fatalf("AuditHead = %+v, want seq %d, hash %s, keyed", head, events, last.Hash)
			}
			r := must[store.VerifyResult](t)(s.VerifyAudit(t.Context(), &head))
			if !r.OK || !r.Keyed || r.Checked != events {
				t.Fatalf("VerifyAudit(head) = %+v, want OK and keyed", r)
			}
			tc.tamper(t, h, s)
			var want *store.AuditHead
			if tc.head {
				want = &head
			}
			r = must[store.VerifyResult](t)(s.VerifyAudit(t.Context(), want))
			if r.OK || r.FirstBrokenSeq != tc.broken || r.Reason == "" {
				t.Fatalf("VerifyAudit after tampering = %+v, want first broken seq %d", r, tc.broken)
			}
			t.Logf("detected: %+v", r)
		})
	}

	t.Run("exported head checks", func(t *testing.T) {
		s := harness(t, open(t)).Reopen(t, store.WithAuditKey(auditKey))
		empty := must[store.AuditHead](t)(s.AuditHead(t.Context()))
		if empty.Seq != 0 || empty.Hash != store.AuditGenesisHash {
			t.Fatalf("head of an empty chain = %+v", empty)
		}
		var evs []store.AuditEvent
		for i := range 3 {
			evs = append(evs, appendAudit(t, s, event(i)))
		}
		for _, tc := range []struct {
			head store.AuditHead
			ok   bool
		}{
			{empty, true},
			{store.AuditHead{Seq: 2, Hash: evs[1].Hash}, true},
			{store.AuditHead{Seq: 2, Hash: evs[2].Hash}, false},
			{store.AuditHead{Seq: 4, Hash: evs[2].Hash}, false},
			{store.AuditHead{Seq: 0, Hash: "x"}, false},
		} {
			r := must[store.VerifyResult](t)(s.VerifyAudit(t.Context(), &tc.head))
			if r.OK != tc.ok {
				t.Errorf("VerifyAudit(%+v) = %+v, want OK %v", tc.head, r, tc.ok)
			}
		}
	})
}

// testAuditRekey checks the migration of an unkeyed chain to an audit key.
func testAuditRekey(t *testing.T, open func(*testing.T) store.Store) {
	h := harness(t, open(t))
	ctx := t.Context()
	for i := range 5 {
		appendAudit(t, h, event(i)) // an earlier version's chain: plain SHA-256
	}
	verifyOK(t, h, 5)
	oldHead := must[store.AuditHead](t)(h.AuditHead(ctx))
	s := h.Reopen(t, store.WithAuditKey(auditKey), store.WithVerifyBatchSize(2))
	if r := must[store.VerifyResult](t)(s.VerifyAudit(ctx, nil)); r.OK || r.FirstBrokenSeq != 1 {
		t.Fatalf("an unkeyed chain verified under a key: %+v", r)
	}
	rk, ok := s.(store.AuditRekeyer)
	if !ok {
		t.Skipf("%T does not implement store.AuditRekeyer", s)
	}
	res := must[store.RekeyResult](t)(rk.RekeyAudit(ctx))
	if !res.Rekeyed || res.Events != 5 || !res.Previous.OK {
		t.Fatalf("RekeyAudit = %+v, want 5 events relinked from a verified chain", res)
	}
	r := must[store.VerifyResult](t)(s.VerifyAudit(ctx, nil))
	if !r.OK || r.Checked != 6 || !r.Keyed {
		t.Fatalf("VerifyAudit after rekey = %+v", r)
	}
	evs := must2(t)(s.ListAudit(ctx, store.AuditFilter{Action: store.ActionAuditRekey}))
	if len(evs) != 1 || evs[0].Detail["previous_head_hash"] != oldHead.Hash || evs[0].Detail["previous_chain"] != "verified" {
		t.Fatalf("rekey events = %+v", evs)
	}
	// Idempotent: a second rekey (another replica) changes nothing.
	if res := must[store.RekeyResult](t)(rk.RekeyAudit(ctx)); res.Rekeyed {
		t.Fatalf("second RekeyAudit = %+v, want no change", res)
	}
	appendAudit(t, s, event(9))
	verifyOKKeyed(t, s, 7)
	// Without the key, the rekeyed chain no longer verifies: it is keyed.
	if r := must[store.VerifyResult](t)(h.VerifyAudit(ctx, nil)); r.OK {
		t.Fatalf("the keyed chain verified without the key: %+v", r)
	}

	// A chain broken before the migration is relinked, and the rekey event
	// says where it was broken.
	h2 := harness(t, open(t))
	for i := range 4 {
		appendAudit(t, h2, event(i))
	}
	exec(t, h2, `UPDATE audit_events SET outcome = 'denied' WHERE seq = 2`)
	s2 := h2.Reopen(t, store.WithAuditKey(auditKey))
	res = must[store.RekeyResult](t)(s2.(store.AuditRekeyer).RekeyAudit(ctx))
	if !res.Rekeyed || res.Previous.OK || res.Previous.FirstBrokenSeq != 2 {
		t.Fatalf("RekeyAudit of a broken chain = %+v", res)
	}
	evs = must2(t)(s2.ListAudit(ctx, store.AuditFilter{Action: store.ActionAuditRekey}))
	if len(evs) != 1 || evs[0].Detail["previous_chain"] == "verified" {
		t.Fatalf("rekey event of a broken chain = %+v", evs)
	}
	verifyOKKeyed(t, s2, 5)
}

func verifyOKKeyed(t *testing.T, s store.Store, checked int64) {
	t.Helper()
	r := must[store.VerifyResult](t)(s.VerifyAudit(t.Context(), nil))
	if !r.OK || r.Checked != checked || !r.Keyed {
		t.Fatalf("VerifyAudit = %+v, want OK and keyed with %d checked", r, checked)
	}
}
