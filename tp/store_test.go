package tp_test

import (
	"context"
	"errors"
	"strings"
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

// TestMemoryStoreBound: a full store refuses new flows with a
// *FullError saying when the first expires, never evicts a live flow,
// still lets its flows be replaced (finished), and makes room as flows
// are collected or expire.
func TestMemoryStoreBound(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := tp.NewMemoryStore(3, clk.Now)
	start := clk.Now()
	for b := byte(1); b <= 3; b++ {
		if err := s.Put(ctx, flow(b, start.Add(time.Hour+time.Duration(b)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(30 * time.Minute)
	for b := byte(10); b < 200; b++ {
		err := s.Put(ctx, flow(b, clk.Now().Add(time.Hour)))
		var fe *tp.FullError
		if !errors.Is(err, tp.ErrFull) || !errors.As(err, &fe) || fe.PerTicket || fe.Max != 3 || fe.RetryAfter != 31*time.Minute {
			t.Fatalf("put on a full store: %v (%+v), want a FullError retrying in 31m", err, fe)
		}
		if s.Len() != 3 {
			t.Fatalf("%d flows held", s.Len())
		}
	}
	if got := (&tp.FullError{Max: 3, RetryAfter: 1500 * time.Millisecond}).Error(); got != "no room for another pending flow: the discharger holds its maximum of 3 pending flows; try again in 2 s" {
		t.Errorf("FullError = %q", got)
	}
	for b := byte(1); b <= 3; b++ {
		if _, err := s.Get(ctx, id(b)); err != nil {
			t.Fatalf("flow %d evicted: %v", b, err)
		}
	}
	// Finishing a flow replaces it, which a full store allows.
	f, _ := s.Get(ctx, id(2))
	f.State = tp.Discharged
	if err := s.Put(ctx, f); err != nil {
		t.Fatalf("replace in a full store: %v", err)
	}
	if got, _ := s.Get(ctx, tp.FlowID{2, 'u'}); got.State != tp.Discharged {
		t.Fatalf("replaced flow: %+v", got)
	}
	// A collected flow makes room.
	if err := s.Delete(ctx, id(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, flow(4, clk.Now().Add(time.Hour))); err != nil {
		t.Fatalf("put after a deletion: %v", err)
	}
	// Expired flows make room without being looked up.
	clk.Advance(32 * time.Minute) // flow 1 has expired
	if err := s.Put(ctx, flow(5, clk.Now().Add(time.Hour))); err != nil {
		t.Fatalf("put after an expiry: %v", err)
	}
	if tp.NewMemoryStore(0, nil) == nil {
		t.Fatal("default store")
	}
}

// TestMemoryStorePerTicket: one ticket holds at most
// DefaultMaxFlowsPerTicket live flows; others are unaffected, and the
// ticket gets room back as its flows go.
func TestMemoryStorePerTicket(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := tp.NewMemoryStore(100, clk.Now)
	ticket := []byte("one ticket")
	put := func(b byte, ticket []byte, life time.Duration) error {
		return s.Put(ctx, &tp.Flow{ID: id(b), Ticket: ticket, Expires: clk.Now().Add(life)})
	}
	for i := range tp.DefaultMaxFlowsPerTicket {
		if err := put(byte(i+1), ticket, time.Hour-time.Duration(i)*time.Minute); err != nil {
			t.Fatalf("flow %d of the ticket: %v", i, err)
		}
	}
	err := put(100, ticket, time.Hour)
	var fe *tp.FullError
	soonest := time.Hour - time.Duration(tp.DefaultMaxFlowsPerTicket-1)*time.Minute
	if !errors.As(err, &fe) || !fe.PerTicket || fe.Max != tp.DefaultMaxFlowsPerTicket || fe.RetryAfter != soonest {
		t.Fatalf("one flow too many: %v (%+v), want a per-ticket FullError retrying in %s", err, fe, soonest)
	}
	if !strings.Contains(err.Error(), "this ticket already has") {
		t.Errorf("FullError = %q", err)
	}
	if err := put(101, []byte("another ticket"), time.Hour); err != nil {
		t.Fatalf("another ticket: %v", err)
	}
	if err := s.Delete(ctx, id(1)); err != nil {
		t.Fatal(err)
	}
	if err := put(102, ticket, time.Hour); err != nil {
		t.Fatalf("after a deletion: %v", err)
	}
	clk.Advance(soonest)
	if err := put(103, ticket, time.Hour); err != nil {
		t.Fatalf("after an expiry: %v", err)
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
