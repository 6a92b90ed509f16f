package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// pageSize is the limit the suite pages with, small so that every list
// of a few records spans several pages.
const pageSize = 2

// all reads a whole list a page of limit at a time, checking the paging
// rules on the way: every page but the last is full, the last has no next
// cursor, and a cursor is never handed out twice.
func all[T any](t *testing.T, limit int, list func(p store.Page) ([]T, string, error)) []T {
	t.Helper()
	out := []T{}
	seen := map[string]bool{}
	p := store.Page{Limit: limit}
	for pages := 0; ; pages++ {
		rows, next, err := list(p)
		must(t, err)
		if rows == nil {
			t.Fatal("a page is nil, not an empty list")
		}
		out = append(out, rows...)
		if next == "" {
			return out
		}
		if len(rows) != limit {
			t.Fatalf("page %d holds %d rows of %d and has a next page", pages, len(rows), limit)
		}
		if seen[next] {
			t.Fatalf("cursor %q handed out twice", next)
		}
		seen[next] = true
		p.After = next
	}
}

// allTokens lists every token f selects.
func allTokens(t *testing.T, s store.Store, f store.TokenFilter) []store.Token {
	t.Helper()
	return all(t, pageSize, func(p store.Page) ([]store.Token, string, error) { return s.ListTokens(ctx(t), f, p) })
}

// testPaging: the rules of pages for every list: a page that does not
// validate, or a cursor of another list or none at all, is ErrInvalid; the
// cursor of a record's sort key goes on after it even when that record is
// gone; and a page is the same whatever its limit.
func testPaging(t *testing.T, s store.Store) {
	f := newFixture(t, s)
	for i := range 5 {
		must(t, s.CreateToken(ctx(t), newToken(f.org.ID, f.app.ID, f.user.ID, at(time.Duration(i)*time.Minute))))
	}
	lists := map[string]func(p store.Page) (int, string, error){
		"tokens": func(p store.Page) (int, string, error) {
			r, n, err := s.ListTokens(ctx(t), store.TokenFilter{OrgID: f.org.ID}, p)
			return len(r), n, err
		},
		"apps": func(p store.Page) (int, string, error) {
			r, n, err := s.ListApps(ctx(t), f.org.ID, p)
			return len(r), n, err
		},
		"machines": func(p store.Page) (int, string, error) {
			r, n, err := s.ListMachines(ctx(t), f.app.ID, true, p)
			return len(r), n, err
		},
		"members": func(p store.Page) (int, string, error) {
			r, n, err := s.ListMemberDetails(ctx(t), f.org.ID, p)
			return len(r), n, err
		},
		"invitations": func(p store.Page) (int, string, error) {
			r, n, err := s.ListInvitations(ctx(t), f.org.ID, p)
			return len(r), n, err
		},
		"keys": func(p store.Page) (int, string, error) {
			r, n, err := s.ListRootKeys(ctx(t), f.org.ID, p)
			return len(r), n, err
		},
	}
	_, tokenCursor, err := s.ListTokens(ctx(t), store.TokenFilter{OrgID: f.org.ID}, store.Page{Limit: 1})
	must(t, err)
	for name, list := range lists {
		for _, bad := range []store.Page{{Limit: 0}, {Limit: -1}, {Limit: store.MaxPageLimit + 1},
			{Limit: 10, After: "not base64 !"}, {Limit: 10, After: "Zm9v"}} {
			if _, _, err := list(bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: page %+v: %v, want ErrInvalid", name, bad, err)
			}
		}
		if name != "tokens" {
			if _, _, err := list(store.Page{Limit: 10, After: tokenCursor}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: a cursor of the token list: %v, want ErrInvalid", name, err)
			}
		}
		if _, _, err := list(store.Page{Limit: store.MaxPageLimit}); err != nil {
			t.Errorf("%s: the largest page: %v", name, err)
		}
	}

	// The same records whatever the page size.
	want := allTokens(t, s, store.TokenFilter{OrgID: f.org.ID})
	for _, limit := range []int{1, 3, 5, 6, store.MaxPageLimit} {
		got := all(t, limit, func(p store.Page) ([]store.Token, string, error) {
			return s.ListTokens(ctx(t), store.TokenFilter{OrgID: f.org.ID}, p)
		})
		wantEqual(t, "tokens by pages", got, want)
	}
	if len(want) != 5 {
		t.Fatalf("%d tokens listed, want 5", len(want))
	}
	// A cursor stays good when its record is gone: the list goes on after
	// its sort key.
	_, err = s.PurgeExpiredTokens(ctx(t), at(1e6*time.Hour), 1) // the oldest expires first: want[0]
	must(t, err)
	page, _, err := s.ListTokens(ctx(t), store.TokenFilter{OrgID: f.org.ID}, store.Page{Limit: 10, After: store.TokenCursor(want[0])})
	must(t, err)
	wantEqual(t, "after a purged token", page, want[1:])
}
