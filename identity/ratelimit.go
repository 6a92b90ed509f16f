package identity

// Login rate limiting: a token bucket per key, in memory. Each replica of
// the identity service counts on its own, so N replicas behind a load
// balancer allow up to N times the configured rate; the limits are there
// to make online guessing slow, not to be exact.

import (
	"sync"
	"time"
)

// RateLimit is a token bucket: Burst attempts at once, then one more every
// Every. A zero Burst turns the limit off.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// The default limits. An account allows 10 attempts, then one a minute;
// an address allows 30, then one every 2 s, enough for a shared NAT and
// still slow for a guesser.
var (
	DefaultAccountLimit = RateLimit{Burst: 10, Every: time.Minute}
	DefaultAddressLimit = RateLimit{Burst: 30, Every: 2 * time.Second}
)

// DefaultMaxRateKeys bounds the keys each limiter tracks when
// Config.MaxRateKeys is zero.
const DefaultMaxRateKeys = 100_000

// limiter counts attempts per key.
type limiter struct {
	limit RateLimit
	max   int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(l RateLimit, max int, now func() time.Time) *limiter {
	return &limiter{limit: l, max: max, now: now, buckets: make(map[string]*bucket)}
}

// allow takes one attempt from key's bucket. When the bucket is empty it
// takes nothing and returns how long until the next attempt is allowed.
func (l *limiter) allow(key string) (ok bool, retry time.Duration) {
	if l.limit.Burst <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		l.makeRoom(now)
		b = &bucket{tokens: float64(l.limit.Burst), last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.limit.Every <= 0 {
		return false, time.Second
	}
	return false, time.Duration((1 - b.tokens) * float64(l.limit.Every))
}

// reset forgets key, as after a successful login to an account.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.buckets, key)
}

func (l *limiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 && l.limit.Every > 0 {
		b.tokens = min(float64(l.limit.Burst), b.tokens+float64(elapsed)/float64(l.limit.Every))
	}
	b.last = now
}

// makeRoom keeps the map within max keys: it first drops the buckets that
// have refilled (they are the same as no bucket), and when that is not
// enough it forgets everything. Forgetting lets the keys in the map try
// again early; the alternative, refusing new keys, would let anyone lock
// everyone out by filling the map.
func (l *limiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.max {
		return
	}
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.limit.Burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max*3/4 {
		clear(l.buckets)
	}
}

// len returns the number of keys tracked.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
