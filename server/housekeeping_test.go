package server_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/caveatdev/caveat/tp"
	"github.com/google/uuid"
)

func TestHousekeepingSQLite(t *testing.T)   { testHousekeeping(t, "") }
func TestHousekeepingPostgres(t *testing.T) { testHousekeeping(t, pgtest.FreshDatabase(t)) }

// testHousekeeping: two replicas on one database and one clock. One round
// deletes the expired sessions, the tokens expired longer than the
// retention (with their revocations), and on PostgreSQL the dead flows and
// full buckets; the other replica does nothing while the first holds the
// lease, and takes over once the lease has run out.
func testHousekeeping(t *testing.T, db string) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := fake.NewClock(time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC))
	const interval = time.Hour
	newReplica := func() *server.Server {
		s, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", DataDir: dir, DB: db, Now: clk.Now,
			HousekeepingInterval: interval, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := newReplica(), newReplica()
	st := a.Store()
	now := clk.Now()
	day := 24 * time.Hour

	u, o, err := st.CreateUserWithOrganization(ctx, store.Signup{
		User:             store.NewUser{Email: "ada@example.com", PasswordHash: "x", CreatedAt: now.Add(-400 * day)},
		OrganizationSlug: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	token := func(created time.Time, expires time.Duration, revoked bool) store.Token {
		tok := store.Token{ID: uuid.NewString(), Name: "t", Profile: "org", OrgID: o.ID, CreatedBy: u.ID, CreatedAt: created}
		if expires != 0 {
			tok.ExpiresAt = created.Add(expires)
		}
		if revoked {
			tok.RevokedAt = created.Add(time.Hour)
		}
		return tok
	}
	longAgo := now.Add(-300 * day)
	expired91 := token(longAgo, 209*day, false) // expired 91 days ago
	revoked91 := token(longAgo, 209*day, true)
	revoked89 := token(longAgo, 211*day, true) // expired 89 days ago: kept
	foreverRevoked := token(longAgo, 0, true)  // could be used forever: kept
	live := token(longAgo, 400*day, false)
	if err := st.ImportTokens(ctx, []store.Token{expired91, revoked91, revoked89, foreverRevoked, live}); err != nil {
		t.Fatal(err)
	}
	for i, s := range []store.Session{
		{ID: "expired", UserID: u.ID, CreatedAt: now.Add(-31 * day), ExpiresAt: now.Add(-day)},
		{ID: "active", UserID: u.ID, CreatedAt: now.Add(-day), ExpiresAt: now.Add(29 * day)},
	} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	shared := db != ""
	if shared {
		sh := st.(interface {
			store.WebLogins
			store.Throttles
			FlowStore(int, func() time.Time) tp.FlowStore
		})
		for i, life := range []time.Duration{-time.Minute, time.Minute} {
			w := store.WebLogin{PollKey: store.FlowKey{byte(i), 1}, UserKey: store.FlowKey{byte(i), 2}, Addr: "192.0.2.1",
				StartedAt: now.Add(-time.Hour), ExpiresAt: now.Add(life)}
			if err := sh.StartWebLogin(ctx, w, 10, now.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		past := fake.NewClock(now.Add(-time.Hour))
		flows := sh.FlowStore(10, past.Now)
		for i, life := range []time.Duration{30 * time.Minute, 2 * time.Hour} {
			if err := flows.Put(ctx, &tp.Flow{ID: tp.FlowID{byte(i + 1)}, Ticket: []byte{byte(i)}, Expires: past.Now().Add(life)}); err != nil {
				t.Fatal(err)
			}
		}
		l := store.RateLimit{Burst: 2, Every: time.Minute}
		sh.TakeAttempt(ctx, "login-address", "full again", l, now.Add(-time.Hour))
		sh.TakeAttempt(ctx, "login-address", "still counting", l, now)
	}

	rep, err := a.Housekeep(ctx)
	if err != nil || !rep.Ran {
		t.Fatalf("first round: %+v, %v", rep, err)
	}
	want := map[string]int{"sessions": 1, "tokens": 2}
	if shared {
		want["web logins"], want["discharge flows"], want["throttle buckets"] = 1, 1, 1
	}
	wantDeleted(t, "first round", rep, want)
	for _, gone := range []store.Token{expired91, revoked91} {
		if _, err := st.GetToken(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token expired 91 days ago: %v", err)
		}
	}
	for _, kept := range []store.Token{revoked89, foreverRevoked, live} {
		if _, err := st.GetToken(ctx, kept.ID); err != nil {
			t.Errorf("token expiring at %v: %v", kept.ExpiresAt, err)
		}
	}
	revs, err := st.RevocationsSince(ctx, 0, 10)
	if err != nil || len(revs) != 2 || revs[0].TokenID != revoked89.ID || revs[1].TokenID != foreverRevoked.ID {
		t.Fatalf("revocation feed after the purge: %+v %v", revs, err)
	}
	if _, err := st.GetSession(ctx, "active"); err != nil {
		t.Errorf("active session: %v", err)
	}

	// The other replica waits for the lease.
	if rep, err := b.Housekeep(ctx); err != nil || rep.Ran {
		t.Fatalf("second replica while the first holds the lease: %+v, %v", rep, err)
	}
	clk.Advance(interval) // a renews in time
	if rep, err := a.Housekeep(ctx); err != nil || !rep.Ran {
		t.Fatalf("renewal: %+v, %v", rep, err)
	}
	clk.Advance(interval + interval/2) // a stopped renewing
	rep, err = b.Housekeep(ctx)
	if err != nil || !rep.Ran {
		t.Fatalf("second replica after the lease ran out: %+v, %v", rep, err)
	}
	wantDeleted(t, "after the lease ran out", rep, map[string]int{"tokens": 0, "sessions": 0})
	if rep, err := a.Housekeep(ctx); err != nil || rep.Ran {
		t.Fatalf("first replica after the second took over: %+v, %v", rep, err)
	}
	// Two days on, the token revoked and expired 89 days ago passes the
	// retention too.
	clk.Advance(2 * day)
	rep, err = b.Housekeep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantDeleted(t, "two days on", rep, map[string]int{"tokens": 1})
	if _, err := st.GetToken(ctx, revoked89.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token revoked and expired 91 days ago: %v", err)
	}
}

// wantDeleted checks the counts of want (and that the others are 0).
func wantDeleted(t *testing.T, what string, rep server.HousekeepingReport, want map[string]int) {
	t.Helper()
	for k, n := range rep.Deleted {
		if n != want[k] {
			t.Errorf("%s: deleted %d %s, want %d (%v)", what, n, k, want[k], rep.Deleted)
		}
	}
	for k := range want {
		if _, ok := rep.Deleted[k]; !ok {
			t.Errorf("%s: no step for %s (%v)", what, k, rep.Deleted)
		}
	}
}

// TestHousekeepingRuns: Run purges on its own schedule, and a replica
// that shuts down hands the lease back, so that another takes it at once.
func TestHousekeepingRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := fake.NewClock(time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC))
	s, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", DataDir: dir, Now: clk.Now,
		HousekeepingInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Store()
	u, err := st.CreateUser(ctx, store.NewUser{Email: "ada@example.com", PasswordHash: "x", CreatedAt: clk.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	if err := st.CreateSession(ctx, store.Session{ID: "s", UserID: u.ID, CreatedAt: clk.Now().Add(-time.Hour),
		ExpiresAt: clk.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := st.GetSession(ctx, "s"); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired session was not purged by the schedule")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	other, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", DataDir: dir, Now: clk.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if rep, err := other.Housekeep(ctx); err != nil || !rep.Ran {
		t.Fatalf("after the holder shut down, another replica cannot take the lease: %+v, %v", rep, err)
	}
}

func TestRetentionBounds(t *testing.T) {
	for _, r := range []time.Duration{time.Minute, -time.Hour} {
		_, err := server.New(context.Background(), server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Retention: r})
		if err == nil {
			t.Errorf("retention %s accepted", r)
		}
	}
}
