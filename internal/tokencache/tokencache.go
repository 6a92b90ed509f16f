// Package tokencache is a bounded cache of verified bundles, keyed by the
// SHA-256 of the bundle's text, whose entries expire and can be evicted by
// the token they belong to (when the token is revoked). It is safe for
// concurrent use.
//
// # Bounds
//
// A cache is bounded twice: in entries and in bytes. A bundle is at most
// 256 KiB and what verifying it yields can be much larger than the bundle
// when a hostile holder shapes it so, so an entry count alone bounds
// nothing: the caller gives each entry's size (what its value holds, as
// the caller estimates it), the cache adds EntryOverhead for its own
// bookkeeping, and it evicts the least recently used entries until both
// bounds hold. An entry larger than the whole byte bound is not cached.
//
// Expired entries are swept: every Put removes those that have expired (an
// expiry heap makes that cost proportional to what is removed), and Sweep
// does the same for callers with a periodic loop, so that a burst of
// entries does not stay in memory until newer ones push it out.
//
// # Serving only what revocation can reach
//
// A cached verification is only as good as the revocation feed that can
// evict it. Feed records when the feed was last read to its end; callers
// serve cached entries only while that is recent (their settle window),
// and verify afresh otherwise, so that a feed that fails silently cannot
// keep a revoked token allowed.
package tokencache

import (
	"container/heap"
	"container/list"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

// Key is the SHA-256 of a bundle's text.
type Key [32]byte

// KeyOf returns the key of a bundle.
func KeyOf(header string) Key { return sha256.Sum256([]byte(header)) }

// EntryOverhead is what the cache counts for each entry beyond the size its
// caller gives and the token id's bytes: the list element, the entry, its
// slots in the key and token indexes and in the expiry heap.
const EntryOverhead = 384

// Limits bound a cache.
type Limits struct {
	// Entries bounds the number of entries (at least 1).
	Entries int
	// Bytes bounds the sum of the entries' sizes, EntryOverhead included
	// (at least EntryOverhead).
	Bytes int64
}

// Item is what Put caches under a key.
type Item[V any] struct {
	// Token is the id of the token the value belongs to, for EvictToken.
	Token string
	Value V
	// Size is the number of bytes the value holds, as the caller
	// estimates it: what caching it keeps alive.
	Size int
	// Expires is when the entry stops being returned.
	Expires time.Time
}

// Cache maps bundle keys to values of type V.
type Cache[V any] struct {
	limits Limits

	mu      sync.Mutex
	lru     *list.List // of *entry[V], most recently used first
	byKey   map[Key]*entry[V]
	byToken map[string]*entry[V] // the first of each token's entries, linked through next and prev
	expiry  expiryHeap[V]
	bytes   int64
	// gen counts evictions by token, so that a value verified while a
	// revocation was being applied is not cached (see Generation).
	gen uint64
}

type entry[V any] struct {
	key     Key
	token   string
	value   V
	size    int64 // as counted in Cache.bytes
	expires time.Time
	el      *list.Element
	hi      int       // index in the expiry heap
	prev    *entry[V] // the token's other entries
	next    *entry[V]
}

// New returns a cache within limits.
func New[V any](l Limits) *Cache[V] {
	l.Entries = max(1, l.Entries)
	l.Bytes = max(EntryOverhead, l.Bytes)
	return &Cache[V]{limits: l, lru: list.New(), byKey: map[Key]*entry[V]{}, byToken: map[string]*entry[V]{}}
}

// Limits returns the cache's bounds.
func (c *Cache[V]) Limits() Limits { return c.limits }

// Get returns the value under k if it has not expired at now.
func (c *Cache[V]) Get(k Key, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	e, ok := c.byKey[k]
	if !ok {
		return zero, false
	}
	if !now.Before(e.expires) {
		c.remove(e)
		return zero, false
	}
	c.lru.MoveToFront(e.el)
	return e.value, true
}

// Generation returns a counter that every EvictToken and EvictAll call
// increases. Read it before verifying a bundle and pass it to Put: the
// value is then cached only if nothing was evicted in between, so that a
// revocation that lands while a bundle is being verified is never undone by
// caching the result.
func (c *Cache[V]) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Put caches it under k, unless a token was evicted since gen (see
// Generation), it has expired at now, or it is larger than the whole byte
// bound; it reports whether it cached it. It first removes the entries
// expired at now, then evicts the least recently used entries beyond the
// bounds.
func (c *Cache[V]) Put(k Key, it Item[V], now time.Time, gen uint64) bool {
	size := int64(max(0, it.Size)) + EntryOverhead + int64(len(it.Token))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
	if gen != c.gen || !now.Before(it.Expires) || size > c.limits.Bytes {
		return false
	}
	if e, ok := c.byKey[k]; ok {
		c.remove(e)
	}
	e := &entry[V]{key: k, token: it.Token, value: it.Value, size: size, expires: it.Expires}
	e.el = c.lru.PushFront(e)
	heap.Push(&c.expiry, e)
	c.byKey[k] = e
	if first := c.byToken[it.Token]; first != nil {
		e.next, first.prev = first, e
	}
	c.byToken[it.Token] = e
	c.bytes += size
	for c.lru.Len() > c.limits.Entries || c.bytes > c.limits.Bytes {
		c.remove(c.lru.Back().Value.(*entry[V]))
	}
	return true
}

// Sweep removes every entry expired at now and reports how many.
func (c *Cache[V]) Sweep(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sweep(now)
}

func (c *Cache[V]) sweep(now time.Time) int {
	n := 0
	for len(c.expiry) > 0 && !now.Before(c.expiry[0].expires) {
		c.remove(c.expiry[0])
		n++
	}
	return n
}

// EvictToken removes every entry of the token.
func (c *Cache[V]) EvictToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for c.byToken[token] != nil {
		c.remove(c.byToken[token])
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
	c.expiry = nil
	c.bytes = 0
}

// Len reports the number of entries.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes reports the sum of the entries' sizes, EntryOverhead included.
func (c *Cache[V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

func (c *Cache[V]) remove(e *entry[V]) {
	c.lru.Remove(e.el)
	heap.Remove(&c.expiry, e.hi)
	delete(c.byKey, e.key)
	c.bytes -= e.size
	switch {
	case e.prev != nil:
		e.prev.next = e.next
	case e.next != nil:
		c.byToken[e.token] = e.next
	default:
		delete(c.byToken, e.token)
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
}

// expiryHeap orders entries by expiry, the earliest first.
type expiryHeap[V any] []*entry[V]

func (h expiryHeap[V]) Len() int           { return len(h) }
func (h expiryHeap[V]) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap[V]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hi, h[j].hi = i, j
}
func (h *expiryHeap[V]) Push(x any) {
	e := x.(*entry[V])
	e.hi = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap[V]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// Feed records how current a revocation feed is known to be: the start of
// the latest read that reached the feed's end. Every revocation committed
// before that instant has been applied (its tokens evicted), so a cached
// verification may be served while the instant is recent, and not once it
// is older than the caller's settle window: then the feed may be down, and
// a revocation committed meanwhile unseen. The zero Feed was never
// confirmed. It is safe for concurrent use.
type Feed struct {
	at atomic.Pointer[time.Time]
}

// Confirm records a read that began at start and reached the feed's end,
// with every revocation it returned applied. An earlier start than the one
// recorded changes nothing.
func (f *Feed) Confirm(start time.Time) {
	for {
		old := f.at.Load()
		if old != nil && !start.After(*old) {
			return
		}
		if f.at.CompareAndSwap(old, &start) {
			return
		}
	}
}

// Current reports whether the feed was confirmed within window before
// now. A confirmation later than now (a clock that stepped back) does not
// count.
func (f *Feed) Current(now time.Time, window time.Duration) bool {
	at := f.at.Load()
	if at == nil {
		return false
	}
	d := now.Sub(*at)
	return d >= 0 && d < window
}

// Confirmed returns the start of the latest confirmed read, or the zero
// time for none.
func (f *Feed) Confirmed() time.Time {
	if at := f.at.Load(); at != nil {
		return *at
	}
	return time.Time{}
}
