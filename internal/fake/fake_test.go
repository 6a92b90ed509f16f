package fake

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now %s, want %s", c.Now(), start)
	}
	c.Advance(90 * time.Second)
	c.Advance(-30 * time.Second)
	if want := start.Add(time.Minute); !c.Now().Equal(want) {
		t.Fatalf("after advancing: %s, want %s", c.Now(), want)
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Fatalf("after Set: %s", c.Now())
	}
}

func TestBufferConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "%d.%d\n", i, j)
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n < 8*100*4 {
		t.Fatalf("buffer holds %d bytes, want every line", n)
	}
	b.Reset()
	if b.String() != "" {
		t.Fatal("Reset left text")
	}
}
