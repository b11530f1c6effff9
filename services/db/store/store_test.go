package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

func TestNewID(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 100 {
		id := store.NewID("dep", t0.Add(time.Duration(i)*time.Millisecond))
		if len(id) != 30 || !strings.HasPrefix(id, "dep_") || strings.ContainsAny(id[4:], "ILOU") {
			t.Fatalf("malformed id %q", id)
		}
		ids = append(ids, id)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids are not sorted by time")
	}
	if a, b := store.NewID("x", t0), store.NewID("x", t0); a == b || a[:12] != b[:12] {
		t.Fatalf("same-millisecond ids %q %q: want a shared time prefix and distinct randomness", a, b)
	}
	if id := store.NewID("", t0); len(id) != 26 {
		t.Fatalf("unprefixed id %q", id)
	}
}

func TestHashAuditEvent(t *testing.T) {
	e := store.AuditEvent{
		Seq: 7, Time: time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC), Actor: "key_1", ActorName: "alice",
		Action: "deploy.begin", Resource: "prod/api", Outcome: "success", Detail: map[string]string{"b": "2", "a": "1"},
		RequestID: "req", TraceID: "trace", PrevHash: store.AuditGenesisHash,
	}
	h := store.HashAuditEvent(e)
	// Golden value, computed independently from the documented encoding:
	// changing the encoding would break every stored chain.
	const golden = "1806825130fe172483359baf1d18f3e2e1e1375810f0e37c763956b82ad05b13"
	if h != golden {
		t.Fatalf("HashAuditEvent = %s, want %s", h, golden)
	}
	if h != store.HashAuditEvent(e) {
		t.Fatal("hash is not deterministic")
	}
	// Every field is covered, and boundaries between fields are unambiguous.
	mutations := map[string]func(*store.AuditEvent){
		"seq":       func(e *store.AuditEvent) { e.Seq++ },
		"time":      func(e *store.AuditEvent) { e.Time = e.Time.Add(time.Microsecond) },
		"actor":     func(e *store.AuditEvent) { e.Actor += "x" },
		"shift":     func(e *store.AuditEvent) { e.Actor, e.ActorName = e.Actor+e.ActorName, "" },
		"action":    func(e *store.AuditEvent) { e.Action = "deploy.complete" },
		"resource":  func(e *store.AuditEvent) { e.Resource = "" },
		"outcome":   func(e *store.AuditEvent) { e.Outcome = "denied" },
		"detail":    func(e *store.AuditEvent) { e.Detail = map[string]string{"b": "2", "a": "1", "c": ""} },
		"detail kv": func(e *store.AuditEvent) { e.Detail = map[string]string{"b": "2", "a1": ""} },
		"request":   func(e *store.AuditEvent) { e.RequestID = "" },
		"trace":     func(e *store.AuditEvent) { e.TraceID = "t" },
		"prev":      func(e *store.AuditEvent) { e.PrevHash = strings.Repeat("1", 64) },
	}
	for name, m := range mutations {
		x := e
		m(&x)
		if store.HashAuditEvent(x) == h {
			t.Errorf("%s: hash unchanged", name)
		}
	}
	x := e
	x.Hash, x.Detail = "ignored", map[string]string{"a": "1", "b": "2"}
	if store.HashAuditEvent(x) != h {
		t.Error("hash depends on Hash or on map order")
	}
}

func TestAPIKeyNeverPrintsSecret(t *testing.T) {
	sum := sha256.Sum256([]byte("secret"))
	k := store.APIKey{KeyID: "key_1", Role: store.RoleAdmin, SecretHash: sum[:], ExpiresAt: time.Now()}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprintf("%v", &k), k.String()} {
		if strings.Contains(s, hex.EncodeToString(sum[:])) || strings.Contains(s, fmt.Sprintf("%d", sum[:])) || !strings.Contains(s, "key_1") {
			t.Fatalf("leaky or empty rendering: %s", s)
		}
	}
	_, err := k.Normalize(time.Now())
	if !errors.Is(err, errkind.Invalid) { // no CreatedBy
		t.Fatalf("Normalize = %v", err)
	}
}

func TestNormalize(t *testing.T) {
	nd, err := store.NewDeployment{Service: "api", Environment: "prod", ScriptSHA256: strings.Repeat("AB", 32)}.Normalize()
	if err != nil || nd.Kind != store.KindDeploy || nd.ScriptSHA256 != strings.Repeat("ab", 32) {
		t.Fatalf("Normalize = %+v, %v", nd, err)
	}
	o, err := store.Outcome{Status: store.StatusFailed, Error: strings.Repeat("€", store.MaxErrorLen)}.Normalize()
	if err != nil || len(o.Error) > store.MaxErrorLen || !strings.HasSuffix(o.Error, "€") {
		t.Fatalf("error not truncated on a rune boundary: %d bytes, %v", len(o.Error), err)
	}
}

func TestPageSize(t *testing.T) {
	for in, want := range map[int]int{-1: 50, 0: 50, 1: 1, 500: 500, 501: 500} {
		if got := store.PageSize(in); got != want {
			t.Errorf("PageSize(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestDeployLeaseName(t *testing.T) {
	if a, b := store.DeployLeaseName("a/b", "c"), store.DeployLeaseName("a", "b/c"); a == b {
		t.Fatalf("ambiguous lease names: %q", a)
	}
}

func TestTimestamp(t *testing.T) {
	in := time.Date(2030, 1, 1, 0, 0, 0, 1999, time.FixedZone("x", 3600))
	got := store.Timestamp(in)
	if got.Location() != time.UTC || got.Nanosecond() != 1000 || !got.Equal(in.Add(-999)) || !store.Timestamp(time.Time{}).IsZero() {
		t.Fatalf("Timestamp(%v) = %v", in, got)
	}
}
