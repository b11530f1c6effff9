package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/dot-do/platform/services/auth/authz"
)

// tokenDigest identifies a cached token: SHA-256 of the complete token. The
// cache never holds the token or the secret itself.
type tokenDigest [sha256.Size]byte

// cacheEntry is a successfully validated key.
type cacheEntry struct {
	principal authz.Principal
	// until is min(validated-at + TTL, key ExpiresAt): the entry is never
	// served past the key's own expiry.
	until time.Time
}

// tokenCache is a TTL + LRU cache of validated tokens with an index by key id
// so that revocations through the Service can drop entries at once.
type tokenCache struct {
	ttl time.Duration

	mu      sync.Mutex
	entries *lru[tokenDigest, cacheEntry]
	byKey   map[string]tokenDigest // a key has one valid token, so one digest
	// gen counts invalidations. A validation that started (read the store)
	// before an invalidation must not be cached after it, or a revocation
	// racing with a cache miss could leave a stale entry for a whole TTL.
	gen uint64
}

func newTokenCache(ttl time.Duration, size int) *tokenCache {
	return &tokenCache{ttl: ttl, entries: newLRU[tokenDigest, cacheEntry](size), byKey: make(map[string]tokenDigest)}
}

// get returns the principal for d if cached and fresh at now.
func (c *tokenCache) get(d tokenDigest, now time.Time) (authz.Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries.get(d)
	if !ok {
		return authz.Principal{}, false
	}
	if !now.Before(e.until) {
		c.entries.remove(d)
		if c.byKey[e.principal.KeyID] == d {
			delete(c.byKey, e.principal.KeyID)
		}
		return authz.Principal{}, false
	}
	return e.principal, true
}

// generation returns the current invalidation generation; pass it to put.
func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches p for d until min(now+ttl, expiresAt) (zero expiresAt = none),
// unless an invalidation happened since gen was obtained.
func (c *tokenCache) put(d tokenDigest, p authz.Principal, now, expiresAt time.Time, gen uint64) {
	until := now.Add(c.ttl)
	if !expiresAt.IsZero() && expiresAt.Before(until) {
		until = expiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if old, ok := c.byKey[p.KeyID]; ok && old != d {
		c.entries.remove(old)
	}
	c.byKey[p.KeyID] = d
	if evD, ev, evicted := c.entries.put(d, cacheEntry{principal: p, until: until}); evicted {
		if c.byKey[ev.principal.KeyID] == evD {
			delete(c.byKey, ev.principal.KeyID)
		}
	}
}

// invalidate drops the entry of keyID, if any.
func (c *tokenCache) invalidate(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if d, ok := c.byKey[keyID]; ok {
		c.entries.remove(d)
		delete(c.byKey, keyID)
	}
}

// len returns the number of cached entries (for tests).
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.len()
}

// touchTracker remembers when the Service last wrote LastUsedAt for each key,
// so that the write happens at most once per interval per key.
type touchTracker struct {
	interval time.Duration

	mu   sync.Mutex
	last *lru[string, time.Time]
}

func newTouchTracker(interval time.Duration, size int) *touchTracker {
	return &touchTracker{interval: interval, last: newLRU[string, time.Time](size)}
}

// due reports whether keyID should be touched at now, given the LastUsedAt
// known from the store (zero if unknown), and if so records now as the last
// touch. Concurrent callers for the same key get true only once.
func (t *touchTracker) due(keyID string, now, stored time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, _ := t.last.get(keyID)
	if stored.After(last) {
		last = stored
		t.last.put(keyID, last)
	}
	if !last.IsZero() && now.Sub(last) < t.interval {
		return false
	}
	t.last.put(keyID, now)
	return true
}
