package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/google/uuid"
)

func testApps(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	acme := MustOrganization(t, s, "acme", u.ID)
	beta := MustOrganization(t, s, "beta", u.ID)

	workers, err := s.CreateApp(ctx(t), store.NewApp{OrgID: acme.ID, Name: "workers", CreatedAt: t0})
	must(t, err)
	wantEqual(t, "created app", workers, store.App{ID: workers.ID, OrgID: acme.ID, Name: "workers", CreatedAt: stored(t0)})
	api := MustApp(t, s, acme.ID, "api")
	zeta := MustApp(t, s, acme.ID, "zeta")
	upper := MustApp(t, s, acme.ID, "Zulu") // byte order: before lowercase
	// The same name in another organization is another app.
	betaWorkers := MustApp(t, s, beta.ID, "workers")
	if betaWorkers.ID == workers.ID {
		t.Fatal("apps of two organizations share an id")
	}
	_, err = s.CreateApp(ctx(t), store.NewApp{OrgID: acme.ID, Name: "workers", CreatedAt: t0})
	wantErr(t, err, store.ErrExists)

	got, err := s.GetApp(ctx(t), workers.ID)
	must(t, err)
	wantEqual(t, "GetApp", got, workers)
	got, err = s.GetAppByName(ctx(t), beta.ID, "workers")
	must(t, err)
	wantEqual(t, "GetAppByName", got, betaWorkers)
	_, err = s.GetAppByName(ctx(t), acme.ID, "Workers")
	wantErr(t, err, store.ErrNotFound)

	apps := all(t, pageSize, func(p store.Page) ([]store.App, string, error) { return s.ListApps(ctx(t), acme.ID, p) })
	wantEqual(t, "ListApps (by name, in byte order)", apps, []store.App{upper, api, workers, zeta})

	for _, id := range unknownIDs {
		_, err := s.CreateApp(ctx(t), store.NewApp{OrgID: id, Name: "x", CreatedAt: t0})
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetApp(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetAppByName(ctx(t), id, "workers")
		wantErr(t, err, store.ErrNotFound)
		apps := all(t, pageSize, func(p store.Page) ([]store.App, string, error) { return s.ListApps(ctx(t), id, p) })
		if len(apps) != 0 {
			t.Fatalf("unknown organization %d has apps %v", id, apps)
		}
	}
	for _, bad := range []store.NewApp{
		{OrgID: acme.ID, CreatedAt: t0},
		{OrgID: acme.ID, Name: strings.Repeat("a", store.MaxNameLen+1), CreatedAt: t0},
		{OrgID: acme.ID, Name: "new"},
	} {
		_, err := s.CreateApp(ctx(t), bad)
		wantErr(t, err, store.ErrInvalid)
	}
}

func testTokens(t *testing.T, s store.Store) {
	f := newFixture(t, s)

	appTok := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), appTok))
	got, err := s.GetToken(ctx(t), appTok.ID)
	must(t, err)
	want := appTok
	want.CreatedAt, want.ExpiresAt = stored(appTok.CreatedAt), stored(appTok.ExpiresAt)
	wantEqual(t, "GetToken", got, want)
	if got.Revoked() {
		t.Fatal("new token is revoked")
	}

	// No app, no expiry: both stay zero.
	orgTok := newToken(f.org.ID, 0, f.user.ID, at(time.Minute))
	orgTok.Profile, orgTok.ExpiresAt = "org", time.Time{}
	must(t, s.CreateToken(ctx(t), orgTok))
	got, err = s.GetToken(ctx(t), orgTok.ID)
	must(t, err)
	if got.AppID != 0 || !got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Fatalf("optional fields came back set: %+v", got)
	}

	wantErr(t, s.CreateToken(ctx(t), appTok), store.ErrExists)

	_, err = s.GetToken(ctx(t), uuid.NewString())
	wantErr(t, err, store.ErrNotFound)
	for _, id := range []string{"", "not-a-uuid", strings.ToUpper(appTok.ID), "{" + appTok.ID + "}"} {
		_, err := s.GetToken(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.IsTokenRevoked(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
	}
}

func testTokensInvalid(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", f.user.ID)
	otherApp := MustApp(t, s, other.ID, "elsewhere")

	for _, tc := range []struct {
		name   string
		change func(*store.Token)
		want   error
	}{
		{"uppercase id", func(tk *store.Token) { tk.ID = strings.ToUpper(tk.ID) }, store.ErrInvalid},
		{"bad id", func(tk *store.Token) { tk.ID = "token-1" }, store.ErrInvalid},
		{"no name", func(tk *store.Token) { tk.Name = "" }, store.ErrInvalid},
		{"no profile", func(tk *store.Token) { tk.Profile = "" }, store.ErrInvalid},
		{"no organization", func(tk *store.Token) { tk.OrgID = 0 }, store.ErrInvalid},
		{"no creator", func(tk *store.Token) { tk.CreatedBy = 0 }, store.ErrInvalid},
		{"no creation time", func(tk *store.Token) { tk.CreatedAt = time.Time{} }, store.ErrInvalid},
		{"expires at creation", func(tk *store.Token) { tk.ExpiresAt = tk.CreatedAt }, store.ErrInvalid},
		{"already revoked", func(tk *store.Token) { tk.RevokedAt = tk.CreatedAt }, store.ErrInvalid},
		{"already used", func(tk *store.Token) { tk.LastUsedAt = tk.CreatedAt }, store.ErrInvalid},
		{"app of another organization", func(tk *store.Token) { tk.AppID = otherApp.ID }, store.ErrInvalid},
		{"unknown organization", func(tk *store.Token) { tk.OrgID, tk.AppID = 987654321, 0 }, store.ErrNotFound},
		{"huge organization id", func(tk *store.Token) { tk.OrgID, tk.AppID = ^uint64(0), 0 }, store.ErrNotFound},
		{"unknown app", func(tk *store.Token) { tk.AppID = 987654321 }, store.ErrNotFound},
		{"unknown creator", func(tk *store.Token) { tk.CreatedBy = 987654321 }, store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
			tc.change(&tk)
			wantErr(t, s.CreateToken(ctx(t), tk), tc.want)
		})
	}
	if toks := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID}); len(toks) != 0 {
		t.Fatalf("refused tokens were stored: %+v", toks)
	}
}

func testTokenListOrder(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustApp(t, s, f.org.ID, "other")
	otherOrg := MustOrganization(t, s, "beta", f.user.ID)

	// Created out of order; two share a creation time and are ordered by
	// id.
	offsets := []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour, time.Hour, 0}
	apps := []uint64{f.app.ID, other.ID, f.app.ID, f.app.ID, 0}
	var toks []store.Token
	for i, off := range offsets {
		tk := newToken(f.org.ID, apps[i], f.user.ID, at(off))
		must(t, s.CreateToken(ctx(t), tk))
		tk.CreatedAt, tk.ExpiresAt = stored(tk.CreatedAt), stored(tk.ExpiresAt)
		toks = append(toks, tk)
	}
	must(t, s.CreateToken(ctx(t), newToken(otherOrg.ID, 0, f.user.ID, t0)))

	// Expected order: 4 (t0), then 1 and 3 (t0+1h) by id, 2, 0.
	mid := []store.Token{toks[1], toks[3]}
	if mid[0].ID > mid[1].ID {
		mid[0], mid[1] = mid[1], mid[0]
	}
	wantOrg := []store.Token{toks[4], mid[0], mid[1], toks[2], toks[0]}
	got := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID})
	wantEqual(t, "ListTokens of the organization", got, wantOrg)

	var wantApp []store.Token
	for _, tk := range wantOrg {
		if tk.AppID == f.app.ID {
			wantApp = append(wantApp, tk)
		}
	}
	got = allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, AppID: f.app.ID})
	wantEqual(t, "ListTokens of the app", got, wantApp)
	got = allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, AppID: other.ID})
	wantEqual(t, "ListTokens of the other app", got, []store.Token{toks[1]})
	// An app of another organization lists nothing.
	got = allTokens(t, s, store.TokenFilter{OrgID: otherOrg.ID, AppID: f.app.ID})
	wantEqual(t, "ListTokens of an app of another organization", got, []store.Token{})

	for _, id := range unknownIDs {
		a := allTokens(t, s, store.TokenFilter{OrgID: id})
		var b []store.Token
		if id != 0 { // AppID 0 is every app's
			b = allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, AppID: id})
		}
		if len(a) != 0 || len(b) != 0 {
			t.Fatalf("unknown id %d lists tokens %v %v", id, a, b)
		}
	}

	// LiveAt leaves out the tokens expired at that instant, and keeps
	// those without expiry.
	forever := newToken(f.org.ID, 0, f.user.ID, at(5*time.Hour))
	forever.ExpiresAt = time.Time{}
	must(t, s.CreateToken(ctx(t), forever))
	soon := newToken(f.org.ID, 0, f.user.ID, at(6*time.Hour))
	soon.ExpiresAt = at(7 * time.Hour)
	must(t, s.CreateToken(ctx(t), soon))
	forever.CreatedAt = stored(forever.CreatedAt)
	soon.CreatedAt, soon.ExpiresAt = stored(soon.CreatedAt), stored(soon.ExpiresAt)
	live := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, LiveAt: at(7*time.Hour - time.Microsecond)})
	wantEqual(t, "live before the expiry", live, append(append([]store.Token{}, wantOrg...), forever, soon))
	live = allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, LiveAt: at(7 * time.Hour)})
	wantEqual(t, "live at the expiry", live, append(append([]store.Token{}, wantOrg...), forever))
	live = allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, LiveAt: at(1e6 * time.Hour)})
	wantEqual(t, "live when all have expired", live, []store.Token{forever})
}

func testTokenRevocation(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	tk := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), tk))
	keep := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), keep))

	revoked, err := s.IsTokenRevoked(ctx(t), tk.ID)
	must(t, err)
	if revoked {
		t.Fatal("new token reported revoked")
	}
	newly, err := s.RevokeToken(ctx(t), tk.ID, at(time.Minute))
	must(t, err)
	if !newly {
		t.Fatal("first RevokeToken reported false")
	}
	newly, err = s.RevokeToken(ctx(t), tk.ID, at(2*time.Minute))
	must(t, err)
	if newly {
		t.Fatal("second RevokeToken reported true")
	}
	revoked, err = s.IsTokenRevoked(ctx(t), tk.ID)
	must(t, err)
	if !revoked {
		t.Fatal("revoked token reported unrevoked")
	}
	got, err := s.GetToken(ctx(t), tk.ID)
	must(t, err)
	if !got.Revoked() || !got.RevokedAt.Equal(stored(at(time.Minute))) {
		t.Fatalf("RevokedAt = %v, want the first revocation's %v", got.RevokedAt, stored(at(time.Minute)))
	}
	revoked, err = s.IsTokenRevoked(ctx(t), keep.ID)
	must(t, err)
	if revoked {
		t.Fatal("revoking one token revoked another")
	}

	_, err = s.RevokeToken(ctx(t), uuid.NewString(), t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RevokeToken(ctx(t), "not-a-uuid", t0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RevokeToken(ctx(t), keep.ID, time.Time{})
	wantErr(t, err, store.ErrInvalid)
	_, err = s.IsTokenRevoked(ctx(t), uuid.NewString())
	wantErr(t, err, store.ErrNotFound)
}

func testTokenTouch(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	tk := newToken(f.org.ID, 0, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), tk))

	lastUsed := func() time.Time {
		t.Helper()
		got, err := s.GetToken(ctx(t), tk.ID)
		must(t, err)
		return got.LastUsedAt
	}
	must(t, s.TouchToken(ctx(t), tk.ID, at(time.Hour)))
	if got := lastUsed(); !got.Equal(stored(at(time.Hour))) {
		t.Fatalf("LastUsedAt = %v, want %v", got, stored(at(time.Hour)))
	}
	must(t, s.TouchToken(ctx(t), tk.ID, at(time.Minute))) // earlier: no change
	if got := lastUsed(); !got.Equal(stored(at(time.Hour))) {
		t.Fatalf("an earlier touch moved LastUsedAt back to %v", got)
	}
	must(t, s.TouchToken(ctx(t), tk.ID, at(time.Hour))) // same: no change, no error
	must(t, s.TouchToken(ctx(t), tk.ID, at(2*time.Hour)))
	if got := lastUsed(); !got.Equal(stored(at(2 * time.Hour))) {
		t.Fatalf("LastUsedAt = %v, want %v", got, stored(at(2*time.Hour)))
	}
	// Revoked tokens can be touched.
	_, err := s.RevokeToken(ctx(t), tk.ID, at(3*time.Hour))
	must(t, err)
	must(t, s.TouchToken(ctx(t), tk.ID, at(4*time.Hour)))
	if got := lastUsed(); !got.Equal(stored(at(4 * time.Hour))) {
		t.Fatalf("LastUsedAt = %v, want %v", got, stored(at(4*time.Hour)))
	}

	wantErr(t, s.TouchToken(ctx(t), uuid.NewString(), t0), store.ErrNotFound)
	wantErr(t, s.TouchToken(ctx(t), "nope", t0), store.ErrNotFound)
	wantErr(t, s.TouchToken(ctx(t), tk.ID, time.Time{}), store.ErrInvalid)
}

func testRevocationFeed(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "beta", f.user.ID)

	cur, err := s.RevocationCursor(ctx(t))
	must(t, err)
	if cur != 0 {
		t.Fatalf("cursor of an empty feed = %d, want 0", cur)
	}
	revs, err := s.RevocationsSince(ctx(t), 0, 10)
	must(t, err)
	if len(revs) != 0 {
		t.Fatalf("empty feed has %v", revs)
	}

	var toks []store.Token
	for i := range 4 {
		org := f.org.ID
		if i == 2 {
			org = other.ID
		}
		tk := newToken(org, 0, f.user.ID, t0)
		must(t, s.CreateToken(ctx(t), tk))
		toks = append(toks, tk)
	}
	// Revoke 2, 0, 3, and 0 again (no new entry). Token 1 stays.
	for i, n := range []int{2, 0, 3, 0} {
		_, err := s.RevokeToken(ctx(t), toks[n].ID, at(time.Duration(i+1)*time.Minute))
		must(t, err)
	}

	revs, err = s.RevocationsSince(ctx(t), 0, 10)
	must(t, err)
	if len(revs) != 3 {
		t.Fatalf("feed has %d entries, want 3: %+v", len(revs), revs)
	}
	wantTok := []int{2, 0, 3}
	wantOrg := []uint64{other.ID, f.org.ID, f.org.ID}
	for i, r := range revs {
		if r.TokenID != toks[wantTok[i]].ID || r.OrgID != wantOrg[i] || !r.RevokedAt.Equal(stored(at(time.Duration(i+1)*time.Minute))) {
			t.Errorf("entry %d = %+v, want token %s of organization %d revoked at %v", i, r, toks[wantTok[i]].ID, wantOrg[i], stored(at(time.Duration(i+1)*time.Minute)))
		}
		if i > 0 && r.Cursor <= revs[i-1].Cursor {
			t.Errorf("cursor %d after %d: not increasing", r.Cursor, revs[i-1].Cursor)
		}
		if r.Cursor == 0 {
			t.Errorf("entry %d has cursor 0", i)
		}
	}

	cur, err = s.RevocationCursor(ctx(t))
	must(t, err)
	if cur != revs[2].Cursor {
		t.Fatalf("RevocationCursor = %d, want the last entry's %d", cur, revs[2].Cursor)
	}

	// Paging: limit, then resume from the last cursor seen.
	page, err := s.RevocationsSince(ctx(t), 0, 2)
	must(t, err)
	wantEqual(t, "first page", page, revs[:2])
	page, err = s.RevocationsSince(ctx(t), page[1].Cursor, 2)
	must(t, err)
	wantEqual(t, "second page", page, revs[2:])
	page, err = s.RevocationsSince(ctx(t), cur, 2)
	must(t, err)
	if len(page) != 0 {
		t.Fatalf("entries after the latest cursor: %+v", page)
	}
	page, err = s.RevocationsSince(ctx(t), ^uint64(0), 2)
	must(t, err)
	if len(page) != 0 {
		t.Fatalf("entries after the largest cursor: %+v", page)
	}

	// A new revocation appears after the cursor.
	_, err = s.RevokeToken(ctx(t), toks[1].ID, at(time.Hour))
	must(t, err)
	page, err = s.RevocationsSince(ctx(t), cur, 10)
	must(t, err)
	if len(page) != 1 || page[0].TokenID != toks[1].ID {
		t.Fatalf("after the cursor: %+v, want token %s", page, toks[1].ID)
	}

	for _, limit := range []int{0, -1} {
		_, err := s.RevocationsSince(ctx(t), 0, limit)
		wantErr(t, err, store.ErrInvalid)
	}
}

// testConcurrentTokenWriters has several goroutines mint, touch and revoke
// token records at once, as several requests of a server would.
func testConcurrentTokenWriters(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	const perWorker = 20
	var mu sync.Mutex
	ids := map[string]bool{}
	errs := parallel(func(i int) error {
		for j := range perWorker {
			tk := newToken(f.org.ID, f.app.ID, f.user.ID, at(time.Duration(j)*time.Second))
			tk.Name = fmt.Sprintf("worker %d token %d", i, j)
			if err := s.CreateToken(ctx(t), tk); err != nil {
				return fmt.Errorf("create %d: %w", j, err)
			}
			if err := s.TouchToken(ctx(t), tk.ID, at(time.Hour)); err != nil {
				return fmt.Errorf("touch %d: %w", j, err)
			}
			if j%2 == 0 {
				if _, err := s.RevokeToken(ctx(t), tk.ID, at(time.Hour)); err != nil {
					return fmt.Errorf("revoke %d: %w", j, err)
				}
			}
			mu.Lock()
			ids[tk.ID] = j%2 == 0
			mu.Unlock()
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	toks := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID})
	if len(toks) != concurrency*perWorker {
		t.Fatalf("%d tokens listed, want %d", len(toks), concurrency*perWorker)
	}
	for _, tk := range toks {
		revoked, ok := ids[tk.ID]
		if !ok {
			t.Fatalf("unexpected token %s", tk.ID)
		}
		if tk.Revoked() != revoked || !tk.LastUsedAt.Equal(stored(at(time.Hour))) {
			t.Fatalf("token %s: revoked %v (want %v), last used %v", tk.ID, tk.Revoked(), revoked, tk.LastUsedAt)
		}
	}
	revs, err := s.RevocationsSince(ctx(t), 0, 10*concurrency*perWorker)
	must(t, err)
	if len(revs) != concurrency*perWorker/2 {
		t.Fatalf("feed has %d entries, want %d", len(revs), concurrency*perWorker/2)
	}
	seen := map[string]bool{}
	for i, r := range revs {
		if seen[r.TokenID] || !ids[r.TokenID] {
			t.Fatalf("feed entry %+v is a duplicate or not a revoked token", r)
		}
		seen[r.TokenID] = true
		if i > 0 && r.Cursor <= revs[i-1].Cursor {
			t.Fatalf("cursors not increasing: %d after %d", r.Cursor, revs[i-1].Cursor)
		}
	}
}

// testFeedWhileRevoking polls the feed while tokens are being revoked, as
// a replica's cache would, and checks that the poller sees every
// revocation exactly once.
func testFeedWhileRevoking(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	const perWorker = 15
	var toks [concurrency][]store.Token
	for i := range concurrency {
		for range perWorker {
			tk := newToken(f.org.ID, 0, f.user.ID, t0)
			must(t, s.CreateToken(ctx(t), tk))
			toks[i] = append(toks[i], tk)
		}
	}

	seen := map[string]int{}
	var cursor uint64
	poll := func() error {
		revs, err := s.RevocationsSince(ctx(t), cursor, 7)
		if err != nil {
			return err
		}
		for _, r := range revs {
			if r.Cursor <= cursor {
				return fmt.Errorf("cursor %d after %d", r.Cursor, cursor)
			}
			cursor = r.Cursor
			seen[r.TokenID]++
		}
		return nil
	}

	done := make(chan []error)
	go func() {
		done <- parallel(func(i int) error {
			for _, tk := range toks[i] {
				if _, err := s.RevokeToken(ctx(t), tk.ID, at(time.Minute)); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	var errs []error
polling:
	for {
		select {
		case errs = <-done:
			break polling
		default:
			if err := poll(); err != nil {
				t.Fatalf("poll: %v", err)
			}
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("revoker %d: %v", i, err)
		}
	}
	// Drain what is left after the writers finished.
	for range concurrency * perWorker {
		before := cursor
		if err := poll(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		if cursor == before {
			break
		}
	}
	if len(seen) != concurrency*perWorker {
		t.Fatalf("poller saw %d revocations, want %d", len(seen), concurrency*perWorker)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("token %s seen %d times", id, n)
		}
	}
}
