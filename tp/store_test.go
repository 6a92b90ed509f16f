package tp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/tp"
	"github.com/caveatdev/caveat/tp/tptest"
)

// clock is a settable time source.
// newClock is the tests' settable clock.
func newClock() *fake.Clock { return fake.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }

// TestMemoryStoreConformance runs the FlowStore conformance suite on the
// in-memory store.
func TestMemoryStoreConformance(t *testing.T) {
	tptest.Run(t, func(_ *testing.T, max int, now func() time.Time) tp.FlowStore {
		return tp.NewMemoryStore(max, now)
	})
}

// TestMemoryStoreLen: Len counts what is held, and expired flows leave
// when a new one is put.
func TestMemoryStoreLen(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := tp.NewMemoryStore(0, clk.Now)
	for b := byte(1); b <= 3; b++ {
		if err := s.Put(ctx, &tp.Flow{ID: tp.FlowID{b}, Ticket: []byte{b}, Expires: clk.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 3 {
		t.Fatalf("%d held", s.Len())
	}
	clk.Advance(time.Minute)
	s.Put(ctx, &tp.Flow{ID: tp.FlowID{9}, Expires: clk.Now().Add(time.Minute)})
	if s.Len() != 1 {
		t.Fatalf("%d held after expiry", s.Len())
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
