package identity

// Login rate limiting: a token bucket per account and per client address,
// counted in Config.Throttles. A server on its own counts in memory; the
// replicas of a deployment on PostgreSQL count in the database, so that a
// guess costs the same bucket whichever replica receives it, and N
// replicas allow what one does.

import (
	"context"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// RateLimit is a token bucket: Burst attempts at once, then one more every
// Every. A zero Burst turns the limit off.
type RateLimit = store.RateLimit

// The default limits. An account allows 10 attempts, then one a minute;
// an address allows 30, then one every 2 s, enough for a shared NAT and
// still slow for a guesser.
var (
	DefaultAccountLimit = RateLimit{Burst: 10, Every: time.Minute}
	DefaultAddressLimit = RateLimit{Burst: 30, Every: 2 * time.Second}
)

// DefaultMaxRateKeys bounds the keys each in-memory limit tracks when
// Config.MaxRateKeys is zero.
const DefaultMaxRateKeys = 100_000

// The limiters' names in Config.Throttles.
const (
	limiterAccount = "login-account"
	limiterAddress = "login-address"
)

// limiter counts attempts of one kind under one limit.
type limiter struct {
	name  string
	limit RateLimit
	store store.Throttles
	now   func() time.Time
}

// allow takes one attempt from key's bucket. When the bucket is empty it
// takes nothing and returns how long until the next attempt is allowed. A
// store that cannot count is an error: the attempt is not allowed.
func (l *limiter) allow(ctx context.Context, key string) (ok bool, retry time.Duration, err error) {
	if l.limit.Burst <= 0 {
		return true, 0, nil
	}
	ok, retry, err = l.store.TakeAttempt(ctx, l.name, key, l.limit, l.now())
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	return ok, retry, nil
}

// reset forgets key, as after a successful login to an account.
func (l *limiter) reset(ctx context.Context, key string) error {
	if l.limit.Burst <= 0 {
		return nil
	}
	if err := l.store.ResetAttempts(ctx, l.name, key); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	return nil
}

// take is allow as an error: nil when the attempt is allowed, a
// *limitedError (429) when it is not, an internal error when the store
// failed.
func (l *limiter) take(ctx context.Context, key string) error {
	ok, retry, err := l.allow(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		return &limitedError{retry: retry}
	}
	return nil
}
