package tokencache

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1764000000, 0)
	c := New[string](2)
	a, b, d := KeyOf("a"), KeyOf("b"), KeyOf("d")
	c.Put(a, "t1", "A", now.Add(time.Minute), c.Generation())
	c.Put(b, "t1", "B", now.Add(time.Minute), c.Generation())
	if v, ok := c.Get(a, now); !ok || v != "A" {
		t.Fatalf("get a: %q %v", v, ok)
	}
	// Bounded: d pushes out the least recently used, b.
	c.Put(d, "t2", "D", now.Add(time.Minute), c.Generation())
	if _, ok := c.Get(b, now); ok || c.Len() != 2 {
		t.Fatalf("b survived the bound (len %d)", c.Len())
	}
	// Expiry.
	if _, ok := c.Get(d, now.Add(time.Minute)); ok {
		t.Fatal("expired entry returned")
	}
	// Eviction by token.
	c.Put(b, "t1", "B", now.Add(time.Minute), c.Generation())
	c.EvictToken("t1")
	if _, ok := c.Get(a, now); ok {
		t.Fatal("evicted token's entry returned")
	}
	if c.Len() != 0 {
		t.Fatalf("len %d after evicting everything", c.Len())
	}
	// A value verified across an eviction is not cached.
	gen := c.Generation()
	c.EvictToken("t3")
	c.Put(a, "t3", "A", now.Add(time.Minute), gen)
	if _, ok := c.Get(a, now); ok {
		t.Fatal("a value verified during a revocation was cached")
	}
}
