package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/google/uuid"
)

// branch is a branch id made from a label, distinct for distinct labels.
func branch(label string) store.BranchID {
	h := sha256.Sum256([]byte(label))
	return store.BranchID(h[:len(store.BranchID{})])
}

func testBranchRevocation(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	admin := MustUser(t, s, "admin@example.com")
	tk := newToken(f.org.ID, f.app.ID, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), tk))
	other := newToken(f.org.ID, 0, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), other))

	got, err := s.GetToken(ctx(t), tk.ID)
	must(t, err)
	if got.RevokedBranches != 0 {
		t.Fatalf("new token has %d revoked branches", got.RevokedBranches)
	}
	bs, err := s.ListRevokedBranches(ctx(t), tk.ID)
	must(t, err)
	if bs == nil || len(bs) != 0 {
		t.Fatalf("new token's revoked branches = %#v, want an empty list", bs)
	}

	// Revoked out of byte order, one at the same time as another, one by
	// the branch itself (no user); then one again, later and by someone
	// else: the first record stays.
	b1, b2, b3 := branch("one"), branch("two"), branch("three")
	revs := []store.RevokedBranch{
		{TokenID: tk.ID, Branch: b2, RevokedBy: admin.ID, RevokedAt: at(2 * time.Minute)},
		{TokenID: tk.ID, Branch: b1, RevokedBy: 0, RevokedAt: at(time.Minute)},
		{TokenID: tk.ID, Branch: b3, RevokedBy: f.user.ID, RevokedAt: at(2 * time.Minute)},
	}
	for i, b := range revs {
		newly, err := s.RevokeBranch(ctx(t), b)
		must(t, err)
		if !newly {
			t.Fatalf("first RevokeBranch %d reported false", i)
		}
	}
	again := revs[0]
	again.RevokedBy, again.RevokedAt = 0, at(time.Hour)
	newly, err := s.RevokeBranch(ctx(t), again)
	must(t, err)
	if newly {
		t.Fatal("second RevokeBranch of a branch reported true")
	}

	// Oldest first, then by branch bytes.
	want := []store.RevokedBranch{revs[1], revs[0], revs[2]}
	if strings.Compare(b2.String(), b3.String()) > 0 {
		want[1], want[2] = want[2], want[1]
	}
	for i := range want {
		want[i].RevokedAt = stored(want[i].RevokedAt)
	}
	bs, err = s.ListRevokedBranches(ctx(t), tk.ID)
	must(t, err)
	wantEqual(t, "ListRevokedBranches", bs, want)

	got, err = s.GetToken(ctx(t), tk.ID)
	must(t, err)
	if got.RevokedBranches != 3 || got.Revoked() {
		t.Fatalf("after three branch revocations: %d revoked branches, token revoked %v; want 3 and false", got.RevokedBranches, got.Revoked())
	}
	revoked, err := s.IsTokenRevoked(ctx(t), tk.ID)
	must(t, err)
	if revoked {
		t.Fatal("revoking branches revoked the whole token")
	}
	toks, err := s.ListTokensByOrganization(ctx(t), f.org.ID)
	must(t, err)
	counts := map[string]int{}
	for _, x := range toks {
		counts[x.ID] = x.RevokedBranches
	}
	if counts[tk.ID] != 3 || counts[other.ID] != 0 {
		t.Fatalf("listed counts %v, want 3 for %s and 0 for %s", counts, tk.ID, other.ID)
	}
	toks, err = s.ListTokensByApp(ctx(t), f.app.ID)
	must(t, err)
	if len(toks) != 1 || toks[0].RevokedBranches != 3 {
		t.Fatalf("ListTokensByApp: %+v, want the token with 3 revoked branches", toks)
	}

	// A branch id is per token: the same id on another token is another
	// revocation.
	newly, err = s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: other.ID, Branch: b1, RevokedAt: at(time.Minute)})
	must(t, err)
	if !newly {
		t.Fatal("the same branch id on another token reported already revoked")
	}
	bs, err = s.ListRevokedBranches(ctx(t), other.ID)
	must(t, err)
	if len(bs) != 1 || bs[0].TokenID != other.ID {
		t.Fatalf("other token's branches: %+v", bs)
	}

	// A revoked token's branches can still be revoked.
	_, err = s.RevokeToken(ctx(t), other.ID, at(time.Hour))
	must(t, err)
	newly, err = s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: other.ID, Branch: b2, RevokedAt: at(2 * time.Hour)})
	must(t, err)
	if !newly {
		t.Fatal("branch of a revoked token: RevokeBranch reported false")
	}
}

func testBranchRevocationInvalid(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	tk := newToken(f.org.ID, 0, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), tk))
	ok := store.RevokedBranch{TokenID: tk.ID, Branch: branch("x"), RevokedAt: t0}
	for _, tc := range []struct {
		name   string
		change func(*store.RevokedBranch)
		want   error
	}{
		{"zero branch", func(b *store.RevokedBranch) { b.Branch = store.BranchID{} }, store.ErrInvalid},
		{"no time", func(b *store.RevokedBranch) { b.RevokedAt = time.Time{} }, store.ErrInvalid},
		{"year 10000", func(b *store.RevokedBranch) { b.RevokedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, store.ErrInvalid},
		{"uppercase token id", func(b *store.RevokedBranch) { b.TokenID = strings.ToUpper(b.TokenID) }, store.ErrInvalid},
		{"not a token id", func(b *store.RevokedBranch) { b.TokenID = "token-1" }, store.ErrInvalid},
		{"unknown token", func(b *store.RevokedBranch) { b.TokenID = uuid.NewString() }, store.ErrNotFound},
		{"unknown user", func(b *store.RevokedBranch) { b.RevokedBy = 987654321 }, store.ErrNotFound},
		{"huge user id", func(b *store.RevokedBranch) { b.RevokedBy = ^uint64(0) }, store.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ok
			tc.change(&b)
			_, err := s.RevokeBranch(ctx(t), b)
			wantErr(t, err, tc.want)
		})
	}
	bs, err := s.ListRevokedBranches(ctx(t), tk.ID)
	must(t, err)
	if len(bs) != 0 {
		t.Fatalf("refused revocations were stored: %+v", bs)
	}
	revs, err := s.RevocationsSince(ctx(t), 0, 10)
	must(t, err)
	if len(revs) != 0 {
		t.Fatalf("refused revocations reached the feed: %+v", revs)
	}
	for _, id := range []string{"", "not-a-uuid", strings.ToUpper(tk.ID), uuid.NewString()} {
		_, err := s.ListRevokedBranches(ctx(t), id)
		wantErr(t, err, store.ErrNotFound)
	}

	// A new record cannot come with revoked branches.
	nt := newToken(f.org.ID, 0, f.user.ID, t0)
	nt.RevokedBranches = 1
	wantErr(t, s.CreateToken(ctx(t), nt), store.ErrInvalid)
}

// testBranchFeed interleaves token and branch revocations: one feed, in
// cursor order, a branch entry naming its branch and a token entry none,
// and no entry for a revocation that changed nothing.
func testBranchFeed(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	other := MustOrganization(t, s, "other", f.user.ID)
	a := newToken(f.org.ID, 0, f.user.ID, t0)
	b := newToken(other.ID, 0, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), a))
	must(t, s.CreateToken(ctx(t), b))
	start, err := s.RevocationCursor(ctx(t))
	must(t, err)

	type step struct {
		tok    store.Token
		branch string // "" revokes the whole token
		entry  bool   // whether it appends to the feed
	}
	steps := []step{
		{a, "a1", true},
		{b, "b1", true},
		{a, "", true},
		{a, "a1", false}, // again
		{a, "a2", true},  // a branch of a revoked token
		{a, "", false},   // again
		{b, "", true},
	}
	var want []store.Revocation
	for i, st := range steps {
		when := at(time.Duration(i+1) * time.Minute)
		var (
			newly bool
			err   error
		)
		if st.branch == "" {
			newly, err = s.RevokeToken(ctx(t), st.tok.ID, when)
		} else {
			newly, err = s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: st.tok.ID, Branch: branch(st.branch), RevokedAt: when})
		}
		must(t, err)
		if newly != st.entry {
			t.Fatalf("step %d: revoked %v, want %v", i, newly, st.entry)
		}
		if st.entry {
			r := store.Revocation{TokenID: st.tok.ID, OrgID: st.tok.OrgID, RevokedAt: stored(when)}
			if st.branch != "" {
				r.Branch = branch(st.branch)
			}
			want = append(want, r)
		}
	}
	revs, err := s.RevocationsSince(ctx(t), start, 100)
	must(t, err)
	if len(revs) != len(want) {
		t.Fatalf("feed has %d entries, want %d: %+v", len(revs), len(want), revs)
	}
	last := start
	for i, r := range revs {
		if r.Cursor <= last {
			t.Fatalf("entry %d: cursor %d after %d", i, r.Cursor, last)
		}
		last = r.Cursor
		want[i].Cursor = r.Cursor
	}
	wantEqual(t, "feed", revs, want)
	cur, err := s.RevocationCursor(ctx(t))
	must(t, err)
	if cur != last {
		t.Fatalf("RevocationCursor = %d, want the last entry's %d", cur, last)
	}
	// Paging across kinds resumes where it stopped.
	page, err := s.RevocationsSince(ctx(t), revs[1].Cursor, 2)
	must(t, err)
	wantEqual(t, "page", page, revs[2:4])
}

// testBranchBound revokes more than MaxRevokedBranches distinct branches
// of one token from several goroutines at once: exactly the bound is
// recorded, the rest fail with ErrLimit and leave no feed entry, an
// already revoked branch still answers false without error, and the token
// can still be revoked whole; another token is not affected.
func testBranchBound(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	tk := newToken(f.org.ID, 0, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), tk))
	other := newToken(f.org.ID, 0, f.user.ID, t0)
	must(t, s.CreateToken(ctx(t), other))
	start, err := s.RevocationCursor(ctx(t))
	must(t, err)

	const extra = 3 * concurrency
	total := store.MaxRevokedBranches + extra
	var next, revoked, limited atomic.Int64
	errs := parallel(func(int) error {
		for {
			n := int(next.Add(1)) - 1
			if n >= total {
				return nil
			}
			newly, err := s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: tk.ID,
				Branch: branch(fmt.Sprint("bound ", n)), RevokedAt: at(time.Duration(n) * time.Second)})
			switch {
			case err == nil && newly:
				revoked.Add(1)
			case err == nil:
				return fmt.Errorf("branch %d: a new branch reported already revoked", n)
			case errors.Is(err, store.ErrLimit):
				limited.Add(1)
			default:
				return fmt.Errorf("branch %d: %w", n, err)
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	if revoked.Load() != store.MaxRevokedBranches || limited.Load() != extra {
		t.Fatalf("%d revoked and %d refused, want %d and %d", revoked.Load(), limited.Load(), store.MaxRevokedBranches, extra)
	}
	got, err := s.GetToken(ctx(t), tk.ID)
	must(t, err)
	bs, err := s.ListRevokedBranches(ctx(t), tk.ID)
	must(t, err)
	if got.RevokedBranches != store.MaxRevokedBranches || len(bs) != store.MaxRevokedBranches {
		t.Fatalf("count %d, listed %d, want %d", got.RevokedBranches, len(bs), store.MaxRevokedBranches)
	}
	// At the bound: an already revoked branch is still idempotent, a new
	// one is refused.
	newly, err := s.RevokeBranch(ctx(t), bs[0])
	if err != nil || newly {
		t.Fatalf("revoking a revoked branch at the bound: %v, %v; want false, nil", newly, err)
	}
	_, err = s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: tk.ID, Branch: branch("one more"), RevokedAt: t0})
	wantErr(t, err, store.ErrLimit)
	wantErr(t, err, store.ErrConflict)

	revs, err := s.RevocationsSince(ctx(t), start, 2*total)
	must(t, err)
	if len(revs) != store.MaxRevokedBranches {
		t.Fatalf("feed has %d entries, want one per recorded branch (%d)", len(revs), store.MaxRevokedBranches)
	}

	newly, err = s.RevokeBranch(ctx(t), store.RevokedBranch{TokenID: other.ID, Branch: branch("one more"), RevokedAt: t0})
	if err != nil || !newly {
		t.Fatalf("another token's branch: %v, %v", newly, err)
	}
	newly, err = s.RevokeToken(ctx(t), tk.ID, at(time.Hour))
	if err != nil || !newly {
		t.Fatalf("revoking a token at the bound whole: %v, %v", newly, err)
	}
}
