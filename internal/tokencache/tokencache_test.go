package tokencache

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

var t0 = time.Unix(1764000000, 0)

func item(token, v string, size int, ttl time.Duration) Item[string] {
	return Item[string]{Token: token, Value: v, Size: size, Expires: t0.Add(ttl)}
}

func TestCache(t *testing.T) {
	c := New[string](Limits{Entries: 2, Bytes: 1 << 20})
	a, b, d := KeyOf("a"), KeyOf("b"), KeyOf("d")
	c.Put(a, item("t1", "A", 1, time.Minute), t0, c.Generation())
	c.Put(b, item("t1", "B", 1, time.Minute), t0, c.Generation())
	if v, ok := c.Get(a, t0); !ok || v != "A" {
		t.Fatalf("get a: %q %v", v, ok)
	}
	// Bounded: d pushes out the least recently used, b.
	c.Put(d, item("t2", "D", 1, time.Minute), t0, c.Generation())
	if _, ok := c.Get(b, t0); ok || c.Len() != 2 {
		t.Fatalf("b survived the bound (len %d)", c.Len())
	}
	// Expiry.
	if _, ok := c.Get(d, t0.Add(time.Minute)); ok {
		t.Fatal("expired entry returned")
	}
	// Eviction by token.
	c.Put(b, item("t1", "B", 1, time.Minute), t0, c.Generation())
	c.EvictToken("t1")
	if _, ok := c.Get(a, t0); ok {
		t.Fatal("evicted token's entry returned")
	}
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Fatalf("len %d, %d bytes after evicting everything", c.Len(), c.Bytes())
	}
	// A value verified across an eviction is not cached.
	gen := c.Generation()
	c.EvictToken("t3")
	if c.Put(a, item("t3", "A", 1, time.Minute), t0, gen) {
		t.Fatal("Put reports caching a value verified during a revocation")
	}
	if _, ok := c.Get(a, t0); ok {
		t.Fatal("a value verified during a revocation was cached")
	}
	// EvictAll empties it and also stops values verified before it.
	gen = c.Generation()
	c.Put(a, item("t4", "A", 1, time.Minute), t0, gen)
	c.EvictAll()
	if c.Len() != 0 || c.Bytes() != 0 || c.Put(b, item("t4", "B", 1, time.Minute), t0, gen) {
		t.Fatalf("after EvictAll: len %d, %d bytes, or a stale Put was cached", c.Len(), c.Bytes())
	}
}

// TestByteBound: the entries' sizes, with EntryOverhead and the token id,
// never add up to more than the byte bound, however many entries the count
// bound allows; the least recently used go first; an entry larger than the
// bound is not cached and evicts nothing.
func TestByteBound(t *testing.T) {
	const bound = 100 << 10
	c := New[string](Limits{Entries: 10_000, Bytes: bound})
	per := int64(10<<10) + EntryOverhead + 2 // each entry: 10 KiB, the overhead, a 2-byte token id
	for i := range 50 {
		if !c.Put(KeyOf(fmt.Sprint(i)), item("t1", "v", 10<<10, time.Minute), t0, c.Generation()) {
			t.Fatalf("entry %d not cached", i)
		}
		// Touch entry 0 so that it stays the most recently used but one.
		c.Get(KeyOf("0"), t0)
		if c.Bytes() > bound {
			t.Fatalf("after %d entries the cache holds %d bytes, over its bound of %d", i+1, c.Bytes(), bound)
		}
	}
	if want := int(bound / per); c.Len() != want || c.Bytes() != int64(want)*per {
		t.Fatalf("%d entries, %d bytes; want %d entries of %d bytes", c.Len(), c.Bytes(), want, per)
	}
	if _, ok := c.Get(KeyOf("0"), t0); !ok {
		t.Error("the recently used entry 0 was evicted before older ones")
	}
	if _, ok := c.Get(KeyOf("40"), t0); ok {
		t.Error("entry 40, among the least recently used, is still cached")
	}
	if _, ok := c.Get(KeyOf("49"), t0); !ok {
		t.Error("the newest entry was evicted")
	}
	n, b := c.Len(), c.Bytes()
	if c.Put(KeyOf("huge"), item("t2", "v", bound, time.Minute), t0, c.Generation()) {
		t.Error("an entry larger than the whole bound was cached")
	}
	if c.Len() != n || c.Bytes() != b {
		t.Errorf("refusing a huge entry changed the cache: %d entries %d bytes, was %d %d", c.Len(), c.Bytes(), n, b)
	}
	// Eviction by token gives the bytes back.
	c.EvictToken("t1")
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after evicting the only token: %d entries, %d bytes", c.Len(), c.Bytes())
	}
}

// TestSweep: expired entries leave the cache on the next Put or Sweep,
// without being looked up, and only they do.
func TestSweep(t *testing.T) {
	c := New[string](Limits{Entries: 10_000, Bytes: 64 << 20})
	for i := range 1000 {
		ttl := time.Minute
		if i%2 == 0 {
			ttl = time.Second
		}
		c.Put(KeyOf(fmt.Sprint(i)), item(fmt.Sprintf("t%d", i%7), "v", 1000, ttl), t0, c.Generation())
	}
	if c.Len() != 1000 {
		t.Fatalf("%d entries", c.Len())
	}
	// One Put a second later removes the 500 expired ones.
	c.Put(KeyOf("new"), item("t9", "v", 1000, time.Minute+time.Second), t0.Add(time.Second), c.Generation())
	if c.Len() != 501 {
		t.Fatalf("after a Put past the short expiry: %d entries, want 501", c.Len())
	}
	if _, ok := c.Get(KeyOf("1"), t0.Add(time.Second)); !ok {
		t.Fatal("a live entry was swept")
	}
	if n := c.Sweep(t0.Add(time.Minute - time.Nanosecond)); n != 0 || c.Len() != 501 {
		t.Fatalf("Sweep before any expiry removed %d (left %d)", n, c.Len())
	}
	// Evicting a token after the sweep removes exactly its live entries
	// (the odd i with i%7 == 3), whatever was swept around them.
	t3 := 0
	for i := 1; i < 1000; i += 2 {
		if i%7 == 3 {
			t3++
		}
	}
	c.EvictToken("t3")
	if c.Len() != 501-t3 {
		t.Fatalf("after evicting t3: %d entries, want %d", c.Len(), 501-t3)
	}
	if n := c.Sweep(t0.Add(time.Minute)); n != 500-t3 || c.Len() != 1 {
		t.Fatalf("Sweep at the long expiry removed %d, left %d; want %d and 1", n, c.Len(), 500-t3)
	}
	if n := c.Sweep(t0.Add(time.Minute + time.Second)); n != 1 || c.Len() != 0 || c.Bytes() != 0 {
		t.Fatalf("final Sweep removed %d, left %d entries and %d bytes", n, c.Len(), c.Bytes())
	}
	// An item already expired is not cached.
	if c.Put(KeyOf("late"), item("t1", "v", 1, time.Second), t0.Add(time.Second), c.Generation()) {
		t.Fatal("an expired item was cached")
	}
}

// TestEntryOverheadCovers: what the cache holds for an entry whose value
// holds nothing of its own stays within EntryOverhead plus the token id's
// bytes, measured on the live heap, so that the byte bound is a bound on
// memory and not only on a count.
func TestEntryOverheadCovers(t *testing.T) {
	const n = 20_000
	tokens := make([]string, n) // the token ids exist before the cache: only the cache's own memory is measured
	for i := range tokens {
		tokens[i] = fmt.Sprintf("%036d", i)
	}
	before := heapBytes()
	c := New[int](Limits{Entries: n, Bytes: 1 << 30})
	for i := range n {
		c.Put(KeyOf(tokens[i]), Item[int]{Token: tokens[i], Value: i, Expires: t0.Add(time.Minute)}, t0, c.Generation())
	}
	after := heapBytes()
	runtime.KeepAlive(c)
	per := float64(after-before) / n
	counted := float64(c.Bytes()-36*n) / n // the token ids were allocated before
	t.Logf("live heap per entry: %.0f bytes; counted: %.0f (EntryOverhead %d)", per, counted, EntryOverhead)
	if per > counted {
		t.Errorf("an entry costs %.0f bytes of heap, more than the %.0f the cache counts: raise EntryOverhead", per, counted)
	}
}

func heapBytes() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFeed: a feed is current for the window after the start of its latest
// confirmed read, and only then.
func TestFeed(t *testing.T) {
	var f Feed
	if f.Current(t0, time.Second) || !f.Confirmed().IsZero() {
		t.Fatal("a feed never read is current")
	}
	f.Confirm(t0)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {999 * time.Millisecond, true}, {time.Second, false}, {time.Hour, false}, {-time.Millisecond, false}} {
		if got := f.Current(t0.Add(tc.at), time.Second); got != tc.want {
			t.Errorf("confirmed at t0, Current(t0%+v) = %v", tc.at, got)
		}
	}
	// A read that began earlier than the recorded one changes nothing.
	f.Confirm(t0.Add(-time.Minute))
	if !f.Confirmed().Equal(t0) {
		t.Errorf("an earlier confirmation moved the feed back to %v", f.Confirmed())
	}
	f.Confirm(t0.Add(2 * time.Second))
	if !f.Current(t0.Add(2500*time.Millisecond), time.Second) {
		t.Error("a later confirmation did not count")
	}
}
