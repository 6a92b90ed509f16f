// Package tokencache is a bounded cache of verified bundles, keyed by the
// SHA-256 of the bundle's text, whose entries expire and can be evicted by
// the token they belong to (when the token is revoked). It is safe for
// concurrent use.
package tokencache

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// Key is the SHA-256 of a bundle's text.
type Key [32]byte

// KeyOf returns the key of a bundle.
func KeyOf(header string) Key { return sha256.Sum256([]byte(header)) }

// Cache maps bundle keys to values of type V.
type Cache[V any] struct {
	max int

	mu      sync.Mutex
	lru     *list.List // of *entry[V], most recently used first
	byKey   map[Key]*list.Element
	byToken map[string][]*list.Element
	// gen counts evictions by token, so that a value verified while a
	// revocation was being applied is not cached (see Generation).
	gen uint64
}

type entry[V any] struct {
	key     Key
	token   string
	value   V
	expires time.Time
}

// New returns a cache holding at most size entries (at least 1).
func New[V any](size int) *Cache[V] {
	return &Cache[V]{max: max(1, size), lru: list.New(), byKey: map[Key]*list.Element{}, byToken: map[string][]*list.Element{}}
}

// Get returns the value under k if it has not expired at now.
func (c *Cache[V]) Get(k Key, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.byKey[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[V])
	if !now.Before(e.expires) {
		c.remove(el)
		return zero, false
	}
	c.lru.MoveToFront(el)
	return e.value, true
}

// Generation returns a counter that every EvictToken call increases. Read it
// before verifying a bundle and pass it to Put: the value is then cached
// only if no token was evicted in between, so that a revocation that lands
// while a bundle is being verified is never undone by caching the result.
func (c *Cache[V]) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Put caches v for token under k until expires, unless a token was
// evicted since gen (see Generation). It evicts the least recently used
// entries beyond the bound.
func (c *Cache[V]) Put(k Key, token string, v V, expires time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el, ok := c.byKey[k]; ok {
		c.remove(el)
	}
	el := c.lru.PushFront(&entry[V]{key: k, token: token, value: v, expires: expires})
	c.byKey[k] = el
	c.byToken[token] = append(c.byToken[token], el)
	for c.lru.Len() > c.max {
		c.remove(c.lru.Back())
	}
}

// EvictToken removes every entry of the token.
func (c *Cache[V]) EvictToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, el := range append([]*list.Element(nil), c.byToken[token]...) {
		c.remove(el)
	}
}

// Len reports the number of entries.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *Cache[V]) remove(el *list.Element) {
	e := el.Value.(*entry[V])
	c.lru.Remove(el)
	delete(c.byKey, e.key)
	els := c.byToken[e.token]
	for i, x := range els {
		if x == el {
			els = append(els[:i], els[i+1:]...)
			break
		}
	}
	if len(els) == 0 {
		delete(c.byToken, e.token)
	} else {
		c.byToken[e.token] = els
	}
}

// EvictAll empties the cache.
func (c *Cache[V]) EvictAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Init()
	clear(c.byKey)
	clear(c.byToken)
}
