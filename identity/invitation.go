package identity

// Accepting an invitation without the CLI, or without an account: a
// signup that carries an invitation code (POST /aaa/v1/users with
// "invitation"), and the invitation's page, GET and POST
// /aaa/v1/invitations/{code}, where the invitee logs in or creates the
// account the invitation is for, and joins.
//
// An invitation is its own permission to sign up, so it works even when
// open signup is closed; the account it creates has the invited email,
// which is all the invitation allows. The page sets no cookie and holds no
// session: each form post carries the password, and the code is in the
// page's URL, so a post from another site can act for no one (there is no
// ambient credential to ride on). Posts whose browser says they come from
// another site (Sec-Fetch-Site, Origin) are refused all the same.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// signupInvited serves a signup with an invitation code: the account and
// its membership are created in one step, whether signup is open or not.
func (s *Service) signupInvited(r *http.Request, req SignupRequest) (int, any, error) {
	if req.Organization != "" {
		return 0, nil, httpjson.Errorf(http.StatusBadRequest,
			`an invitation joins its own organization: leave out "organization"`)
	}
	email := strings.TrimSpace(req.Email)
	if err := checkEmail(email); err != nil {
		return 0, nil, err
	}
	if err := checkNewPassword(req.Password); err != nil {
		return 0, nil, err
	}
	if err := s.byAddress.take(r.Context(), s.clientAddr(r)); err != nil {
		return 0, nil, err
	}
	u, o, role, err := s.createInvited(r, strings.TrimSpace(req.Invitation), email, req.Password)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, SignupResponse{User: UserJSON{ID: u.ID, Email: u.Email},
		Organization: &OrgJSON{ID: o.ID, Slug: o.Slug, Role: string(role)}}, nil
}

// createInvited creates the invited account and its membership.
func (s *Service) createInvited(r *http.Request, code, email, password string) (store.User, store.Organization, store.Role, error) {
	ctx := r.Context()
	inv, err := authority.FindInvitation(ctx, s.cfg.Store, code)
	if err != nil {
		return store.User{}, store.Organization{}, "", err
	}
	hash, err := HashPassword(password, s.cfg.Argon2)
	if err != nil {
		return store.User{}, store.Organization{}, "", err
	}
	u, inv, err := s.cfg.Store.SignupWithInvitation(ctx, inv.CodeHash,
		store.NewUser{Email: email, PasswordHash: hash, CreatedAt: s.cfg.Now()})
	if err != nil {
		return u, store.Organization{}, "", authority.InvitationRefusal(err, inv, true)
	}
	o, err := s.cfg.Store.GetOrganization(ctx, inv.OrgID)
	if err != nil {
		return u, o, "", fmt.Errorf("signup: organization: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "signup with invitation", "user", u, "invitation", inv)
	return u, o, inv.Role, nil
}

// invitationPage serves GET and POST /aaa/v1/invitations/{code}.
func (s *Service) invitationPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fail := func(err error) {
		var he *httpjson.Error
		if errors.As(err, &he) {
			s.page(w, he.Status, page{Title: "Invitation not valid", Kind: "error", Message: he.Msg})
			return
		}
		s.internal(r, err)
		s.page(w, http.StatusInternalServerError, page{Title: "Invitation", Kind: "error",
			Message: "Something went wrong on the server. Please try again later."})
	}
	inv, err := authority.FindInvitation(ctx, s.cfg.Store, r.PathValue("code"))
	if err == nil {
		if err = inv.Acceptable(s.cfg.Now()); err != nil {
			err = authority.InvitationRefusal(err, inv, false)
		}
	}
	if err != nil {
		fail(err)
		return
	}
	o, err := s.cfg.Store.GetOrganization(ctx, inv.OrgID)
	if err != nil {
		fail(fmt.Errorf("invitation page: organization: %w", err))
		return
	}
	p := page{
		Title:   "Join " + o.Slug,
		Message: fmt.Sprintf("You are invited to join the organization %s as %s.", o.Slug, withArticle(inv.Role)),
		Detail: fmt.Sprintf("The invitation is for %s and expires at %s. Log in with that account, "+
			"or create it with a password of at least %d characters.",
			inv.Email, inv.ExpiresAt.UTC().Format("15:04 MST on 2 Jan 2006"), MinPasswordLen),
		Form:    true,
		Email:   inv.Email,
		Buttons: []pageButton{{"login", "Log in and join"}, {"signup", "Create the account and join"}},
	}
	if r.Method == http.MethodGet {
		s.page(w, http.StatusOK, p)
		return
	}
	if !s.sameOrigin(r) {
		s.page(w, http.StatusForbidden, page{Title: "Invitation", Kind: "error",
			Message: "This form can only be sent from its own page. Open the invitation's link and try again."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		p.Kind, p.Message = "error", "The form could not be read. Please try again."
		s.page(w, http.StatusBadRequest, p)
		return
	}
	var (
		u    store.User
		role = inv.Role
	)
	switch r.PostForm.Get("action") {
	case "login":
		var ok bool
		if u, ok = s.pageLogin(w, r, &p); !ok {
			return
		}
		inv, err = s.cfg.Store.AcceptInvitation(ctx, inv.CodeHash, u.ID, s.cfg.Now())
		if err != nil {
			err = authority.InvitationRefusal(err, inv, false)
		}
	case "signup":
		email, password := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password")
		p.Email = email
		err = checkEmail(email)
		if err == nil {
			err = checkNewPassword(password)
		}
		if err == nil {
			ok, retry, lerr := s.byAddress.allow(r.Context(), s.clientAddr(r))
			if lerr != nil {
				s.internal(r, lerr)
				s.page(w, http.StatusInternalServerError, page{Title: "Error", Kind: "error",
					Message: "Something went wrong on the server. Please try again later."})
				return
			}
			if !ok {
				w.Header().Set("Retry-After", (&limitedError{retry: retry}).retryAfter())
				p.Kind, p.Message = "error", "Too many attempts. Try again in "+(&limitedError{retry: retry}).retryAfter()+" seconds."
				s.page(w, http.StatusTooManyRequests, p)
				return
			}
			u, _, role, err = s.createInvited(r, r.PathValue("code"), email, password)
		}
	default:
		err = httpjson.Errorf(http.StatusBadRequest, "Choose to log in or to create the account.")
	}
	var he *httpjson.Error
	switch {
	case errors.As(err, &he):
		p.Kind, p.Message = "error", he.Msg
		s.page(w, he.Status, p)
		return
	case err != nil:
		fail(err)
		return
	}
	api := strings.TrimSuffix(s.loc, prefix)
	s.page(w, http.StatusOK, page{Title: "Welcome to " + o.Slug, Kind: "ok",
		Message: fmt.Sprintf("%s is now %s of %s.", u.Email, withArticle(role), o.Slug),
		Detail:  fmt.Sprintf("Log in from the command line with: caveat auth login --email %s --api %s", u.Email, api)})
}

// sameOrigin reports whether a form post may come from this service's own
// page: browsers say where a post comes from in Sec-Fetch-Site or Origin;
// a client that sends neither is no browser riding on another site.
func (s *Service) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		// Only a browser sets it, and it decides: under the page's
		// Referrer-Policy (no-referrer) a browser sends the Origin of its
		// own form as "null".
		return true
	case "", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	own, err := url.Parse(s.loc)
	if err != nil {
		return false
	}
	return strings.EqualFold(origin, own.Scheme+"://"+own.Host)
}

// withArticle is "a member" or "an admin".
func withArticle(r store.Role) string {
	if r == store.RoleAdmin {
		return "an admin"
	}
	return "a " + string(r)
}
