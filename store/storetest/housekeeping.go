package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

var housekeepingTests = []namedTest[store.Store]{
	{"Leases", testLeases},
	{"ConcurrentLeases", testConcurrentLeases},
	{"PurgeExpiredTokens", testPurgeExpiredTokens},
	{"PurgeWhileRevoking", testPurgeWhileRevoking},
	{"ImportTokens", testImportTokens},
	{"ImportTokensAtomic", testImportTokensAtomic},
	{"DeleteSpentInvitations", testDeleteSpentInvitations},
}

func testDeleteSpentInvitations(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	accepted := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "a@example.com", "h-a", t0))
	cancelled := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "c@example.com", "h-c", t0))
	expired := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "e@example.com", "h-e", t0))
	open := MustInvitation(t, s, newInvitation(f.org.ID, f.user.ID, "o@example.com", "h-o", at(time.Hour)))
	MustUser(t, s, "a@example.com")
	u, err := s.GetUserByEmail(ctx(t), "a@example.com")
	must(t, err)
	_, err = s.AcceptInvitation(ctx(t), accepted.CodeHash, u.ID, at(time.Minute))
	must(t, err)
	_, err = s.CancelInvitation(ctx(t), f.org.ID, cancelled.ID, at(2*time.Minute))
	must(t, err)
	// Nothing is spent before its time.
	n, err := s.DeleteSpentInvitations(ctx(t), at(time.Minute-time.Microsecond))
	must(t, err)
	if n != 0 {
		t.Fatalf("deleted %d invitations spent later", n)
	}
	n, err = s.DeleteSpentInvitations(ctx(t), expired.ExpiresAt)
	must(t, err)
	if n != 3 {
		t.Fatalf("deleted %d spent invitations, want the accepted, cancelled and expired ones", n)
	}
	for _, gone := range []store.Invitation{accepted, cancelled, expired} {
		_, err := s.GetInvitation(ctx(t), gone.CodeHash)
		wantErr(t, err, store.ErrNotFound)
	}
	if _, err := s.GetInvitation(ctx(t), open.CodeHash); err != nil {
		t.Fatalf("the open invitation: %v", err)
	}
}

func acquire(t *testing.T, s store.Store, name, holder string, now, until time.Time) bool {
	t.Helper()
	ok, err := s.AcquireLease(ctx(t), name, holder, now, until)
	must(t, err)
	return ok
}

func testLeases(t *testing.T, s store.Store) {
	if !acquire(t, s, "purge", "a", t0, at(time.Minute)) {
		t.Fatal("a free lease was refused")
	}
	if acquire(t, s, "purge", "b", at(59*time.Second), at(2*time.Minute)) {
		t.Fatal("b took a's lease before it ended")
	}
	if !acquire(t, s, "other", "b", t0, at(time.Minute)) {
		t.Fatal("another lease is not free")
	}
	// The holder renews.
	if !acquire(t, s, "purge", "a", at(50*time.Second), at(2*time.Minute)) {
		t.Fatal("a could not renew its lease")
	}
	if acquire(t, s, "purge", "b", at(time.Minute), at(3*time.Minute)) {
		t.Fatal("b took the renewed lease")
	}
	// At its end, anyone takes it.
	if !acquire(t, s, "purge", "b", at(2*time.Minute), at(3*time.Minute)) {
		t.Fatal("b could not take the lease at its end")
	}
	if acquire(t, s, "purge", "a", at(2*time.Minute), at(3*time.Minute)) {
		t.Fatal("a took back b's lease")
	}
	// Only the holder releases.
	must(t, s.ReleaseLease(ctx(t), "purge", "a"))
	if acquire(t, s, "purge", "a", at(2*time.Minute), at(3*time.Minute)) {
		t.Fatal("a released b's lease")
	}
	must(t, s.ReleaseLease(ctx(t), "purge", "b"))
	if !acquire(t, s, "purge", "a", at(2*time.Minute), at(3*time.Minute)) {
		t.Fatal("a released lease is not free")
	}
	for _, bad := range [][2]string{{"", "a"}, {"purge", ""}} {
		_, err := s.AcquireLease(ctx(t), bad[0], bad[1], t0, at(time.Minute))
		wantErr(t, err, store.ErrInvalid)
	}
	_, err := s.AcquireLease(ctx(t), "purge", "a", t0, t0)
	wantErr(t, err, store.ErrInvalid)
}

// testConcurrentLeases: of holders racing for a free lease, one gets it.
func testConcurrentLeases(t *testing.T, s store.Store) {
	for round := range 3 {
		now := at(time.Duration(round) * time.Hour)
		errs := parallel(func(i int) error {
			ok, err := s.AcquireLease(ctx(t), "race", fmt.Sprint("holder", i), now, now.Add(time.Minute))
			if err == nil && !ok {
				err = errRefused
			}
			return err
		})
		wantWins(t, fmt.Sprint("round ", round), errs, errRefused)
	}
}

// testPurgeWhileRevoking purges expired tokens while they are being
// revoked: a revocation either comes first, and its feed entry goes with
// the token, or finds no token; the purge never fails on an entry it did
// not see.
func testPurgeWhileRevoking(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	for round := range 4 {
		toks := make([]store.Token, concurrency-1)
		for i := range toks {
			toks[i] = newToken(f.org.ID, f.app.ID, f.user.ID, t0)
			toks[i].ExpiresAt = at(time.Hour)
			must(t, s.CreateToken(ctx(t), toks[i]))
		}
		var purged int
		errs := parallel(func(i int) error {
			if i == 0 {
				var err error
				purged, err = s.PurgeExpiredTokens(ctx(t), at(2*time.Hour), 100)
				return err
			}
			_, err := s.RevokeToken(ctx(t), toks[i-1].ID, at(90*time.Minute))
			if errors.Is(err, store.ErrNotFound) {
				return nil // the purge came first
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, call %d (0 purges, the others revoke): %v", round, i, err)
			}
		}
		if purged != len(toks) {
			t.Fatalf("round %d: purged %d tokens, want %d", round, purged, len(toks))
		}
		for _, tok := range toks {
			_, err := s.GetToken(ctx(t), tok.ID)
			wantErr(t, err, store.ErrNotFound)
		}
		feed, err := s.RevocationsSince(ctx(t), 0, 100)
		must(t, err)
		if len(feed) != 0 {
			t.Fatalf("round %d: the feed keeps %d entries of purged tokens: %+v", round, len(feed), feed)
		}
	}
}

func testPurgeExpiredTokens(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	mk := func(expires time.Duration, revoke bool) store.Token {
		tok := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
		tok.ExpiresAt = time.Time{}
		if expires != 0 {
			tok.ExpiresAt = at(expires)
		}
		must(t, s.CreateToken(ctx(t), tok))
		if revoke {
			_, err := s.RevokeToken(ctx(t), tok.ID, at(time.Second))
			must(t, err)
		}
		return tok
	}
	old := mk(time.Hour, false)
	oldRevoked := mk(2*time.Hour, true)
	// A revoked branch of a purged token goes with it.
	if _, err := s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: old.ID, Branch: store.BranchID{1}, RevokedAt: at(time.Second)}); err != nil {
		t.Fatal(err)
	}
	recent := mk(30*time.Hour, true)
	forever := mk(0, true)
	live := mk(1000*time.Hour, false)
	kept := mk(0, false)

	feedOf := func() []string {
		revs, err := s.RevocationsSince(ctx(t), 0, 100)
		must(t, err)
		var ids []string
		for _, r := range revs {
			ids = append(ids, r.TokenID)
		}
		return ids
	}
	wantEqual(t, "feed before", feedOf(), []string{oldRevoked.ID, old.ID, recent.ID, forever.ID})
	cursor, err := s.RevocationCursor(ctx(t))
	must(t, err)

	cutoff := at(24 * time.Hour)
	n, err := s.PurgeExpiredTokens(ctx(t), cutoff, 1)
	must(t, err)
	if n != 1 {
		t.Fatalf("purged %d with limit 1", n)
	}
	_, err = s.GetToken(ctx(t), old.ID) // the earliest expiry goes first
	wantErr(t, err, store.ErrNotFound)
	n, err = s.PurgeExpiredTokens(ctx(t), cutoff, 10)
	must(t, err)
	if n != 1 {
		t.Fatalf("purged %d, want the one left expired before the cutoff", n)
	}
	if n, err := s.PurgeExpiredTokens(ctx(t), cutoff, 10); err != nil || n != 0 {
		t.Fatalf("purge again: %d, %v", n, err)
	}
	for _, gone := range []store.Token{old, oldRevoked} {
		_, err := s.GetToken(ctx(t), gone.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.IsTokenRevoked(ctx(t), gone.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.RevokeToken(ctx(t), gone.ID, cutoff)
		wantErr(t, err, store.ErrNotFound)
	}
	for _, tok := range []store.Token{recent, forever, live, kept} {
		if _, err := s.GetToken(ctx(t), tok.ID); err != nil {
			t.Fatalf("token expiring at %v purged: %v", tok.ExpiresAt, err)
		}
	}
	// The purged token's feed entry is gone; the others stay, and the feed
	// goes on from where a follower stood.
	wantEqual(t, "feed after", feedOf(), []string{recent.ID, forever.ID})
	_, err = s.RevokeToken(ctx(t), live.ID, cutoff)
	must(t, err)
	revs, err := s.RevocationsSince(ctx(t), cursor, 10)
	must(t, err)
	if len(revs) != 1 || revs[0].TokenID != live.ID {
		t.Fatalf("feed after the follower's cursor: %+v", revs)
	}
	if c, err := s.RevocationCursor(ctx(t)); err != nil || c != revs[0].Cursor {
		t.Fatalf("cursor %d, %v; want %d", c, err, revs[0].Cursor)
	}
	// A revoked token without expiry is never purged.
	if n, err := s.PurgeExpiredTokens(ctx(t), at(1e6*time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("purge everything that expires: %d, %v; want recent, live and nothing else", n, err)
	}
	if _, err := s.GetToken(ctx(t), forever.ID); err != nil {
		t.Fatalf("revoked token without expiry: %v", err)
	}
	wantEqual(t, "feed at last", feedOf(), []string{forever.ID})
	_, err = s.PurgeExpiredTokens(ctx(t), cutoff, 0)
	wantErr(t, err, store.ErrInvalid)
}

func testImportTokens(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	var toks []store.Token
	for i := range 50 {
		tok := newToken(f.org.ID, 0, f.user.ID, at(time.Duration(i)*time.Second))
		if i%2 == 0 {
			tok.AppID = f.app.ID
		}
		if i%7 == 3 {
			tok.RevokedAt = at(time.Hour + time.Duration(i)*time.Second)
		}
		toks = append(toks, tok)
	}
	must(t, s.ImportTokens(ctx(t), toks))
	var revoked []string
	for _, tok := range toks {
		got, err := s.GetToken(ctx(t), tok.ID)
		must(t, err)
		want := tok
		want.CreatedAt, want.ExpiresAt, want.RevokedAt = stored(tok.CreatedAt), stored(tok.ExpiresAt), stored(tok.RevokedAt)
		wantEqual(t, "imported token", got, want)
		if tok.Revoked() {
			revoked = append(revoked, tok.ID)
			if r, err := s.IsTokenRevoked(ctx(t), tok.ID); err != nil || !r {
				t.Fatalf("imported revoked token: %v %v", r, err)
			}
		}
	}
	revs, err := s.RevocationsSince(ctx(t), 0, 100)
	must(t, err)
	var fed []string
	for i, r := range revs {
		fed = append(fed, r.TokenID)
		if i > 0 && r.Cursor <= revs[i-1].Cursor {
			t.Fatal("feed cursors do not grow")
		}
	}
	wantEqual(t, "feed", fed, revoked)
	// The list and the feed go on as usual.
	byApp := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID, AppID: f.app.ID})
	if len(byApp) != 25 {
		t.Fatalf("%d tokens of the app, want 25", len(byApp))
	}
	more := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), more))
	_, err = s.RevokeToken(ctx(t), more.ID, at(2*time.Hour))
	must(t, err)
	next, err := s.RevocationsSince(ctx(t), revs[len(revs)-1].Cursor, 10)
	must(t, err)
	if len(next) != 1 || next[0].TokenID != more.ID {
		t.Fatalf("feed after the import: %+v", next)
	}
	must(t, s.ImportTokens(ctx(t), nil))
}

// testImportTokensAtomic: a refused import leaves nothing behind.
func testImportTokensAtomic(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", 0)
	good := func() store.Token { return newToken(f.org.ID, f.app.ID, f.user.ID, t0) }
	dup := good()
	for name, c := range map[string]struct {
		bad  store.Token
		want error
	}{
		"duplicate":       {dup, store.ErrExists},
		"unknown org":     {newToken(987654, 0, f.user.ID, t0), store.ErrNotFound},
		"unknown creator": {newToken(f.org.ID, 0, 987654, t0), store.ErrNotFound},
		"foreign app":     {newToken(other.ID, f.app.ID, f.user.ID, t0), store.ErrNotFound},
		"revoked first":   {func() store.Token { x := good(); x.RevokedAt = at(-time.Second); return x }(), store.ErrInvalid},
		"used":            {func() store.Token { x := good(); x.LastUsedAt = t0; return x }(), store.ErrInvalid},
		"bad id":          {func() store.Token { x := good(); x.ID = "nope"; return x }(), store.ErrInvalid},
	} {
		first := good()
		first.RevokedAt = at(time.Second)
		// (The duplicate is dup, twice in the batch.)
		err := s.ImportTokens(ctx(t), []store.Token{first, dup, c.bad})
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %q", name, err, c.want)
		}
		if _, err := s.GetToken(ctx(t), first.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: a token of the refused import was kept: %v", name, err)
		}
	}
	if c, err := s.RevocationCursor(ctx(t)); err != nil || c != 0 {
		t.Fatalf("refused imports left feed entries: cursor %d, %v", c, err)
	}
	if ids := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID}); len(ids) != 0 {
		t.Fatalf("%d tokens kept", len(ids))
	}
}
