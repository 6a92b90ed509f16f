package identity

// The invitation page (see invitation.go).

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/store"
)

// invitationPage serves GET and POST /aaa/v1/invitations/{code}.
func (s *Service) invitationPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fail := func(err error) {
		if status, msg, ok := httpjson.StatusOf(err); ok {
			s.page(w, status, page{Title: "Invitation not valid", Kind: "error", Message: msg})
			return
		}
		s.internal(r, err)
		s.page(w, http.StatusInternalServerError, page{Title: "Invitation", Kind: "error",
			Message: "Something went wrong on the server. Please try again later."})
	}
	inv, err := invitation.Find(ctx, s.cfg.Store, r.PathValue("code"))
	if err == nil {
		if err = inv.Acceptable(s.cfg.Now()); err != nil {
			err = invitation.Refusal(err, inv, false)
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
			err = invitation.Refusal(err, inv, false)
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
		err = fault.Errorf(fault.Invalid, "Choose to log in or to create the account.")
	}
	status, msg, refused := httpjson.StatusOf(err)
	switch {
	case refused:
		p.Kind, p.Message = "error", msg
		s.page(w, status, p)
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
