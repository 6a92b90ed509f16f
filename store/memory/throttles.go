package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caveatdev/caveat/store"
)

var _ store.Throttles = (*Throttles)(nil)

// DefaultMaxKeys bounds the buckets of each limiter when NewThrottles is
// given 0.
const DefaultMaxKeys = 100_000

// Throttles counts attempts in memory, for one process: at most max
// buckets per limiter.
type Throttles struct {
	max int

	mu       sync.Mutex
	limiters map[string]*limiterBuckets
}

type limiterBuckets struct {
	limit   store.RateLimit // the limit of the last call, for pruning
	buckets map[string]*store.Bucket
}

// NewThrottles returns empty throttles holding at most max buckets per
// limiter (DefaultMaxKeys when max ≤ 0).
func NewThrottles(max int) *Throttles {
	if max <= 0 {
		max = DefaultMaxKeys
	}
	return &Throttles{max: max, limiters: map[string]*limiterBuckets{}}
}

// TakeAttempt implements [store.Throttles].
func (t *Throttles) TakeAttempt(_ context.Context, limiter, key string, limit store.RateLimit, now time.Time) (bool, time.Duration, error) {
	if limit.Burst < 1 {
		return false, 0, fmt.Errorf("memory: take attempt: burst %d: %w", limit.Burst, store.ErrInvalid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.limiters[limiter]
	if l == nil {
		l = &limiterBuckets{buckets: map[string]*store.Bucket{}}
		t.limiters[limiter] = l
	}
	l.limit = limit
	b := l.buckets[key]
	if b == nil {
		t.makeRoom(l, now)
		full := limit.Full(now)
		b = &full
		l.buckets[key] = b
	}
	ok, retry := limit.Take(b, now)
	return ok, retry, nil
}

// makeRoom keeps a limiter within max buckets: it first drops the buckets
// that are full again (the same as no bucket), and when that is not enough
// it forgets them all. Forgetting lets the keys held try again early; the
// alternative, refusing new keys, would let anyone lock everyone out by
// filling the map.
func (t *Throttles) makeRoom(l *limiterBuckets, now time.Time) {
	if len(l.buckets) < t.max {
		return
	}
	for k, b := range l.buckets {
		if full := l.limit.FullAt(*b); !full.IsZero() && !full.After(now) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= t.max*3/4 {
		clear(l.buckets)
	}
}

// ResetAttempts implements [store.Throttles].
func (t *Throttles) ResetAttempts(_ context.Context, limiter, key string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.limiters[limiter]; l != nil {
		delete(l.buckets, key)
	}
	return nil
}

// DeleteFullBuckets implements [store.Throttles].
func (t *Throttles) DeleteFullBuckets(_ context.Context, before time.Time) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.limiters {
		for k, b := range l.buckets {
			if full := l.limit.FullAt(*b); !full.IsZero() && !full.After(before) {
				delete(l.buckets, k)
				n++
			}
		}
	}
	return n, nil
}

// Len returns the number of buckets held by limiter.
func (t *Throttles) Len(limiter string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.limiters[limiter]; l != nil {
		return len(l.buckets)
	}
	return 0
}
