package authority

import (
	"context"
	"net/http"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// The HTTP API of members and invitations, under /v1. Members and
// invitations are named in request bodies, never in paths, so that emails
// stay out of access logs.
//
//	GET  /v1/orgs/{slug}/members                                    → {"members": [...]}
//	POST /v1/orgs/{slug}/members/role    {"member","role"}          → member
//	POST /v1/orgs/{slug}/members/remove  {"member","keep_tokens"}   → {"user_id","email","tokens","kept"}
//	POST /v1/orgs/{slug}/leave                                      → {"user_id","email","tokens","kept"}
//	GET  /v1/orgs/{slug}/invitations                                → {"invitations": [...]}
//	POST /v1/orgs/{slug}/invitations     {"email","role","expiry"}  → 201 invitation with "code", "url"
//	POST /v1/orgs/{slug}/invitations/cancel {"invitation"}          → invitation
//	POST /v1/invitations/accept          {"code"}                   → {"organization": {"id","slug","role"}}
//
// "member" and "invitation" are a user id or invitation id, or an email.

func (s *Service) registerMembers(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/orgs/{slug}/members", s.handle(s.listMembers))
	mux.HandleFunc("POST /v1/orgs/{slug}/members/role", s.handle(s.setRole))
	mux.HandleFunc("POST /v1/orgs/{slug}/members/remove", s.handle(s.removeMember))
	mux.HandleFunc("POST /v1/orgs/{slug}/leave", s.handle(s.leave))
	mux.HandleFunc("GET /v1/orgs/{slug}/invitations", s.handle(s.listInvitations))
	mux.HandleFunc("POST /v1/orgs/{slug}/invitations", s.handle(s.invite))
	mux.HandleFunc("POST /v1/orgs/{slug}/invitations/cancel", s.handle(s.cancelInvitation))
	mux.HandleFunc("POST /v1/invitations/accept", s.handle(s.acceptInvitation))
}

func (s *Service) invitationJSON(i store.Invitation) api.Invitation {
	return api.Invitation{ID: i.ID, OrgID: i.OrgID, Email: i.Email, Role: string(i.Role), InvitedBy: i.InvitedBy,
		CreatedAt: i.CreatedAt.UTC(), ExpiresAt: i.ExpiresAt.UTC(), Expired: !s.cfg.Now().Before(i.ExpiresAt)}
}

func removedJSON(r *Removed) api.Removal {
	out := api.Removal{UserID: r.User.ID, Email: r.User.Email, Tokens: make([]api.Token, len(r.Tokens)), Kept: r.Kept}
	for i, t := range r.Tokens {
		out.Tokens[i] = tokenJSON(t)
	}
	return out
}

func (s *Service) listMembers(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	return orgPage(ctx, s, p, r, r.PathValue("slug"), "members", s.Members, func(m store.Member) api.Member {
		return api.Member{UserID: m.UserID, Email: m.Email, Role: string(m.Role), JoinedAt: m.CreatedAt.UTC(),
			LastLoginAt: optTime(m.LastLoginAt)}
	})
}

func (s *Service) setRole(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Member string `json:"member"`
		Role   string `json:"role"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if req.Member == "" {
		return 0, nil, badRequest(`"member" is required: the member's email or user id`)
	}
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	u, err := s.SetRole(ctx, p, o.ID, req.Member, store.Role(req.Role))
	if err != nil {
		return 0, nil, err
	}
	m, err := s.cfg.Store.GetMembership(ctx, o.ID, u.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, api.Member{UserID: u.ID, Email: u.Email, Role: string(m.Role), JoinedAt: m.CreatedAt.UTC()}, nil
}

func (s *Service) removeMember(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Member     string `json:"member"`
		KeepTokens bool   `json:"keep_tokens"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if req.Member == "" {
		return 0, nil, badRequest(`"member" is required: the member's email or user id`)
	}
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	rm, err := s.RemoveMember(ctx, p, o.ID, req.Member, req.KeepTokens)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, removedJSON(rm), nil
}

func (s *Service) leave(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	rm, err := s.Leave(ctx, p, o.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, removedJSON(rm), nil
}

func (s *Service) listInvitations(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	return orgPage(ctx, s, p, r, r.PathValue("slug"), "invitations", s.Invitations, s.invitationJSON)
}

func (s *Service) invite(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req api.InviteRequest
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	ir := InviteRequest{Email: req.Email, Role: store.Role(req.Role)}
	if req.Expiry != "" {
		d, err := time.ParseDuration(req.Expiry)
		if err != nil || d <= 0 {
			return 0, nil, badRequest(`"expiry" must be a positive duration such as "168h", not %q`, req.Expiry)
		}
		ir.Expiry = d
	}
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	inv, err := s.Invite(ctx, p, o.ID, ir)
	if err != nil {
		return 0, nil, err
	}
	out := s.invitationJSON(inv.Invitation)
	out.Code, out.URL = inv.Code, inv.URL
	return http.StatusCreated, out, nil
}

func (s *Service) cancelInvitation(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Invitation string `json:"invitation"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if req.Invitation == "" {
		return 0, nil, badRequest(`"invitation" is required: the invitation's id or email`)
	}
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	inv, err := s.CancelInvitation(ctx, p, o.ID, req.Invitation)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.invitationJSON(inv), nil
}

func (s *Service) acceptInvitation(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Code string `json:"code"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	inv, o, err := s.AcceptInvitation(ctx, p, req.Code)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"organization": api.Organization{ID: o.ID, Slug: o.Slug, Role: string(inv.Role)}}, nil
}
