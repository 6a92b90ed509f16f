package console

// Named tokens: the list with its filters, creation (the token is shown
// once), and revocation after a confirmation.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// expiringSoon is how close an expiry must be for the list to warn.
const expiringSoon = 7 * 24 * time.Hour

// tokenRow is a registry record as the pages show it.
type tokenRow struct {
	store.Token
	App     string
	Creator string
	// Status is "active", "expired" or "revoked".
	Status    string
	ExpiresIn string // "in 3 days", "2 hours ago"; empty for never
	Soon      bool   // active, and expires within expiringSoon
	LastUsed  string // "never", "5 minutes ago"
	// MayRevoke is whether the user may revoke it (an admin, or its
	// creator) and it is not revoked yet.
	MayRevoke bool
}

// filter is one of the list's views.
type filter struct {
	Key, Label string
	Count      int
	Active     bool
}

type tokensData struct {
	Filters []filter
	Rows    []tokenRow
}

// filters are the list's views and which rows each shows.
type filterDef struct {
	key, label string
	keep       func(tokenRow) bool
}

var filters = []filterDef{
	{"all", "All", func(tokenRow) bool { return true }},
	{"expiring", "Expiring soon", func(r tokenRow) bool { return r.Soon }},
	{"unused", "Never used", func(r tokenRow) bool { return r.LastUsedAt.IsZero() && r.Status == "active" }},
	{"revoked", "Revoked", func(r tokenRow) bool { return r.Status == "revoked" }},
}

// tokenRows lists the organization's tokens (the operation "list
// tokens"), newest first, with the names of their apps and creators.
func (c *Console) tokenRows(q *request, org *store.OrganizationRole) ([]tokenRow, error) {
	ts, err := allOf(func(p store.Page) ([]store.Token, string, error) {
		return c.cfg.Authority.List(q.ctx(), q.p, org.ID, 0, true, p)
	})
	if err != nil {
		return nil, err
	}
	apps, err := c.allApps(q, org)
	if err != nil {
		return nil, err
	}
	appNames := map[uint64]string{}
	for _, a := range apps {
		appNames[a.ID] = a.Name
	}
	creators := map[uint64]string{}
	now := c.cfg.Now()
	rows := make([]tokenRow, 0, len(ts))
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		r := tokenRow{Token: t, Status: "active", LastUsed: "never"}
		if t.AppID != 0 {
			r.App = appNames[t.AppID]
			if r.App == "" {
				r.App = fmt.Sprintf("app %d", t.AppID)
			}
		}
		if _, ok := creators[t.CreatedBy]; !ok {
			creators[t.CreatedBy] = fmt.Sprintf("user %d", t.CreatedBy)
			if u, err := c.cfg.Store.GetUser(q.ctx(), t.CreatedBy); err == nil {
				creators[t.CreatedBy] = u.Email
			}
		}
		r.Creator = creators[t.CreatedBy]
		if !t.ExpiresAt.IsZero() {
			r.ExpiresIn = when(t.ExpiresAt, now)
			if !t.ExpiresAt.After(now) {
				r.Status = "expired"
			}
		}
		if t.Revoked() {
			r.Status = "revoked"
		}
		r.Soon = r.Status == "active" && !t.ExpiresAt.IsZero() && t.ExpiresAt.Sub(now) < expiringSoon
		if !t.LastUsedAt.IsZero() {
			r.LastUsed = when(t.LastUsedAt, now)
		}
		r.MayRevoke = !t.Revoked() && (org.Role == store.RoleAdmin || t.CreatedBy == q.p.UserID)
		rows = append(rows, r)
	}
	return rows, nil
}

// tokensPage serves GET /orgs/{org}/tokens?show=all|expiring|unused|revoked.
func (c *Console) tokensPage(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	rows, err := c.tokenRows(q, org)
	if err != nil {
		return err
	}
	show := q.URL.Query().Get("show")
	if !slices.ContainsFunc(filters, func(f filterDef) bool { return f.key == show }) {
		show = "all"
	}
	var d tokensData
	for _, f := range filters {
		n := 0
		for _, r := range rows {
			if f.keep(r) {
				n++
				if f.key == show {
					d.Rows = append(d.Rows, r)
				}
			}
		}
		d.Filters = append(d.Filters, filter{Key: f.key, Label: f.label, Count: n, Active: f.key == show})
	}
	v := q.view(org.Slug+" · Tokens", "tokens", org)
	v.Notice = q.notice()
	for _, r := range rows {
		if r.ID != q.URL.Query().Get("id") {
			continue
		}
		switch q.URL.Query().Get("m") {
		case "revoked":
			v.Notice = fmt.Sprintf("Token %q (%s) is revoked: every copy of it, and everything attenuated from it, is refused from now on.", r.Name, r.ID)
		case "branch":
			v.Notice = fmt.Sprintf("A branch of token %q (%s) is revoked: the token you pasted, and everything attenuated from it, are refused from now on; the token it was attenuated from keeps working.", r.Name, r.ID)
		}
	}
	v.Data = d
	c.render(w, http.StatusOK, "tokens", v)
	return nil
}

// profileOption is a mint profile as the form offers it.
type profileOption struct {
	Value, Label, Help string
	NeedsApp           bool
	AdminOnly          bool
}

var profileOptions = []profileOption{
	{authority.ProfileDeploy, "deploy", "Everything on one app: its machines, volumes and secrets.", true, false},
	{authority.ProfileMachineExec, "machine-exec", "Only running the listed commands on one app's machines.", true, false},
	{authority.ProfileReadonly, "readonly", "Read everything in the organization; change nothing.", false, false},
	{authority.ProfileOrg, "org", "Everything in the organization.", false, true},
}

type expiryOption struct{ Value, Label string }

var expiryOptions = []expiryOption{
	{"24h", "1 day"}, {"168h", "7 days"}, {"720h", "30 days"}, {"2160h", "90 days"}, {"8760h", "1 year"},
}

// tokenForm is what the create form holds, to show it again after a
// refusal.
type tokenForm struct {
	Profile, App, Name, Expiry, Commands string
}

type newTokenData struct {
	Profiles []profileOption
	Apps     []store.App
	Expiries []expiryOption
	Form     tokenForm
}

// newTokenPage serves GET /orgs/{org}/tokens/new.
func (c *Console) newTokenPage(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	f := tokenForm{Profile: authority.ProfileDeploy, Expiry: "8760h", App: q.URL.Query().Get("app")}
	return c.showNewToken(w, q, org, http.StatusOK, nil, f)
}

func (c *Console) showNewToken(w http.ResponseWriter, q *request, org *store.OrganizationRole, status int, p *problem, f tokenForm) error {
	apps, err := c.allApps(q, org)
	if err != nil {
		return err
	}
	v := q.view(org.Slug+" · New token", "tokens", org)
	v.Problem = p
	v.Data = newTokenData{Profiles: profileOptions, Apps: apps, Expiries: expiryOptions, Form: f}
	c.render(w, status, "newtoken", v)
	return nil
}

type createdData struct {
	Row    tokenRow
	Header string // the token, "FlyV1 fm2_…"
	File   string // a file name for it in the examples
	Debug  []tokenReport
	// Attenuate is whether to show the example that narrows it to
	// reading, starting and stopping machines.
	Attenuate bool
}

// createToken serves POST /orgs/{org}/tokens: the operation "create
// token", and the token shown once.
func (c *Console) createToken(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	f := tokenForm{
		Profile:  q.PostForm.Get("profile"),
		App:      strings.TrimSpace(q.PostForm.Get("app")),
		Name:     strings.TrimSpace(q.PostForm.Get("name")),
		Expiry:   q.PostForm.Get("expiry"),
		Commands: q.PostForm.Get("commands"),
	}
	refuse := func(err error) error {
		p := c.problemOf(q.Request, err)
		return c.showNewToken(w, q, org, p.Status, p, f)
	}
	req := authority.MintRequest{Profile: f.Profile, Name: f.Name, OrgID: org.ID}
	d, err := time.ParseDuration(f.Expiry)
	if err != nil || d <= 0 {
		return refuse(httpjson.Errorf(http.StatusBadRequest, "the expiry must be a positive duration such as 720h, not %q", f.Expiry))
	}
	req.Expiry = d
	if f.App != "" {
		a, err := c.cfg.Authority.AppByName(q.ctx(), q.p, org.ID, f.App)
		if err != nil {
			return refuse(err)
		}
		req.AppID = a.ID
	}
	for _, line := range strings.Split(f.Commands, "\n") {
		if args := strings.Fields(line); len(args) > 0 {
			req.Commands = append(req.Commands, flyio.Command{Args: args})
		}
	}
	m, err := c.cfg.Authority.Mint(q.ctx(), q.p, req)
	if err != nil {
		return refuse(err)
	}
	header := "FlyV1 " + m.Token.String()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return fmt.Errorf("reading the new token: %w", err)
	}
	row := tokenRow{Token: m.Record, App: f.App, Creator: q.user.Email, Status: "active", LastUsed: "never",
		ExpiresIn: when(m.Record.ExpiresAt, c.cfg.Now())}
	v := q.view(org.Slug+" · Token created", "tokens", org)
	v.Data = createdData{
		Row:       row,
		Header:    header,
		File:      m.Record.Profile + ".token",
		Debug:     c.reports(q, b),
		Attenuate: m.Record.Profile != authority.ProfileReadonly,
	}
	c.render(w, http.StatusOK, "created", v)
	return nil
}

// orgToken is the path's organization and its token of the path's id,
// found through the operation "list tokens".
func (c *Console) orgToken(q *request) (*store.OrganizationRole, tokenRow, error) {
	org, err := q.org()
	if err != nil {
		return nil, tokenRow{}, err
	}
	id := strings.ToLower(q.PathValue("id"))
	if !store.ValidTokenID(id) {
		return nil, tokenRow{}, httpjson.Errorf(http.StatusNotFound, "%q is not a token id", q.PathValue("id"))
	}
	rows, err := c.tokenRows(q, org)
	if err != nil {
		return nil, tokenRow{}, err
	}
	for _, r := range rows {
		if r.ID == id {
			return org, r, nil
		}
	}
	return nil, tokenRow{}, httpjson.Errorf(http.StatusNotFound, "no token %s in organization %s", id, org.Slug)
}

// revokePage serves GET /orgs/{org}/tokens/{id}/revoke: the confirmation.
func (c *Console) revokePage(w http.ResponseWriter, q *request) error {
	return c.showRevoke(w, q, http.StatusOK, nil)
}

func (c *Console) showRevoke(w http.ResponseWriter, q *request, status int, p *problem) error {
	org, row, err := c.orgToken(q)
	if err != nil {
		return err
	}
	v := q.view(org.Slug+" · Revoke "+row.Name, "tokens", org)
	v.Problem, v.Data = p, row
	c.render(w, status, "revoke", v)
	return nil
}

// revokeToken serves POST /orgs/{org}/tokens/{id}/revoke: the operation
// "revoke token by id".
func (c *Console) revokeToken(w http.ResponseWriter, q *request) error {
	org, row, err := c.orgToken(q)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Authority.Revoke(q.ctx(), q.p, row.ID); err != nil {
		p := c.problemOf(q.Request, err)
		return c.showRevoke(w, q, p.Status, p)
	}
	http.Redirect(w, q.Request, "/orgs/"+org.Slug+"/tokens?m=revoked&id="+row.ID, http.StatusSeeOther)
	return nil
}

// branchPage serves GET /orgs/{org}/tokens/revoke-branch: the form.
func (c *Console) branchPage(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	return c.showBranch(w, q, org, http.StatusOK, nil)
}

func (c *Console) showBranch(w http.ResponseWriter, q *request, org *store.OrganizationRole, status int, p *problem) error {
	v := q.view(org.Slug+" · Revoke a branch", "tokens", org)
	v.Problem = p
	c.render(w, status, "branch", v)
	return nil
}

// revokeBranch serves POST /orgs/{org}/tokens/revoke-branch: the
// operation "revoke a branch", with the pasted branch. The authority
// verifies it under its organization's key before recording anything.
func (c *Console) revokeBranch(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	refuse := func(err error) error {
		p := c.problemOf(q.Request, err)
		return c.showBranch(w, q, org, p.Status, p)
	}
	text := strings.TrimSpace(q.PostForm.Get("token"))
	if text == "" {
		return refuse(httpjson.Errorf(http.StatusBadRequest, "paste the token to revoke (fm2_…), with its discharges if it has third-party caveats"))
	}
	br, err := c.cfg.Authority.RevokeBranch(q.ctx(), q.p, text)
	if err != nil {
		return refuse(err)
	}
	http.Redirect(w, q.Request, "/orgs/"+org.Slug+"/tokens?m=branch&id="+br.TokenID, http.StatusSeeOther)
	return nil
}
