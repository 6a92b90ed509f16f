package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// RunThrottles runs the conformance tests of [store.Throttles] against the
// stores newStore makes: a new, empty one for each call.
func RunThrottles(t *testing.T, newStore func(t *testing.T) store.Throttles) {
	runEach(t, newStore, []namedTest[store.Throttles]{
		{"Buckets", testThrottleBuckets},
		{"Model", testThrottleModel},
		{"Concurrent", testThrottleConcurrent},
		{"DeleteFull", testThrottleDeleteFull},
	})
}

func take(t *testing.T, s store.Throttles, limiter, key string, l store.RateLimit, now time.Time) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := s.TakeAttempt(ctx(t), limiter, key, l, now)
	must(t, err)
	return ok, retry
}

func testThrottleBuckets(t *testing.T, s store.Throttles) {
	l := store.RateLimit{Burst: 2, Every: time.Minute}
	for i := range 2 {
		if ok, _ := take(t, s, "acct", "a", l, t0); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if ok, retry := take(t, s, "acct", "a", l, t0); ok || retry != time.Minute {
		t.Fatalf("third attempt: %v, retry %s; want refused for 1m", ok, retry)
	}
	// Other keys, and the same key in another limiter, have their own.
	if ok, _ := take(t, s, "acct", "b", l, t0); !ok {
		t.Fatal("another key is refused")
	}
	if ok, _ := take(t, s, "addr", "a", l, t0); !ok {
		t.Fatal("the same key in another limiter is refused")
	}
	if ok, retry := take(t, s, "acct", "a", l, at(30*time.Second)); ok || retry != 30*time.Second {
		t.Fatalf("after 30s: %v, retry %s; want refused for 30s", ok, retry)
	}
	if ok, _ := take(t, s, "acct", "a", l, at(time.Minute)); !ok {
		t.Fatal("after 1m: refused")
	}
	if ok, _ := take(t, s, "acct", "a", l, at(time.Minute)); ok {
		t.Fatal("after 1m: two attempts allowed")
	}
	// A clock behind the last attempt (another replica's) refills nothing.
	if ok, _ := take(t, s, "acct", "a", l, at(10*time.Second)); ok {
		t.Fatal("an earlier clock refilled the bucket")
	}
	must(t, s.ResetAttempts(ctx(t), "acct", "a"))
	must(t, s.ResetAttempts(ctx(t), "acct", "never seen"))
	for i := range 2 {
		if ok, _ := take(t, s, "acct", "a", l, at(time.Minute)); !ok {
			t.Fatalf("after reset: attempt %d refused", i+1)
		}
	}
	// Keys are any text, emails included.
	for _, k := range []string{"", "ada@example.com", "ADA@example.com", "2001:db8::/64", "\x00\xff"} {
		if ok, _ := take(t, s, "acct", k, store.RateLimit{Burst: 1, Every: time.Hour}, t0); !ok {
			t.Fatalf("key %q refused", k)
		}
		if ok, _ := take(t, s, "acct", k, store.RateLimit{Burst: 1, Every: time.Hour}, t0); ok {
			t.Fatalf("key %q: second attempt allowed", k)
		}
	}
	_, _, err := s.TakeAttempt(ctx(t), "acct", "a", store.RateLimit{}, t0)
	wantErr(t, err, store.ErrInvalid)
}

// testThrottleModel compares random attempts, resets and clock moves with
// an independent model of the bucket: every answer and every wait must be
// the model's, to the nanosecond.
func testThrottleModel(t *testing.T, s store.Throttles) {
	type bucket struct {
		tokens float64
		last   time.Time
	}
	l := store.RateLimit{Burst: 5, Every: 7 * time.Second}
	model := map[string]*bucket{}
	r := rand.New(rand.NewPCG(1, 2))
	now := t0
	for i := range 400 {
		now = now.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
		key := fmt.Sprint("k", r.IntN(3))
		if r.IntN(20) == 0 {
			must(t, s.ResetAttempts(ctx(t), "m", key))
			delete(model, key)
			continue
		}
		b := model[key]
		if b == nil {
			b = &bucket{tokens: 5, last: now}
			model[key] = b
		}
		b.tokens = min(5, b.tokens+float64(now.Sub(b.last))/float64(l.Every))
		b.last = now
		wantOK, wantRetry := b.tokens >= 1, time.Duration(0)
		if wantOK {
			b.tokens--
		} else {
			wantRetry = time.Duration((1 - b.tokens) * float64(l.Every))
		}
		ok, retry := take(t, s, "m", key, l, now)
		if ok != wantOK || retry != wantRetry {
			t.Fatalf("step %d (%s at +%s): %v retry %s, want %v retry %s", i, key, now.Sub(t0), ok, retry, wantOK, wantRetry)
		}
	}
}

// testThrottleConcurrent: racing attempts on one bucket are counted
// exactly.
func testThrottleConcurrent(t *testing.T, s store.Throttles) {
	l := store.RateLimit{Burst: concurrency / 2, Every: time.Hour}
	errs := parallel(func(int) error {
		ok, _, err := s.TakeAttempt(ctx(t), "c", "k", l, t0)
		if err == nil && !ok {
			err = errRefused
		}
		return err
	})
	allowed := 0
	for _, err := range errs {
		switch {
		case err == nil:
			allowed++
		case !errors.Is(err, errRefused):
			t.Fatal(err)
		}
	}
	if allowed != l.Burst {
		t.Fatalf("%d of %d racing attempts allowed, want %d", allowed, concurrency, l.Burst)
	}
}

var errRefused = errors.New("refused")

func testThrottleDeleteFull(t *testing.T, s store.Throttles) {
	l := store.RateLimit{Burst: 2, Every: time.Minute}
	take(t, s, "d", "one", l, t0)  // full again at 1m
	take(t, s, "d", "two", l, t0)  // full again at 2m
	take(t, s, "d", "two", l, t0)  //
	take(t, s, "d", "none", l, t0) // full again at 1m
	n, err := s.DeleteFullBuckets(ctx(t), at(time.Minute-time.Microsecond))
	must(t, err)
	if n != 0 {
		t.Fatalf("deleted %d buckets before any was full", n)
	}
	n, err = s.DeleteFullBuckets(ctx(t), at(time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("deleted %d buckets full at 1m, want 2", n)
	}
	// "two" still counts: one attempt refilled, not two.
	take(t, s, "d", "two", l, at(time.Minute))
	if ok, _ := take(t, s, "d", "two", l, at(time.Minute)); ok {
		t.Fatal("a bucket that was not full was forgotten")
	}
}
