package auth

import (
	"sync"
	"time"
)

// ThrottleConfig configures the per-client limit on failed authentication
// attempts (see WithThrottle).
//
// The rule: when a client accumulates MaxFailures failed attempts within any
// sliding interval of length Window, it is blocked for Cooldown. While
// blocked, every Authenticate/Authorize call from that client fails with
// ErrThrottled before the token is even parsed, whether or not the token is
// valid. Successful authentications neither count nor reset the failure
// history (so a holder of one valid key can not interleave it to keep
// guessing). Blocked attempts do not extend the cool-down and are not
// audited individually; entering the cool-down is audited once.
//
// Memory is bounded: at most MaxClients clients with recent failures are
// tracked (least recently failing ones are forgotten first), each using
// MaxFailures timestamps.
type ThrottleConfig struct {
	// MaxFailures is the number of failures that triggers a block; <= 0
	// disables throttling.
	MaxFailures int
	// Window is the sliding window in which MaxFailures must occur.
	Window time.Duration
	// Cooldown is how long a client stays blocked.
	Cooldown time.Duration
	// MaxClients bounds the number of tracked clients.
	MaxClients int
}

// DefaultThrottle is the default throttle: 10 failures within 1 minute block
// the client for 1 minute; up to 10 000 clients are tracked.
//
// With these values a single client can try at most ~10 keys per minute;
// against 256-bit secrets guessing is hopeless anyway, so the limit mainly
// protects the key store and the audit log from floods, while a misconfigured
// CI job sharing an address with others only blocks it briefly.
var DefaultThrottle = ThrottleConfig{MaxFailures: 10, Window: time.Minute, Cooldown: time.Minute, MaxClients: 10_000}

type clientFailures struct {
	// ring holds the times (unix ns) of the last len(ring) failures.
	ring         []int64
	next, count  int
	blockedUntil time.Time
}

type throttle struct {
	cfg ThrottleConfig

	mu      sync.Mutex
	clients *lru[string, *clientFailures]
}

func newThrottle(cfg ThrottleConfig) *throttle {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultThrottle.MaxClients
	}
	return &throttle{cfg: cfg, clients: newLRU[string, *clientFailures](cfg.MaxClients)}
}

// blocked reports whether client is cooling down at now and for how long.
// It does not change the LRU order.
func (t *throttle) blocked(client string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.clients.items[client]
	if !ok {
		return 0, false
	}
	st := e.Value.(*lruItem[string, *clientFailures]).val
	if now.Before(st.blockedUntil) {
		return st.blockedUntil.Sub(now), true
	}
	return 0, false
}

// fail records a failure of client at now and reports whether it caused the
// client to become blocked.
func (t *throttle) fail(client string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.clients.ref(client)
	if p == nil {
		st := &clientFailures{ring: make([]int64, t.cfg.MaxFailures)}
		t.clients.put(client, st)
		p = &st
	}
	st := *p
	if now.Before(st.blockedUntil) {
		return false // already blocked; should not happen via Authenticate
	}
	ns := now.UnixNano()
	st.ring[st.next] = ns
	st.next = (st.next + 1) % len(st.ring)
	if st.count < len(st.ring) {
		st.count++
	}
	// With a full ring, ring[next] is the oldest of the last MaxFailures
	// failures.
	if st.count == len(st.ring) && ns-st.ring[st.next] < int64(t.cfg.Window) {
		st.blockedUntil = now.Add(t.cfg.Cooldown)
		st.count, st.next = 0, 0
		return true
	}
	return false
}

// tracked returns the number of tracked clients (for tests).
func (t *throttle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clients.len()
}
