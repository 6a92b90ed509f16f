package identity

// The account endpoints: they decode requests and answer with the
// statuses of the API (see account.go for what they do).

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/internal/httpjson"
)

// signup serves POST /aaa/v1/users.
func (s *Service) signup(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var req api.SignupRequest
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	resp, err := s.createAccount(r, req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, resp, nil
}

// login serves POST /aaa/v1/sessions.
func (s *Service) login(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var req api.LoginRequest
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(req.Email) == "" || req.Password == "" {
		return 0, nil, fault.Errorf(fault.Invalid, `"email" and "password" are required`)
	}
	u, err := s.authenticate(r.Context(), r, req.Email, req.Password)
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.newSession(r.Context(), u)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, resp, nil
}

// whoami serves GET /aaa/v1/whoami.
func (s *Service) whoami(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	ctx := r.Context()
	sess, err := s.session(ctx, r.Header.Get("Authorization"), s.cfg.Now())
	if err != nil {
		return 0, nil, err
	}
	u, err := s.cfg.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		return 0, nil, fmt.Errorf("whoami: %w", err)
	}
	orgs, err := s.cfg.Store.ListUserOrganizations(ctx, u.ID)
	if err != nil {
		return 0, nil, fmt.Errorf("whoami: %w", err)
	}
	resp := api.WhoAmI{
		User:          api.User{ID: u.ID, Email: u.Email},
		Organizations: make([]api.Organization, len(orgs)),
		Session:       api.SessionInfo{ID: sess.ID, ExpiresAt: sess.ExpiresAt.UTC()},
	}
	for i, o := range orgs {
		resp.Organizations[i] = api.Organization{ID: o.ID, Slug: o.Slug, Role: string(o.Role)}
	}
	return http.StatusOK, resp, nil
}

// logout serves DELETE /aaa/v1/sessions/current.
func (s *Service) logout(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := s.endSession(r.Context(), r.Header.Get("Authorization")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
