package cli

// Lists print as their pages come: the server answers a page at a time
// (an organization may hold a million tokens), and the CLI holds one page,
// never the whole list. A table aligns its columns on the first page and
// widens them for later pages that need it; --json writes one JSON array,
// element by element, the same bytes as the array printed whole.

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"

	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

// pageSize is the page the CLI asks for: the server's largest.
const pageSize = 1000

// listFlags are the flags of every list command.
type listFlags struct {
	limit int
}

func (l *listFlags) register(c *cobra.Command) {
	c.Flags().IntVar(&l.limit, "limit", 0, "print at most this many rows (default: all of them, read a page at a time)")
}

// check refuses a negative limit.
func (l *listFlags) check(cmd *cobra.Command) error {
	if l.limit < 0 {
		return usageError(cmd, "--limit %d: want a positive number of rows (or 0 for all)", l.limit)
	}
	return nil
}

// page is the first page to ask for: no larger than the limit.
func (l *listFlags) page() client.Page {
	if l.limit > 0 && l.limit < pageSize {
		return client.Page{Limit: l.limit}
	}
	return client.Page{Limit: pageSize}
}

// listPrinter prints the rows of a list, a page at a time.
type listPrinter struct {
	a       *app
	json    bool
	limit   int // 0: no limit
	header  []string
	widths  []int
	printed int
}

func (a *app) newListPrinter(jsonOut bool, l listFlags, header ...string) *listPrinter {
	w := make([]int, len(header))
	for i, h := range header {
		w[i] = len(h)
	}
	return &listPrinter{a: a, json: jsonOut, limit: l.limit, header: header, widths: w}
}

// full reports whether the limit has been reached.
func (p *listPrinter) full() bool { return p.limit > 0 && p.printed >= p.limit }

// add prints records (rows[i] is the table row of records[i]) up to the
// limit.
func (p *listPrinter) add(records []any, rows [][]string) error {
	if p.limit > 0 {
		n := min(len(records), p.limit-p.printed)
		records, rows = records[:n], rows[:n]
	}
	var b strings.Builder
	if p.json {
		for _, r := range records {
			el, err := json.MarshalIndent(r, "  ", "  ")
			if err != nil {
				return failf("%v", err)
			}
			if p.printed == 0 {
				b.WriteString("[\n  ")
			} else {
				b.WriteString(",\n  ")
			}
			b.Write(el)
			p.printed++
		}
		return p.a.output(b.String())
	}
	for _, r := range rows {
		for i, c := range r {
			p.widths[i] = max(p.widths[i], len(c))
		}
	}
	if p.printed == 0 && len(rows) > 0 {
		p.writeRow(&b, p.header)
	}
	for _, r := range rows {
		p.writeRow(&b, r)
		p.printed++
	}
	return p.a.output(b.String())
}

func (p *listPrinter) writeRow(b *strings.Builder, r []string) {
	for i, c := range r {
		if i == len(r)-1 {
			b.WriteString(c)
		} else {
			fmt.Fprintf(b, "%-*s  ", p.widths[i], c)
		}
	}
	b.WriteString("\n")
}

// close ends the list: the closing bracket of the JSON array (or the empty
// array), or the header of an empty table.
func (p *listPrinter) close() error {
	switch {
	case p.json && p.printed == 0:
		return p.a.output("[]\n")
	case p.json:
		return p.a.output("\n]\n")
	case p.printed == 0:
		var b strings.Builder
		p.writeRow(&b, p.header)
		return p.a.output(b.String())
	}
	return nil
}

// printPages prints the records of pages that keep selects (all when keep
// is nil), as rows made by row, until the list or the limit ends. An error
// of the list is returned as it is, for the caller to explain; what was
// printed before it stays printed (a JSON array without its end: not valid
// JSON, as it should not be).
func printPages[T any](p *listPrinter, pages iter.Seq2[[]T, error], keep func(T) bool, row func(T) []string) error {
	for page, err := range pages {
		if err != nil {
			return err
		}
		var records []any
		var rows [][]string
		for _, r := range page {
			if keep == nil || keep(r) {
				records = append(records, r)
				rows = append(rows, row(r))
			}
		}
		if err := p.add(records, rows); err != nil {
			return err
		}
		if p.full() {
			break
		}
	}
	return p.close()
}

// orgList describes a command that lists one organization's records,
// page by page: -o/--org (default: the caller's only organization),
// --limit and --json.
type orgList[T any] struct {
	use, short string
	// what names the command in errors ("orgs members").
	what   string
	header []string
	// pages is the client's method that reads them (method expression).
	pages func(cl *client.Client, ctx context.Context, org string, p client.Page) iter.Seq2[[]T, error]
	row   func(T) []string
}

// orgListCommand builds the command l describes.
func orgListCommand[T any](a *app, l orgList[T]) *cobra.Command {
	var (
		f   onlineFlags
		lf  listFlags
		org string
	)
	c := &cobra.Command{
		Use:     l.use,
		Short:   l.short,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return lf.check(cmd) },
		RunE: a.onlineList(&f, func(ctx context.Context, cl *client.Client, _ []string) error {
			org, err := a.pickOrg(ctx, cl, org)
			if err != nil {
				return err
			}
			out := a.newListPrinter(f.json, lf, l.header...)
			if err := printPages(out, l.pages(cl, ctx, org, lf.page()), nil, l.row); err != nil {
				return apiErr(l.what, err)
			}
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	lf.register(c)
	orgFlag(c, &org)
	return c
}
