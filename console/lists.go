package console

import "github.com/caveatdev/caveat/store"

// allOf reads a whole list, a page of store.MaxPageLimit at a time. The
// console's pages still show whole lists (the API, the CLI and the Go
// client read a page at a time): a very large organization's token and
// key pages cost as much as its token list.
func allOf[T any](list func(p store.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	p := store.Page{Limit: store.MaxPageLimit}
	for {
		rows, next, err := list(p)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}

// allApps is the organization's apps, through the operation "list apps".
func (c *Console) allApps(q *request, org *store.OrganizationRole) ([]store.App, error) {
	return allOf(func(p store.Page) ([]store.App, string, error) {
		return c.cfg.Authority.ListApps(q.ctx(), q.p, org.ID, p)
	})
}

// allMembers is the organization's members, through the operation "list
// members".
func (c *Console) allMembers(q *request, org *store.OrganizationRole) ([]store.Member, error) {
	return allOf(func(p store.Page) ([]store.Member, string, error) {
		return c.cfg.Authority.Members(q.ctx(), q.p, org.ID, p)
	})
}
