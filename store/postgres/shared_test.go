package postgres

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/caveatdev/caveat/store/storetest"
	"github.com/caveatdev/caveat/tp"
	"github.com/caveatdev/caveat/tp/tptest"
	"github.com/google/uuid"
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

// TestPagesAreOneShot: the pages of lists are never read through a cached
// prepared statement, whose generic plan PostgreSQL may switch to after a
// few executions: for a page after a cursor that plan bitmap-scans the
// whole organization (100 ms a page at 10^5 tokens against 2 ms, see
// BENCHMARKS.md). With one connection, the session's prepared statements
// show what pgx cached.
func TestPagesAreOneShot(t *testing.T) {
	u, err := url.Parse(pgtest.FreshDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1")
	u.RawQuery = q.Encode()
	db, err := Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	usr, o, err := db.CreateUserWithOrganization(ctx, store.Signup{User: store.NewUser{Email: "a@example.com", PasswordHash: "x", CreatedAt: now},
		OrganizationSlug: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var toks []store.Token
	for i := range 30 {
		toks = append(toks, store.Token{ID: uuid.NewString(), Name: "t", Profile: "org", OrgID: o.ID, CreatedBy: usr.ID,
			CreatedAt: now.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(time.Hour)})
	}
	if err := db.ImportTokens(ctx, toks); err != nil {
		t.Fatal(err)
	}
	for range 8 { // past the executions after which a generic plan may be chosen
		p := store.Page{Limit: 2}
		for {
			_, next, err := db.ListTokens(ctx, store.TokenFilter{OrgID: o.ID, LiveAt: now}, p)
			if err != nil {
				t.Fatal(err)
			}
			if next == "" {
				break
			}
			p.After = next
		}
		for _, list := range []func() error{
			func() error { _, _, err := db.ListApps(ctx, o.ID, store.Page{Limit: 2}); return err },
			func() error { _, _, err := db.ListRootKeys(ctx, o.ID, store.Page{Limit: 2}); return err },
			func() error { _, _, err := db.ListInvitations(ctx, o.ID, store.Page{Limit: 2}); return err },
			func() error { _, _, err := db.ListMachines(ctx, 1, true, store.Page{Limit: 2}); return err },
			func() error { _, err := db.PurgeExpiredTokens(ctx, now, 1); return err },
		} {
			if err := list(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var cached []string
	rows, err := db.pool.Query(ctx, "SELECT statement FROM pg_prepared_statements")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		for _, page := range []string{"FROM tokens WHERE org_id", "FROM apps WHERE org_id", "FROM root_keys WHERE org_id",
			"FROM invitations", "FROM machines WHERE app_id", "WHERE expires_at <="} {
			if strings.Contains(s, page) {
				cached = append(cached, s)
			}
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(cached) != 0 {
		t.Fatalf("pages read through cached prepared statements:\n%s", strings.Join(cached, "\n"))
	}
}
