package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/memory"
	"github.com/caveatdev/caveat/store/storetest"
)

func TestWebLoginsConformance(t *testing.T) {
	storetest.RunWebLogins(t, func(*testing.T) store.WebLogins { return memory.NewWebLogins() })
}

func TestThrottlesConformance(t *testing.T) {
	storetest.RunThrottles(t, func(*testing.T) store.Throttles { return memory.NewThrottles(0) })
}

// TestThrottlesAreBounded: a limiter keeps at most max buckets, first
// dropping the full ones, and forgetting all of them rather than growing
// when none is full.
func TestThrottlesAreBounded(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1764000000, 0)
	l := store.RateLimit{Burst: 2, Every: time.Minute}
	th := memory.NewThrottles(4)
	take := func(key string) bool {
		ok, _, err := th.TakeAttempt(ctx, "x", key, l, now)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	take("a")
	take("a") // a is exhausted
	for _, k := range []string{"b", "c", "d"} {
		take(k)
	}
	now = now.Add(time.Minute) // b, c and d are full again, a has one attempt
	take("e")
	if n := th.Len("x"); n != 2 {
		t.Errorf("after pruning: %d keys, want a and e", n)
	}
	if !take("a") {
		t.Error("a lost its refill")
	}
	if take("a") {
		t.Error("pruning forgot a, which still counted")
	}
	for i := range 100 {
		take(fmt.Sprint("k", i))
		if n := th.Len("x"); n > 4 {
			t.Fatalf("%d keys tracked, max 4", n)
		}
	}
	// Another limiter has its own bound.
	if ok, _, _ := th.TakeAttempt(ctx, "y", "a", l, now); !ok || th.Len("y") != 1 {
		t.Error("another limiter")
	}
}
