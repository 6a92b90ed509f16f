package authority

// Every list of the API answers a page at a time:
//
//	GET /v1/tokens?org=acme&limit=100&after=CURSOR
//	→ {"tokens": [...], "next": "CURSOR"}
//
// limit is 1 to 1000 (100 when absent); after is the "next" of the
// previous page (absent for the first); "next" is present only when
// another page follows. A page may hold fewer rows than limit, even none,
// when the caller's caveats hide some of what the store read: keep
// following "next" until it is absent. The cursor is opaque; a cursor of
// another list, or a made-up one, is a 400.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/store"
)

// pageParams reads limit and after from the query of r.
func pageParams(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	p := store.Page{After: q.Get("after"), Limit: store.DefaultPageLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageLimit {
			return p, badRequest(`"limit" must be a number from 1 to %d, not %q`, store.MaxPageLimit, v)
		}
		p.Limit = n
	}
	return p, nil
}

// pageErr is err from a store list: a cursor the store refuses is the
// caller's mistake.
func pageErr(what string, err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return fault.Errorf(fault.Invalid, `"after" is not a cursor of this list: pass the "next" of the previous page`)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// paged is a page's answer: the rows under name, and next when another
// page follows.
func paged(name string, rows any, next string) map[string]any {
	out := map[string]any{name: rows}
	if next != "" {
		out["next"] = next
	}
	return out
}

// orgPage answers a page of the records of the organization named slug:
// the organization resolved for the caller first (an outsider is told it
// does not exist), then the page asked for, then list, which clears the
// caller's access to the records; each record answered as toJSON makes
// it, under name.
func orgPage[T, J any](ctx context.Context, s *Service, p *Principal, r *http.Request, slug, name string,
	list func(context.Context, *Principal, uint64, store.Page) ([]T, string, error), toJSON func(T) J) (int, any, error) {
	o, err := s.Organization(ctx, p, slug)
	if err != nil {
		return 0, nil, err
	}
	page, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	rows, next, err := list(ctx, p, o.ID, page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]J, len(rows))
	for i, row := range rows {
		out[i] = toJSON(row)
	}
	return http.StatusOK, paged(name, out, next), nil
}
