package auth

import "container/list"

// lru is a minimal size-bounded least-recently-used map. It is not safe for
// concurrent use; owners guard it with their own mutex.
type lru[K comparable, V any] struct {
	max   int
	ll    *list.List // front = most recently used; values are *lruItem
	items map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, ll: list.New(), items: make(map[K]*list.Element)}
}

// get returns the value for k and marks it most recently used.
func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

// ref returns a pointer to the stored value for in-place updates, marking it
// most recently used, or nil.
func (c *lru[K, V]) ref(k K) *V {
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return &e.Value.(*lruItem[K, V]).val
	}
	return nil
}

// put stores v under k as most recently used. If that exceeds the capacity,
// the least recently used entry is removed and returned with evicted=true.
func (c *lru[K, V]) put(k K, v V) (evictedKey K, evictedVal V, evicted bool) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruItem[K, V]).val = v
		c.ll.MoveToFront(e)
		return evictedKey, evictedVal, false
	}
	c.items[k] = c.ll.PushFront(&lruItem[K, V]{key: k, val: v})
	if c.ll.Len() <= c.max {
		return evictedKey, evictedVal, false
	}
	oldest := c.ll.Back()
	it := oldest.Value.(*lruItem[K, V])
	c.ll.Remove(oldest)
	delete(c.items, it.key)
	return it.key, it.val, true
}

// remove deletes k and reports whether it was present.
func (c *lru[K, V]) remove(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.ll.Remove(e)
		delete(c.items, k)
		return e.Value.(*lruItem[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) len() int { return c.ll.Len() }
