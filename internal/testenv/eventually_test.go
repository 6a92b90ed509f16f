package testenv

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	var n atomic.Int32
	if !Eventually(10*time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("a condition that comes to hold was not seen")
	}
	if n.Load() != 3 {
		t.Errorf("cond asked %d times after it held first at 3", n.Load())
	}
	if Eventually(20*time.Millisecond, func() bool { return false }) {
		t.Error("a condition that never holds was reported held")
	}
}
