package auth

import (
	"sync"
	"time"
)

// ThrottleConfig configures the limit on failed authentication attempts
// (see WithThrottle).
//
// Failures are counted per (client, presented key id): a client presenting
// a well-formed token whose key is unknown, whose secret is wrong, or that
// is expired or revoked, counts against that client and that key id only;
// a malformed token counts against the client's malformed-token budget. A
// missing token is not a failure (there is nothing to guess with it), and
// a successful authentication neither counts nor resets anything.
//
// The rule: when a (client, key id) pair, or a client's malformed tokens,
// accumulate MaxFailures failures within any sliding interval of length
// Window, that pair (or the client's malformed tokens) is blocked for
// Cooldown: such attempts fail with ErrThrottled without a store lookup.
// Entering a cool-down is audited once. So a client's failures never lock
// out another client, nor another key from the same client: a valid key
// is never refused because of somebody else's failures. Even a block of
// the valid key's own id (someone behind the same address guessing its
// secret) does not refuse the key itself: a token whose digest matches the
// last one that verified for its key id is looked up as usual.
//
// Memory is bounded and blocks cannot be evicted: at most MaxClients pairs
// with recent failures are counted (the least recently failing forgotten
// first: forgetting a partial count needs MaxClients fresh failures, each
// audited), at most MaxClients blocks are held until they expire (never
// evicted to make room), and at most MaxClients verified token digests are
// kept. A block that finds the block table full (MaxClients pairs blocked
// at once) stays in the counting table instead.
type ThrottleConfig struct {
	// MaxFailures is the number of failures that triggers a block; <= 0
	// disables throttling.
	MaxFailures int
	// Window is the sliding window in which MaxFailures must occur.
	Window time.Duration
	// Cooldown is how long a pair stays blocked.
	Cooldown time.Duration
	// MaxClients bounds each of the three tables.
	MaxClients int
}

// DefaultThrottle is the default throttle: 10 failures within 1 minute
// block the (client, key id) pair, or the client's malformed tokens, for 1
// minute; up to 10 000 entries are tracked in each table.
//
// With these values a client can try at most ~10 secrets per key id per
// minute; against 256-bit secrets guessing is hopeless anyway, so the
// limit mainly protects the key store and the audit log from floods.
var DefaultThrottle = ThrottleConfig{MaxFailures: 10, Window: time.Minute, Cooldown: time.Minute, MaxClients: 10_000}

type clientFailures struct {
	// ring holds the times (unix ns) of the last len(ring) failures.
	ring         []int64
	next, count  int
	blockedUntil time.Time // set only when the block table was full
}

type throttle struct {
	cfg ThrottleConfig

	mu sync.Mutex
	// counting holds the pairs with recent failures that are not blocked.
	counting *lru[string, *clientFailures]
	// blocks holds the blocks, oldest at the back: with one cool-down
	// for all, also the first to expire. Only expiry removes them.
	blocks *lru[string, time.Time]
	// verified maps a key id to the digest of the last token that
	// verified for it.
	verified *lru[string, tokenDigest]
}

func newThrottle(cfg ThrottleConfig) *throttle {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultThrottle.MaxClients
	}
	return &throttle{cfg: cfg,
		counting: newLRU[string, *clientFailures](cfg.MaxClients),
		blocks:   newLRU[string, time.Time](cfg.MaxClients),
		verified: newLRU[string, tokenDigest](cfg.MaxClients),
	}
}

// pairKey is the throttle key of client presenting key id keyID ("" for a
// malformed token).
func pairKey(client, keyID string) string {
	if keyID == "" {
		return client + "\x00malformed"
	}
	return client + "\x00" + keyID
}

// blocked reports whether key is cooling down at now and for how long.
func (t *throttle) blocked(key string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
	if e, ok := t.blocks.items[key]; ok {
		if until := e.Value.(*lruItem[string, time.Time]).val; now.Before(until) {
			return until.Sub(now), true
		}
	}
	if e, ok := t.counting.items[key]; ok {
		if st := e.Value.(*lruItem[string, *clientFailures]).val; now.Before(st.blockedUntil) {
			return st.blockedUntil.Sub(now), true
		}
	}
	return 0, false
}

// pruneLocked drops the expired blocks, oldest first.
func (t *throttle) pruneLocked(now time.Time) {
	for {
		back := t.blocks.ll.Back()
		if back == nil {
			return
		}
		it := back.Value.(*lruItem[string, time.Time])
		if now.Before(it.val) {
			return
		}
		t.blocks.remove(it.key)
	}
}

// fail records a failure of key at now and reports whether it caused key
// to become blocked.
func (t *throttle) fail(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.counting.ref(key)
	if p == nil {
		st := &clientFailures{ring: make([]int64, t.cfg.MaxFailures)}
		t.counting.put(key, st) // may forget the least recently failing pair
		p = &st
	}
	st := *p
	if now.Before(st.blockedUntil) {
		return false // already blocked; Authenticate does not count then
	}
	ns := now.UnixNano()
	st.ring[st.next] = ns
	st.next = (st.next + 1) % len(st.ring)
	if st.count < len(st.ring) {
		st.count++
	}
	// With a full ring, ring[next] is the oldest of the last MaxFailures
	// failures.
	if st.count < len(st.ring) || ns-st.ring[st.next] >= int64(t.cfg.Window) {
		return false
	}
	until := now.Add(t.cfg.Cooldown)
	st.count, st.next = 0, 0
	t.pruneLocked(now)
	if t.blocks.len() < t.blocks.max {
		t.counting.remove(key)
		t.blocks.put(key, until)
	} else {
		st.blockedUntil = until
	}
	return true
}

// verify records that the token with digest d verified for keyID.
func (t *throttle) verify(keyID string, d tokenDigest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.verified.put(keyID, d)
}

// known reports whether d is the digest of the last token that verified
// for keyID.
func (t *throttle) known(keyID string, d tokenDigest) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.verified.get(keyID)
	return ok && v == d
}

// tracked returns the number of pairs counted or blocked (for tests).
func (t *throttle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counting.len() + t.blocks.len()
}
