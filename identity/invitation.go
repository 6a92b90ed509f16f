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
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/store"
)

// signupInvited serves a signup with an invitation code: the account and
// its membership are created in one step, whether signup is open or not.
func (s *Service) signupInvited(r *http.Request, req api.SignupRequest) (api.SignupResult, error) {
	if req.Organization != "" {
		return api.SignupResult{}, fault.Errorf(fault.Invalid,
			`an invitation joins its own organization: leave out "organization"`)
	}
	email := strings.TrimSpace(req.Email)
	if err := checkEmail(email); err != nil {
		return api.SignupResult{}, err
	}
	if err := checkNewPassword(req.Password); err != nil {
		return api.SignupResult{}, err
	}
	if err := s.byAddress.take(r.Context(), s.clientAddr(r)); err != nil {
		return api.SignupResult{}, err
	}
	u, o, role, err := s.createInvited(r, strings.TrimSpace(req.Invitation), email, req.Password)
	if err != nil {
		return api.SignupResult{}, err
	}
	return api.SignupResult{User: api.User{ID: u.ID, Email: u.Email},
		Organization: &api.Organization{ID: o.ID, Slug: o.Slug, Role: string(role)}}, nil
}

// createInvited creates the invited account and its membership.
func (s *Service) createInvited(r *http.Request, code, email, password string) (store.User, store.Organization, store.Role, error) {
	ctx := r.Context()
	inv, err := invitation.Find(ctx, s.cfg.Store, code)
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
		return u, store.Organization{}, "", invitation.Refusal(err, inv, true)
	}
	o, err := s.cfg.Store.GetOrganization(ctx, inv.OrgID)
	if err != nil {
		return u, o, "", fmt.Errorf("signup: organization: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "signup with invitation", "user", u, "invitation", inv)
	return u, o, inv.Role, nil
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
