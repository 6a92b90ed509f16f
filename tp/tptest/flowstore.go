// Package tptest is the conformance suite of [tp.FlowStore]: the
// in-memory store and every shared one run it, so that a discharger
// behaves the same on one process and on replicas sharing a database.
package tptest

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

// NewStore makes a new, empty store holding at most max live flows, on the
// clock now. It closes what it opens when t ends.
type NewStore func(t *testing.T, max int, now func() time.Time) tp.FlowStore

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, newStore NewStore)
	}{
		{"Expiry", testExpiry},
		{"Bound", testBound},
		{"PerTicket", testPerTicket},
		{"ReplaceAndDelete", testReplaceAndDelete},
		{"DeleteOnce", testDeleteOnce},
		{"RoundTrip", testRoundTrip},
		{"FinishOnce", testFinishOnce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

// Clock is a settable time source, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed instant with no sub-microsecond
// part, which every store keeps exactly.
func NewClock() *Clock { return &Clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func id(b byte) tp.FlowID { return tp.FlowID{b} }

func userKey(b byte) tp.FlowID { return tp.FlowID{b, 'u'} }

func flow(b byte, expires time.Time) *tp.Flow {
	return &tp.Flow{ID: id(b), UserKey: userKey(b), Ticket: []byte{b}, Expires: expires}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantGone(t *testing.T, s tp.FlowStore, key tp.FlowID, what string) {
	t.Helper()
	if _, err := s.Get(context.Background(), key); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("%s: Get = %v, want ErrNotFound", what, err)
	}
}

func testExpiry(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 10, clk.Now)
	must(t, s.Put(ctx, flow(1, clk.Now().Add(time.Minute))))
	clk.Advance(59 * time.Second)
	for _, k := range []tp.FlowID{id(1), userKey(1)} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
	}
	clk.Advance(time.Second)
	wantGone(t, s, id(1), "at expiry")
	wantGone(t, s, userKey(1), "by user key at expiry")

	// An expired flow cannot be deleted (collected) either.
	must(t, s.Put(ctx, flow(2, clk.Now().Add(time.Minute))))
	clk.Advance(2 * time.Minute)
	if err := s.Delete(ctx, id(2)); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("delete after expiry: %v", err)
	}
	// Putting an already expired flow stores nothing, and replaces.
	must(t, s.Put(ctx, flow(3, clk.Now().Add(time.Minute))))
	must(t, s.Put(ctx, flow(3, clk.Now())))
	wantGone(t, s, id(3), "expired put")
	// A flow's keys are free again once it has expired.
	must(t, s.Put(ctx, flow(2, clk.Now().Add(time.Minute))))
	if _, err := s.Get(ctx, userKey(2)); err != nil {
		t.Fatalf("a new flow under an expired one's keys: %v", err)
	}
}

// testBound: a full store refuses new flows with a *FullError saying when
// the first expires, never evicts a live flow, still lets its flows be
// replaced (finished), and makes room as flows are collected or expire.
func testBound(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 3, clk.Now)
	start := clk.Now()
	for b := byte(1); b <= 3; b++ {
		must(t, s.Put(ctx, flow(b, start.Add(time.Hour+time.Duration(b)*time.Minute))))
	}
	clk.Advance(30 * time.Minute)
	for b := byte(10); b < 30; b++ {
		err := s.Put(ctx, flow(b, clk.Now().Add(time.Hour)))
		var fe *tp.FullError
		if !errors.Is(err, tp.ErrFull) || !errors.As(err, &fe) || fe.PerTicket || fe.Max != 3 || fe.RetryAfter != 31*time.Minute {
			t.Fatalf("put on a full store: %v (%+v), want a FullError retrying in 31m", err, fe)
		}
		wantGone(t, s, id(b), "a refused flow")
	}
	for b := byte(1); b <= 3; b++ {
		if _, err := s.Get(ctx, id(b)); err != nil {
			t.Fatalf("flow %d evicted: %v", b, err)
		}
	}
	// Finishing a flow replaces it, which a full store allows.
	f, err := s.Get(ctx, id(2))
	must(t, err)
	f.State = tp.Discharged
	must(t, s.Put(ctx, f))
	if got, _ := s.Get(ctx, userKey(2)); got == nil || got.State != tp.Discharged {
		t.Fatalf("replaced flow: %+v", got)
	}
	// A collected flow makes room.
	must(t, s.Delete(ctx, id(2)))
	must(t, s.Put(ctx, flow(4, clk.Now().Add(time.Hour))))
	// Expired flows make room without being looked up.
	clk.Advance(32 * time.Minute) // flow 1 has expired
	must(t, s.Put(ctx, flow(5, clk.Now().Add(time.Hour))))
}

// testPerTicket: one ticket holds at most DefaultMaxFlowsPerTicket live
// flows; others are unaffected, and the ticket gets room back as its flows
// go.
func testPerTicket(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 100, clk.Now)
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
	must(t, put(101, []byte("another ticket"), time.Hour))
	must(t, s.Delete(ctx, id(1)))
	must(t, put(102, ticket, time.Hour))
	clk.Advance(soonest)
	must(t, put(103, ticket, time.Hour))
}

func testReplaceAndDelete(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 10, clk.Now)
	f := flow(1, clk.Now().Add(time.Hour))
	must(t, s.Put(ctx, f))
	f.Ticket[0] = 99 // the store holds a copy
	got, err := s.Get(ctx, id(1))
	must(t, err)
	if got.Ticket[0] != 1 {
		t.Fatal("Put kept the caller's slice")
	}
	got.Ticket[0] = 98
	if again, _ := s.Get(ctx, id(1)); again.Ticket[0] != 1 {
		t.Fatal("Get returned the stored slice")
	}
	got.Ticket[0] = 1
	got.State, got.Error = tp.Failed, "no"
	must(t, s.Put(ctx, got))
	if again, _ := s.Get(ctx, userKey(1)); again == nil || again.State != tp.Failed || again.Error != "no" {
		t.Fatalf("replace: %+v", again)
	}
	if err := s.Delete(ctx, userKey(1)); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("delete by user key: %v, want ErrNotFound (only the ID deletes)", err)
	}
	must(t, s.Delete(ctx, id(1)))
	wantGone(t, s, userKey(1), "user key after delete")
	if err := s.Delete(ctx, id(1)); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.Put(ctx, &tp.Flow{Expires: clk.Now().Add(time.Hour)}); err == nil {
		t.Fatal("put without an ID")
	}
}

// testDeleteOnce: of concurrent deletions, exactly one wins, which is how
// a discharge is handed out once.
func testDeleteOnce(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 10, clk.Now)
	must(t, s.Put(ctx, flow(1, clk.Now().Add(time.Hour))))
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

// testRoundTrip: every field comes back as it went in, nil apart from
// empty where the protocol tells them apart (a binding), and a poll flow
// has no user key.
func testRoundTrip(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 10, clk.Now)
	exp := clk.Now().Add(time.Hour)
	bound := &tp.Flow{ID: id(1), UserKey: userKey(1), Ticket: []byte("sealed"), Binding: []byte("0123456789abcdef"),
		Expires: exp, State: tp.Discharged, Caveats: []byte{0x91, 0x01}, Error: ""}
	poll := &tp.Flow{ID: id(2), Ticket: []byte("sealed 2"), Expires: exp, State: tp.Failed, Error: "refused: no"}
	for _, f := range []*tp.Flow{bound, poll} {
		pending := *f
		pending.State, pending.Caveats, pending.Error = tp.Pending, nil, ""
		must(t, s.Put(ctx, &pending))
		must(t, s.Put(ctx, f))
		got, err := s.Get(ctx, f.ID)
		must(t, err)
		if got.ID != f.ID || got.UserKey != f.UserKey || string(got.Ticket) != string(f.Ticket) ||
			(got.Binding == nil) != (f.Binding == nil) || string(got.Binding) != string(f.Binding) ||
			!got.Expires.Equal(f.Expires) || got.State != f.State || string(got.Caveats) != string(f.Caveats) || got.Error != f.Error {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
		}
	}
	// The zero user key finds nothing.
	wantGone(t, s, tp.FlowID{}, "the zero key")
}

// testFinishOnce: a flow is finished once, whoever races to finish it, and
// a finish that comes after the poll collected the flow stores nothing, so
// that no second poll can collect it (a second discharge).
func testFinishOnce(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clk := NewClock()
	s := newStore(t, 10, clk.Now)
	must(t, s.Put(ctx, flow(1, clk.Now().Add(time.Hour))))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.Get(ctx, id(1))
			if err != nil {
				t.Error(err)
				return
			}
			f.State, f.Caveats = tp.Discharged, []byte{byte(i)}
			switch err := s.Put(ctx, f); {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, tp.ErrFinished):
				t.Errorf("a losing finish: %v, want ErrFinished", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d finishes won", wins.Load())
	}
	late, err := s.Get(ctx, id(1))
	must(t, err)
	must(t, s.Delete(ctx, id(1))) // the poll collects it
	if err := s.Put(ctx, late); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("a finish after the collection: %v, want ErrNotFound", err)
	}
	wantGone(t, s, id(1), "after a late finish")
	// Never stored: a finish is not a start.
	done := flow(2, clk.Now().Add(time.Hour))
	done.State = tp.Failed
	if err := s.Put(ctx, done); !errors.Is(err, tp.ErrNotFound) {
		t.Fatalf("a finished flow never started: %v, want ErrNotFound", err)
	}
}
