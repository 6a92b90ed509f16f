package console

// Rendering: one layout, a template per page, and the words for times and
// refusals.

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// view is what the layout shows around a page.
type view struct {
	Title string
	// Section is the part of the navigation the page belongs to:
	// "orgs", "tokens", "apps", "keys" or "inspect".
	Section string
	User    string // the logged-in user's email; empty on the login page
	CSRF    string
	Orgs    []store.OrganizationRole
	Org     *store.OrganizationRole
	Notice  string
	Problem *problem
	// Data is the page's own.
	Data any
}

// problem is a refusal or a failure, shown above the page.
type problem struct {
	Status  int
	Heading string
	Message string
}

// newView is the view of a page for a request with a session.
func (q *request) view(title, section string, org *store.OrganizationRole) *view {
	return &view{Title: title, Section: section, User: q.user.Email, CSRF: q.csrf, Orgs: q.orgs, Org: org}
}

// IsAdmin reports whether the user is an admin of the view's organization.
func (v *view) IsAdmin() bool { return v.Org != nil && v.Org.Role == store.RoleAdmin }

var funcs = template.FuncMap{
	"date":    formatDate,
	"day":     func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short":   func(s string) string { return shortID(s) },
}

// formatDate is how the pages show a time: to the minute, in UTC.
func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// shortID is the first block of a token id, enough to tell tokens apart on
// a page; the full id is in its title.
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

// parseTemplates parses each page with the layout and the shared parts.
func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "parts" {
			continue
		}
		t, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page. It renders into a buffer first, so that a failure
// never sends half a page.
func (c *Console) render(w http.ResponseWriter, status int, page string, v *view) {
	var buf bytes.Buffer
	t, ok := c.pages[page]
	if !ok {
		c.cfg.Logger.Error("console: no template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.cfg.Logger.Error("console: rendering a page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// problemOf turns an error into what the page says: a refusal by the
// authority keeps its message, which names the caveat or the role; any
// other failure is logged (its route, never its form) and shown as one.
func (c *Console) problemOf(r *http.Request, err error) *problem {
	if status, msg, ok := httpjson.StatusOf(err); ok {
		return &problem{Status: status, Heading: headings[status], Message: msg}
	}
	c.cfg.Logger.ErrorContext(r.Context(), "console: internal error", "method", r.Method, "route", r.Pattern, "err", err)
	return &problem{Status: http.StatusInternalServerError, Heading: "Something went wrong",
		Message: "The server failed to do this; the failure is logged. Try again later."}
}

var headings = map[int]string{
	http.StatusBadRequest:            "That did not work",
	http.StatusUnauthorized:          "Not logged in",
	http.StatusForbidden:             "Refused",
	http.StatusNotFound:              "Not found",
	http.StatusConflict:              "Conflict",
	http.StatusRequestEntityTooLarge: "Too large",
	http.StatusPreconditionFailed:    "Not now",
	http.StatusTooManyRequests:       "Too many attempts",
}

// fail shows an error page (within the layout when there is a session).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, q *request, err error) {
	p := c.problemOf(r, err)
	if p.Heading == "" {
		p.Heading = http.StatusText(p.Status)
	}
	v := &view{Title: p.Heading, Problem: p}
	if q != nil {
		v = q.view(p.Heading, "", nil)
		v.Problem = p
	}
	c.render(w, p.Status, "error", v)
}

// when says how far t is from now in words, rounded to the nearest
// minute, hour or day: "in 3 days", "2 hours ago".
func when(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	round := func(unit time.Duration) int { return int((d + unit/2) / unit) }
	var amount string
	switch {
	case d < 30*time.Second:
		if future {
			return "in less than a minute"
		}
		return "just now"
	case round(time.Minute) < 60:
		amount = plural(round(time.Minute), "minute")
	case round(time.Hour) < 48:
		amount = plural(round(time.Hour), "hour")
	default:
		amount = plural(round(24*time.Hour), "day")
	}
	if future {
		return "in " + amount
	}
	return amount + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
