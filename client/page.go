package client

import (
	"iter"
	"net/url"
	"strconv"
)

// Page asks for one page of a list. The server answers at most Limit
// records (100 when 0, at most 1 000) after the cursor After (from the
// start when ""), and the cursor of the next page when there is one.
type Page struct {
	Limit int
	After string
}

// maxPage is the largest page a server answers.
const maxPage = 1000

// query returns "?" and v with the page's limit and after, or "" when
// there is nothing to send.
func (p Page) query(v url.Values) string {
	if v == nil {
		v = url.Values{}
	}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.After != "" {
		v.Set("after", p.After)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Pages yields the records of a list a page at a time, from the page p on,
// reading each with list, until the last page (no next cursor), an error
// (yielded last, with no records), or the caller stops. Only one page is
// held at a time, however long the list.
func Pages[T any](p Page, list func(Page) ([]T, string, error)) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		for {
			rows, next, err := list(p)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(rows, nil) || next == "" {
				return
			}
			if next == p.After {
				// A server that hands the same cursor back would loop
				// forever.
				yield(nil, &AnswerError{Problem: "repeats the cursor it was given: the list does not advance"})
				return
			}
			p.After = next
		}
	}
}

// Collect reads every page of a list into one slice: for lists that are
// short by nature (an organization's keys, a user's organizations) or
// tests. Long lists are better read with Pages, a page at a time.
func Collect[T any](pages iter.Seq2[[]T, error]) ([]T, error) {
	out := []T{}
	for rows, err := range pages {
		if err != nil {
			return out, err
		}
		out = append(out, rows...)
	}
	return out, nil
}
