package tp_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/tp"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func id(b byte) tp.FlowID { return tp.FlowID{b} }

func flow(b byte, expires time.Time) *tp.Flow {
	return &tp.Flow{ID: id(b), UserKey: tp.FlowID{b, 'u'}, Ticket: []byte{b}, Expires: expires}
}

func TestMemoryStoreExpiry(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := tp.NewMemoryStore(10, clk.Now)
	if err := s.Put(ctx, flow(1, clk.Now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if _, err := s.Get(ctx, id(1)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if _, err := s.Get(ctx, tp.FlowID{1, 'u'}); err != nil {
		t.Fatalf("by user key before expiry: %v", err)
	}
	clk.Advance(time.Second)
	for _, k := range []tp.FlowID{id(1), {1, 'u'}} {
		if _, err := s.Get(ctx, k); !errors.Is(err, tp.ErrNotFound) {
			t.Fatalf("at expiry: %v, want ErrNotFound", err)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("expired flow still held (%d)", s.Len())
	}

	// An expired flow cannot be deleted (collected) either.
	s.Put(ctx, flow(2, clk.Now().Add(time.Minute)))
	clk.Advance(2 * time.Minute)
	if err := s.Delete(ctx, id(2)); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("delete after expiry: %v", err)
	}
	// Putting an already expired flow stores nothing, and replaces.
	s.Put(ctx, flow(3, clk.Now().Add(time.Minute)))
	s.Put(ctx, flow(3, clk.Now()))
	if _, err := s.Get(ctx, id(3)); !errors.Is(err, tp.ErrNotFound) || s.Len() != 0 {
		t.Fatalf("expired put: %v, %d held", err, s.Len())
	}
}

func TestMemoryStoreBound(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := tp.NewMemoryStore(3, clk.Now)
	later := clk.Now().Add(time.Hour)
	for b := byte(1); b <= 3; b++ {
		s.Put(ctx, flow(b, later))
	}
	s.Get(ctx, id(1)) // 1 is now the most recently used; 2 the least
	s.Put(ctx, flow(4, later))
	if s.Len() != 3 {
		t.Fatalf("%d flows held, bound is 3", s.Len())
	}
	if _, err := s.Get(ctx, id(2)); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("least recently used flow not evicted: %v", err)
	}
	if _, err := s.Get(ctx, tp.FlowID{2, 'u'}); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("evicted flow's user key still found: %v", err)
	}
	for _, b := range []byte{1, 3, 4} {
		if _, err := s.Get(ctx, id(b)); err != nil {
			t.Fatalf("flow %d: %v", b, err)
		}
	}
	// Many more puts never exceed the bound.
	for b := byte(10); b < 200; b++ {
		s.Put(ctx, flow(b, later))
		if s.Len() > 3 {
			t.Fatalf("%d flows held", s.Len())
		}
	}
	if tp.NewMemoryStore(0, nil) == nil {
		t.Fatal("default store")
	}
}

func TestMemoryStoreReplaceAndDelete(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := tp.NewMemoryStore(10, clk.Now)
	f := flow(1, clk.Now().Add(time.Hour))
	s.Put(ctx, f)
	f.Ticket[0] = 99 // the store holds a copy
	got, _ := s.Get(ctx, id(1))
	if got.Ticket[0] != 1 {
		t.Fatal("Put kept the caller's slice")
	}
	got.Ticket[0] = 98
	if again, _ := s.Get(ctx, id(1)); again.Ticket[0] != 1 {
		t.Fatal("Get returned the stored slice")
	}
	got.State, got.Error = tp.Failed, "no"
	s.Put(ctx, got)
	if again, _ := s.Get(ctx, tp.FlowID{1, 'u'}); again.State != tp.Failed || s.Len() != 1 {
		t.Fatalf("replace: %+v, %d held", again, s.Len())
	}
	if err := s.Delete(ctx, tp.FlowID{1, 'u'}); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("delete by user key: %v, want ErrNotFound (only the ID deletes)", err)
	}
	if err := s.Delete(ctx, id(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, tp.FlowID{1, 'u'}); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("user key after delete: %v", err)
	}
	if err := s.Put(ctx, &tp.Flow{Expires: clk.Now().Add(time.Hour)}); err == nil {
		t.Fatal("put without an ID")
	}
}

// TestMemoryStoreDeleteOnce: of concurrent deletions, exactly one wins, which
// is how a discharge is handed out once.
func TestMemoryStoreDeleteOnce(t *testing.T) {
	ctx := context.Background()
	s := tp.NewMemoryStore(10, nil)
	s.Put(ctx, flow(1, time.Now().Add(time.Hour)))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Delete(ctx, id(1)) == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d deletions won", wins.Load())
	}
}

// TestServerFlowExpiry: a flow not finished within the TTL is gone; the
// poll says 404 and Complete says ErrNotFound.
func TestServerFlowExpiry(t *testing.T) {
	clk := newClock()
	flows := make(chan tp.FlowID, 1)
	d := newDischarger(t, "aaa", func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		flows <- req.Flow
		return tp.Poll(), nil
	}, func(c *tp.Config) { c.Now = clk.Now; c.FlowTTL = time.Minute })
	a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d))))
	u, _ := a.body["poll_url"].(string)
	id := <-flows
	if a := do(t, "GET", u, "", ""); a.status != 202 {
		t.Fatalf("poll before expiry: %d %s", a.status, a.raw)
	}
	if p, err := d.srv.Lookup(context.Background(), id); err != nil || !p.Expires.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("lookup: %+v %v", p, err)
	}
	clk.Advance(time.Minute)
	if a := do(t, "GET", u, "", ""); a.status != 404 {
		t.Fatalf("poll after expiry: %d %s", a.status, a.raw)
	}
	if err := d.srv.Complete(context.Background(), id, user42()); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("Complete after expiry: %v", err)
	}
}

func TestFlowID(t *testing.T) {
	want := tp.FlowID{0xab, 0xcd}
	got, err := tp.ParseFlowID(want.String())
	if err != nil || got != want {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "ab", want.String() + "00", "zz" + want.String()[2:]} {
		if _, err := tp.ParseFlowID(bad); err == nil {
			t.Errorf("ParseFlowID(%q) succeeded", bad)
		}
	}
	if !(tp.FlowID{}).IsZero() || want.IsZero() {
		t.Fatal("IsZero")
	}
}
