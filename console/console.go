// Package console is caveat's web console: server-rendered pages at "/"
// for people who manage tokens, apps, machines, members and keys from a
// browser.
//
// # Same rules as the API
//
// The console holds no power of its own. A browser logs in with an email
// and a password through the login service's own code (identity.Service.Login:
// the same argon2id check and the same throttling per account and per
// address, in the same buckets as POST /aaa/v1/sessions), which starts a
// caveat session like any other. Every page and form then calls the
// authority's (and the Machines API's) service methods with that
// session's principal (authority.SessionPrincipal), so each action is
// cleared against the operation table exactly as the API clears it, and a
// refusal is shown with the API's message, which names the caveat or the
// role that refused. The principal is the session's unattenuated one: the
// console acts with the logged-in user's full session rights, as the
// CLI's plain login does.
//
// # Sessions
//
// The session secret is the only credential, kept in a cookie that
// scripts cannot read (HttpOnly), that no other site's request carries
// (SameSite=Strict), that only HTTPS carries when the public URL is https
// (Secure, and then the __Host- prefix, so that no subdomain can set it).
// It is resolved on every request to the session in the store, so that a
// logout anywhere (the console's, the CLI's DELETE /aaa/v1/sessions/current
// with the same secret, "log out everywhere", an expiry) ends the console
// session at its next request, and the console's logout revokes the
// session for every holder of its secret or its token.
//
// # Forms
//
// Every state-changing request is a POST form (Forms) that must carry the
// session's CSRF token, an HMAC of the session secret (so nothing is
// stored, and it is worthless without the cookie), and is refused when
// Origin is not the public URL's or Sec-Fetch-Site is not same-origin.
// The login form carries a random token bound to a short-lived cookie
// instead. Pages with secrets (a new token, the inspector) and every other
// page are sent with Cache-Control: no-store, under a strict
// Content-Security-Policy (scripts, styles and images from the console
// only, no inline script, frame-ancestors 'none').
//
// # Pasted tokens
//
// The token inspector receives tokens in a POST body, never a URL, and
// neither stores nor logs them: it describes the bundle (package
// internal/inspect, what "caveat tokens debug" prints) and, for a token of
// one of the user's organizations, shows its registry record and whether
// its signature verifies. Looking at a token there does not count as a use.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Console.
type Config struct {
	// Authority performs every operation. Required.
	Authority *authority.Service
	// Identity logs people in and out. Required.
	Identity *identity.Service
	// Keyring tells the inspector which organization's key signed a
	// token, and checks the signature. Required.
	Keyring *keyring.Keyring
	// Machines lists, starts and stops machines; nil when this process
	// does not serve the Machines API (the pages then say so).
	Machines *machines.Service
	// Store names the creators of tokens, and tells the inspector which
	// branches of a token are revoked. Required.
	Store Store
	// PublicURL is the URL people reach the server at: forms must come
	// from its origin, and its scheme decides whether the session cookie
	// is Secure. The token locations are PublicURL+"/v1" and
	// PublicURL+"/aaa/v1". Required.
	PublicURL string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives internal errors; nothing about a token, a password
	// or a session secret is ever logged.
	Logger *slog.Logger
}

// Store is what the console reads besides the services: the emails of
// the people it names, and a token's revoked branches (whose number the
// token list shows).
type Store interface {
	GetUser(ctx context.Context, id uint64) (store.User, error)
	ListRevokedBranches(ctx context.Context, tokenID string) ([]store.RevokedBranch, error)
}

// Console serves the web console.
type Console struct {
	cfg           Config
	origin        string // scheme://host[:port] of the public URL
	secure        bool   // the public URL is https
	tokenLocation string
	loginLocation string
	pages         map[string]*template.Template
	static        http.Handler
}

// Form is a request that changes something: a POST that needs the
// session's CSRF token and a same-origin request.
type Form struct {
	Path string
	// Operations name the rows of authority.Operations it performs with
	// the user's session, or the Machines API action ("machines: …") or
	// login service endpoint ("identity: …") it uses, or "none" for a
	// form that changes nothing (the inspector's, a POST so that pasted
	// tokens stay out of URLs).
	Operations []string
}

// Forms lists every form of the console but the login form, which has no
// session yet (it carries a token bound to a cookie of its own).
var Forms = []Form{
	{"/logout", []string{"identity: DELETE /aaa/v1/sessions/current"}},
	{"/logout-everywhere", []string{"identity: every session of the user"}},
	{"/orgs/{org}/apps", []string{"create app"}},
	{"/orgs/{org}/apps/{app}/machines/{id}/start", []string{"machines: start"}},
	{"/orgs/{org}/apps/{app}/machines/{id}/stop", []string{"machines: stop"}},
	{"/orgs/{org}/tokens", []string{"create token (org, readonly)", "create token (deploy, machine-exec)"}},
	{"/orgs/{org}/tokens/{id}/revoke", []string{"revoke token by id"}},
	{"/orgs/{org}/tokens/revoke-branch", []string{"revoke a branch"}},
	{"/orgs/{org}/keys/rotate", []string{"rotate key"}},
	{"/orgs/{org}/keys/{kid}/retire", []string{"retire key"}},
	{"/orgs/{org}/invitations", []string{"invite"}},
	{"/orgs/{org}/invitations/{id}/cancel", []string{"cancel an invitation"}},
	{"/orgs/{org}/members/{user}/role", []string{"change a member's role"}},
	{"/orgs/{org}/members/{user}/remove", []string{"remove a member"}},
	{"/join", []string{"accept an invitation"}},
	{"/inspect", []string{"none"}},
}

// Pages lists the pages (GET) that need a session; without one they
// redirect to the login page.
var Pages = []string{
	"/{$}",
	"/orgs/{org}",
	"/orgs/{org}/apps/{app}",
	"/orgs/{org}/tokens",
	"/orgs/{org}/tokens/new",
	"/orgs/{org}/tokens/{id}/revoke",
	"/orgs/{org}/tokens/revoke-branch",
	"/orgs/{org}/keys",
	"/orgs/{org}/keys/{kid}/retire",
	"/orgs/{org}/members",
	"/orgs/{org}/members/{user}/remove",
	"/inspect",
}

// New checks cfg and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Authority == nil || cfg.Identity == nil || cfg.Keyring == nil || cfg.Store == nil {
		return nil, errors.New("console: Authority, Identity, Keyring and Store are required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("console: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	base := strings.TrimRight(cfg.PublicURL, "/")
	c := &Console{
		cfg:           cfg,
		origin:        u.Scheme + "://" + u.Host,
		secure:        u.Scheme == "https",
		tokenLocation: base + "/v1",
		loginLocation: base + "/aaa/v1",
	}
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	c.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	if err := c.checkRoutes(); err != nil {
		return nil, err
	}
	return c, nil
}

// routes are the console's handlers by mux pattern.
func (c *Console) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /login":              c.public(c.loginPage),
		"POST /login":             c.public(c.login),
		"GET /static/":            c.staticFile,
		"POST /logout":            c.form(c.logout),
		"POST /logout-everywhere": c.form(c.logoutEverywhere),

		"GET /{$}":                   c.page(c.home),
		"GET /orgs/{org}":            c.page(c.orgPage),
		"POST /orgs/{org}/apps":      c.form(c.createApp),
		"GET /orgs/{org}/apps/{app}": c.page(c.appPage),
		"POST /orgs/{org}/apps/{app}/machines/{id}/start": c.form(c.startMachine),
		"POST /orgs/{org}/apps/{app}/machines/{id}/stop":  c.form(c.stopMachine),

		"GET /orgs/{org}/tokens":                c.page(c.tokensPage),
		"GET /orgs/{org}/tokens/new":            c.page(c.newTokenPage),
		"POST /orgs/{org}/tokens":               c.form(c.createToken),
		"GET /orgs/{org}/tokens/{id}/revoke":    c.page(c.revokePage),
		"POST /orgs/{org}/tokens/{id}/revoke":   c.form(c.revokeToken),
		"GET /orgs/{org}/tokens/revoke-branch":  c.page(c.branchPage),
		"POST /orgs/{org}/tokens/revoke-branch": c.form(c.revokeBranch),

		"GET /orgs/{org}/keys":               c.page(c.keysPage),
		"POST /orgs/{org}/keys/rotate":       c.form(c.rotateKey),
		"GET /orgs/{org}/keys/{kid}/retire":  c.page(c.retirePage),
		"POST /orgs/{org}/keys/{kid}/retire": c.form(c.retireKey),

		"GET /orgs/{org}/members":                  c.page(c.membersPage),
		"POST /orgs/{org}/invitations":             c.form(c.invite),
		"POST /orgs/{org}/invitations/{id}/cancel": c.form(c.cancelInvitation),
		"POST /orgs/{org}/members/{user}/role":     c.form(c.setRole),
		"GET /orgs/{org}/members/{user}/remove":    c.page(c.removePage),
		"POST /orgs/{org}/members/{user}/remove":   c.form(c.removeMember),
		"POST /join":                               c.form(c.join),

		"GET /inspect":  c.page(c.inspectPage),
		"POST /inspect": c.form(c.inspect),
	}
}

// checkRoutes keeps Forms and Pages, which tests and the README rely on,
// exactly the routes served.
func (c *Console) checkRoutes() error {
	want := []string{"GET /login", "POST /login", "GET /static/"}
	for _, f := range Forms {
		want = append(want, "POST "+f.Path)
	}
	for _, p := range Pages {
		want = append(want, "GET "+p)
	}
	var got []string
	for k := range c.routes() {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return fmt.Errorf("console: the routes served (%s) are not Forms and Pages (%s)",
			strings.Join(got, ", "), strings.Join(want, ", "))
	}
	return nil
}

// Register adds the console's routes to mux. They are all outside /v1 and
// /aaa/v1, so that the APIs keep their JSON answers.
func (c *Console) Register(mux *http.ServeMux) {
	for pattern, h := range c.routes() {
		mux.HandleFunc(pattern, h)
	}
}

func (c *Console) staticFile(w http.ResponseWriter, r *http.Request) {
	c.securityHeaders(w)
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}

// securityHeaders are on every answer of the console.
func (c *Console) securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
