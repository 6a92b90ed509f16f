package store

import (
	"context"
	"time"
)

// RateLimit is a token bucket: Burst attempts at once, then one more every
// Every. A Burst of 0 or less means no limit; callers do not ask a store
// to count attempts under it.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// Bucket is the state of one token bucket: the attempts left at Updated.
// The zero Bucket is not a full one; a bucket that is not held anywhere
// is full (see [RateLimit.Full]).
type Bucket struct {
	Tokens  float64
	Updated time.Time
}

// Full returns the bucket of a key first seen at now: Burst attempts.
func (l RateLimit) Full(now time.Time) Bucket {
	return Bucket{Tokens: float64(l.Burst), Updated: now}
}

// Take refills b for the time since b.Updated and takes one attempt from
// it. When less than one attempt is left it takes nothing and returns how
// long until there is one. b.Updated becomes now unless now is earlier (a
// replica whose clock is behind refills nothing, and takes nothing back).
// Every backend counts with this one function, so that replicas sharing
// buckets throttle exactly as one process does.
func (l RateLimit) Take(b *Bucket, now time.Time) (ok bool, retry time.Duration) {
	if elapsed := now.Sub(b.Updated); elapsed > 0 {
		if l.Every > 0 {
			b.Tokens = min(float64(l.Burst), b.Tokens+float64(elapsed)/float64(l.Every))
		}
		b.Updated = now
	}
	if b.Tokens >= 1 {
		b.Tokens--
		return true, 0
	}
	if l.Every <= 0 {
		return false, time.Second
	}
	return false, time.Duration((1 - b.Tokens) * float64(l.Every))
}

// FullAt is when b is full again if nothing more is taken: from then on it
// is the same as a bucket not held, and may be forgotten. With no refill
// (Every ≤ 0) it never is, and FullAt returns the zero time.
func (l RateLimit) FullAt(b Bucket) time.Time {
	if l.Every <= 0 {
		return time.Time{}
	}
	missing := max(float64(l.Burst)-b.Tokens, 0)
	return b.Updated.Add(time.Duration(missing * float64(l.Every)))
}

// Throttles counts attempts in token buckets, each named by a limiter
// ("login-account", "login-address"…) and a key in it (an email key, a
// client address). A backend may keep keys hashed.
type Throttles interface {
	// TakeAttempt takes one attempt from the bucket of limiter and key
	// under limit, as [RateLimit.Take] does; a bucket not held is full.
	// It reports whether the attempt is allowed and, when it is not, how
	// long until one is. Calls on one bucket are serialised, across
	// processes: of n concurrent calls on a bucket with k attempts left,
	// exactly min(n, k) are allowed. limit.Burst must be at least 1
	// (ErrInvalid otherwise); callers pass the same limit for a limiter
	// every time.
	TakeAttempt(ctx context.Context, limiter, key string, limit RateLimit, now time.Time) (ok bool, retry time.Duration, err error)

	// ResetAttempts forgets the bucket of limiter and key, which is then
	// full, as after a successful login to an account. Forgetting a bucket
	// not held succeeds.
	ResetAttempts(ctx context.Context, limiter, key string) error

	// DeleteFullBuckets forgets the buckets that are full at before (they
	// are the same as buckets not held) and returns how many.
	DeleteFullBuckets(ctx context.Context, before time.Time) (int, error)
}
