package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/caveatdev/caveat/store/storetest"
	"github.com/caveatdev/caveat/tp"
	"github.com/caveatdev/caveat/tp/tptest"
)

func TestWebLoginsConformance(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.RunWebLogins(t, func(t *testing.T) store.WebLogins {
		db, _ := mustOpen(t)
		return db
	})
}

func TestThrottlesConformance(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.RunThrottles(t, func(t *testing.T) store.Throttles {
		db, _ := mustOpen(t)
		return db
	})
}

func TestFlowStoreConformance(t *testing.T) {
	pgtest.ServerURL(t)
	tptest.Run(t, func(t *testing.T, max int, now func() time.Time) tp.FlowStore {
		db, _ := mustOpen(t)
		return db.FlowStore(max, now)
	})
}

// TestFlowStoreShared: a flow put through one replica's store is read,
// finished and collected through another's, and the bound counts both.
func TestFlowStoreShared(t *testing.T) {
	db, u := mustOpen(t)
	other, err := Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	clk := tptest.NewClock()
	a, b := db.FlowStore(2, clk.Now), other.FlowStore(2, clk.Now)
	ctx := t.Context()
	exp := clk.Now().Add(time.Minute)
	if err := a.Put(ctx, &tp.Flow{ID: tp.FlowID{1}, UserKey: tp.FlowID{1, 'u'}, Ticket: []byte("t1"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	f, err := b.Get(ctx, tp.FlowID{1, 'u'})
	if err != nil {
		t.Fatal(err)
	}
	f.State, f.Caveats = tp.Discharged, []byte{0x90}
	if err := b.Put(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, &tp.Flow{ID: tp.FlowID{2}, Ticket: []byte("t2"), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, &tp.Flow{ID: tp.FlowID{3}, Ticket: []byte("t3"), Expires: exp}); !errorsIsFull(err) {
		t.Fatalf("third flow over two replicas with a bound of 2: %v", err)
	}
	got, err := a.Get(ctx, tp.FlowID{1})
	if err != nil || got.State != tp.Discharged {
		t.Fatalf("finished through the other replica: %+v %v", got, err)
	}
	if err := a.Delete(ctx, tp.FlowID{1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, tp.FlowID{1}); err == nil {
		t.Fatal("collected twice, through two replicas")
	}
	clk.Advance(time.Minute)
	n, err := db.DeleteExpiredFlows(ctx, clk.Now())
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredFlows: %d, %v; want the one left", n, err)
	}
}

func errorsIsFull(err error) bool { return errors.Is(err, tp.ErrFull) }
