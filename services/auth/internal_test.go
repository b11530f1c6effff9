package auth

import (
	"testing"
	"time"

	"github.com/dot-do/platform/services/auth/authz"
)

func TestLRU(t *testing.T) {
	c := newLRU[string, int](2)
	c.put("a", 1)
	c.put("b", 2)
	if _, ok := c.get("a"); !ok { // a is now most recent
		t.Fatal("a missing")
	}
	k, v, ev := c.put("c", 3)
	if !ev || k != "b" || v != 2 {
		t.Fatalf("evicted %q=%d (%v), want b=2", k, v, ev)
	}
	if _, _, ev := c.put("a", 10); ev {
		t.Fatal("update evicted")
	}
	if v, _ := c.get("a"); v != 10 {
		t.Fatalf("a = %d", v)
	}
	if p := c.ref("c"); p == nil || *p != 3 {
		t.Fatal("ref")
	}
	if _, ok := c.remove("c"); !ok || c.len() != 1 {
		t.Fatal("remove")
	}
	if _, ok := c.remove("zz"); ok {
		t.Fatal("remove missing")
	}
}

func TestThrottleSlidingWindow(t *testing.T) {
	tr := newThrottle(ThrottleConfig{MaxFailures: 3, Window: 10 * time.Second, Cooldown: time.Minute, MaxClients: 10})
	t0 := time.Unix(1_000_000, 0)
	// 3 failures spanning exactly the window do not block; within it they do.
	if tr.fail("c", t0) || tr.fail("c", t0.Add(5*time.Second)) || tr.fail("c", t0.Add(10*time.Second)) {
		t.Fatal("blocked although failures span the full window")
	}
	if !tr.fail("c", t0.Add(11*time.Second)) { // last 3: 5s, 10s, 11s
		t.Fatal("not blocked after 3 failures within 10 s")
	}
	if d, ok := tr.blocked("c", t0.Add(11*time.Second)); !ok || d != time.Minute {
		t.Fatalf("blocked = %v, %v", d, ok)
	}
	if _, ok := tr.blocked("c", t0.Add(71*time.Second)); ok {
		t.Fatal("still blocked after cool-down")
	}
	// History is cleared on block: needs 3 fresh failures again.
	if tr.fail("c", t0.Add(72*time.Second)) || tr.fail("c", t0.Add(73*time.Second)) {
		t.Fatal("history not reset")
	}
	one := newThrottle(ThrottleConfig{MaxFailures: 1, Window: time.Second, Cooldown: time.Second})
	if !one.fail("x", t0) {
		t.Fatal("MaxFailures 1 must block on the first failure")
	}
}

func TestCacheEntryDeadline(t *testing.T) {
	c := newTokenCache(10*time.Second, 10)
	now := time.Unix(1_000_000, 0)
	d := tokenDigest{1}
	c.put(d, authz.Principal{KeyID: "a"}, now, now.Add(time.Second), c.generation())
	if _, ok := c.get(d, now.Add(999*time.Millisecond)); !ok {
		t.Fatal("miss before key expiry")
	}
	if _, ok := c.get(d, now.Add(time.Second)); ok {
		t.Fatal("hit at key expiry")
	}
	if c.len() != 0 || len(c.byKey) != 0 {
		t.Fatal("expired entry not removed")
	}
	c.put(d, authz.Principal{KeyID: "a"}, now, now, c.generation()) // already expired: not cached
	if c.len() != 0 {
		t.Fatal("cached an expired key")
	}
	c.put(d, authz.Principal{KeyID: "a"}, now, time.Time{}, c.generation())
	c.invalidate("a")
	if _, ok := c.get(d, now); ok {
		t.Fatal("hit after invalidate")
	}
}

// A validation that read the store before a revocation must not be cached
// after the revocation invalidated the key.
func TestCachePutAfterInvalidateIsDropped(t *testing.T) {
	c := newTokenCache(10*time.Second, 10)
	now := time.Unix(1_000_000, 0)
	gen := c.generation() // Authenticate: cache miss, about to read the store
	c.invalidate("a")     // RevokeKey: store written, cache invalidated
	c.put(tokenDigest{1}, authz.Principal{KeyID: "a"}, now, time.Time{}, gen)
	if _, ok := c.get(tokenDigest{1}, now); ok {
		t.Fatal("stale validation cached after invalidation")
	}
}
