package console

// Browser sessions: the cookie that holds the session secret, the CSRF
// tokens of the forms, the same-origin rule, and logging in and out.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// maxForm bounds a form post: the inspector's may hold a bundle of up to
// caveat.MaxHeaderSize bytes, percent-encoded.
const maxForm = 1 << 20

// loginFormTTL is how long a login form can wait for its post.
const loginFormTTL = time.Hour

// csrfLabel is what the CSRF token of a session is the MAC of, under the
// session secret.
const csrfLabel = "caveat console csrf v1"

// sessionCookie is the name of the cookie that holds the session secret.
// Over HTTPS it has the __Host- prefix, with which browsers accept it only
// with Secure, Path=/ and no Domain, so that no other host (a subdomain)
// can plant one.
func (c *Console) sessionCookie() string {
	if c.secure {
		return "__Host-caveat-session"
	}
	return "caveat-session"
}

// loginCookie is the name of the cookie that the login form's token is
// bound to.
func (c *Console) loginCookie() string {
	if c.secure {
		return "__Host-caveat-login"
	}
	return "caveat-login"
}

// setCookie sets a cookie with the console's attributes: HttpOnly,
// SameSite=Strict, Path=/, and Secure when the public URL is https. A
// zero expires deletes the cookie.
func (c *Console) setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.secure,
		SameSite: http.SameSiteStrictMode}
	if expires.IsZero() {
		ck.MaxAge = -1
	} else {
		ck.Expires = expires
	}
	http.SetCookie(w, ck)
}

// csrfToken is the CSRF token of the forms of a session: a MAC of its
// secret, so that the console stores nothing, the page carries nothing
// that opens the session, and another site, which cannot read the page,
// cannot make one.
func csrfToken(secret string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// request is a request made with a live session.
type request struct {
	*http.Request
	p      *authority.Principal
	secret string
	user   store.User
	csrf   string
	// orgs are the organizations the session may read, with the user's
	// role in each.
	orgs []store.OrganizationRole
}

func (q *request) ctx() context.Context { return q.Context() }

// errNoSession means the request has no live session: no cookie, or one
// whose session ended, expired or never existed.
var errNoSession = errors.New("no session")

// session resolves the request's cookie to its live session, reading the
// store every time, so that a logout made anywhere ends it here at once.
func (c *Console) session(r *http.Request) (*request, error) {
	ck, err := r.Cookie(c.sessionCookie())
	if err != nil || ck.Value == "" {
		return nil, errNoSession
	}
	ctx := r.Context()
	p, err := c.cfg.Authority.SessionPrincipal(ctx, ck.Value)
	if fault.CodeOf(err) == fault.Unauthenticated {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	u, err := c.cfg.Store.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("user of the session: %w", err)
	}
	orgs, err := c.cfg.Authority.Organizations(ctx, p)
	if err != nil {
		return nil, err
	}
	return &request{Request: r, p: p, secret: ck.Value, user: u, csrf: csrfToken(ck.Value), orgs: orgs}, nil
}

// sameOrigin refuses a form that a browser says another site or origin
// sent. Without either header (a client that is not a browser) the CSRF
// token alone decides.
func (c *Console) sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return httpjson.Errorf(http.StatusForbidden,
			"refused a form sent from another site or origin (Sec-Fetch-Site: %s): the console accepts forms only from its own pages", site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != c.origin {
		return httpjson.Errorf(http.StatusForbidden,
			"refused a form sent from %q: the console accepts forms only from its own pages, at %s", o, c.origin)
	}
	return nil
}

// errBadCSRF refuses a form without the session's CSRF token.
var errBadCSRF = httpjson.Errorf(http.StatusForbidden,
	"the form could not be verified (its CSRF token is missing or is not this session's): reload the page and try again")

// parseForm reads a form post of at most maxForm bytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return httpjson.Errorf(http.StatusRequestEntityTooLarge, "the form is larger than %d bytes", maxForm)
		}
		return httpjson.Errorf(http.StatusBadRequest, "the form could not be read")
	}
	return nil
}

// public wraps a handler that needs no session (the login form).
func (c *Console) public(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	}
}

// page wraps the handler of a page that needs a session: without one it
// redirects to the login page, which comes back here.
func (c *Console) page(h func(http.ResponseWriter, *request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		q, err := c.session(r)
		if errors.Is(err, errNoSession) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if err := h(w, q); err != nil {
			c.fail(w, r, q, err)
		}
	}
}

// form wraps the handler of a form: same origin, a live session, and the
// session's CSRF token, in that order, before the handler reads anything.
func (c *Console) form(h func(http.ResponseWriter, *request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.securityHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		if err := c.sameOrigin(r); err != nil {
			c.fail(w, r, nil, err)
			return
		}
		q, err := c.session(r)
		if errors.Is(err, errNoSession) {
			http.Redirect(w, r, "/login?m=ended", http.StatusSeeOther)
			return
		}
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if err := parseForm(w, r); err != nil {
			c.fail(w, r, q, err)
			return
		}
		if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(q.csrf)) {
			c.fail(w, r, q, errBadCSRF)
			return
		}
		if err := h(w, q); err != nil {
			c.fail(w, r, q, err)
		}
	}
}

// loginView is what the login page shows.
type loginView struct {
	Email string
	Next  string
	Token string // the login form's CSRF token
}

// notices are the fixed messages that a redirect can ask a page to show
// (?m=…), so that no text of the URL is ever shown.
var notices = map[string]string{
	"out":        "You are logged out. The session has ended everywhere: in this browser and for anything else that held it.",
	"everywhere": "You are logged out everywhere: every session of your account has ended, the CLI's included.",
	"ended":      "Your session has ended (logged out elsewhere, or expired). Log in again.",
	"revoked":    "The token is revoked: every copy of it is refused from now on.",
	"rotated":    "A new key mints the organization's tokens from now on. Tokens minted with the previous key keep working until you retire it.",
	"retired":    "The key is retired: the tokens it minted are refused from now on.",
	"app":        "The app is created.",
	"start":      "The machine is starting.",
	"stop":       "The machine is stopping.",
	"cancelled":  "The invitation is cancelled: its link no longer works.",
	"role":       "The role is changed. What only admins may do is refused at once to a demoted admin's tokens.",
	"removed":    "The member is removed, and their tokens of the organization with them (unless you kept them).",
	"left":       "You left the organization; your tokens of it are revoked.",
	"joined":     "Welcome: you joined the organization.",
}

// loginPage serves GET /login: the form, or the way on for a browser that
// is logged in already.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, loginView{Next: next}, notices[r.URL.Query().Get("m")], nil)
}

// renderLogin shows the login form with a new form token, bound to a new
// login cookie.
func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, lv loginView, notice string, p *problem) {
	var b [32]byte
	rand.Read(b[:])
	lv.Token = base64.RawURLEncoding.EncodeToString(b[:])
	c.setCookie(w, c.loginCookie(), lv.Token, c.cfg.Now().Add(loginFormTTL))
	c.render(w, status, "login", &view{Title: "Log in", Notice: notice, Problem: p, Data: lv})
}

// login serves POST /login: the login service's own password check and
// throttling, then a new session whose secret goes into the cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := c.sameOrigin(r); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	lv := loginView{Email: r.PostForm.Get("email"), Next: safeNext(r.PostForm.Get("next"))}
	ck, err := r.Cookie(c.loginCookie())
	if err != nil || ck.Value == "" || !hmac.Equal([]byte(ck.Value), []byte(r.PostForm.Get("csrf"))) {
		c.renderLogin(w, r, http.StatusForbidden, lv, "", &problem{Heading: "Try again",
			Message: "This login form has expired or did not come from this page. Here is a fresh one."})
		return
	}
	password := r.PostForm.Get("password")
	if strings.TrimSpace(lv.Email) == "" || password == "" {
		c.renderLogin(w, r, http.StatusBadRequest, lv, "", &problem{Heading: "Log in", Message: "Enter your email and password."})
		return
	}
	resp, err := c.cfg.Identity.Login(r.Context(), r, lv.Email, password)
	if err != nil {
		status, _, refused := httpjson.StatusOf(err)
		switch secs, limited := identity.RetryAfter(err); {
		case limited:
			w.Header().Set("Retry-After", secs)
			c.renderLogin(w, r, http.StatusTooManyRequests, lv, "", &problem{Heading: "Too many attempts",
				Message: "Too many login attempts. Try again in " + secs + " seconds."})
		case refused:
			c.renderLogin(w, r, status, lv, "", &problem{Heading: "Log in failed", Message: "Invalid email or password."})
		default:
			c.fail(w, r, nil, err)
		}
		return
	}
	c.setCookie(w, c.loginCookie(), "", time.Time{})
	c.setCookie(w, c.sessionCookie(), resp.Secret, resp.ExpiresAt)
	http.Redirect(w, r, lv.Next, http.StatusSeeOther)
}

// logout serves POST /logout: the session is revoked in the store.
func (c *Console) logout(w http.ResponseWriter, q *request) error {
	if err := c.cfg.Identity.Logout(q.ctx(), q.secret); err != nil {
		return err
	}
	c.setCookie(w, c.sessionCookie(), "", time.Time{})
	http.Redirect(w, q.Request, "/login?m=out", http.StatusSeeOther)
	return nil
}

// logoutEverywhere serves POST /logout-everywhere: every session of the
// user is revoked.
func (c *Console) logoutEverywhere(w http.ResponseWriter, q *request) error {
	if _, err := c.cfg.Identity.LogoutEverywhere(q.ctx(), q.secret); err != nil {
		return err
	}
	c.setCookie(w, c.sessionCookie(), "", time.Time{})
	http.Redirect(w, q.Request, "/login?m=everywhere", http.StatusSeeOther)
	return nil
}

// safeNext keeps a page to go on to only if it is a path of this site,
// so that the login form cannot be made to send anyone elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if strings.HasPrefix(next, "/login") {
		return "/"
	}
	return u.RequestURI()
}
