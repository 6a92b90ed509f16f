package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds or within has passed, and reports
// whether it held. Tests wait for a condition this way, never for a fixed
// time: within only keeps a broken test from hanging, and is not a timing
// assertion.
func Eventually(within time.Duration, cond func() bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// WaitFor is Eventually with a deadline of 10 seconds, failing t with
// what it waited for when cond never held.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Eventually(10*time.Second, cond) {
		t.Fatalf("timed out waiting until %s", what)
	}
}
