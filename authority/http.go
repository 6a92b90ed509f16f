package authority

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/lifetime"
	"github.com/caveatdev/caveat/store"
)

// The authority's HTTP API, under /v1. Every request but authenticate and
// authorize is made with a bundle in the Authorization header (FlyV1,
// Bearer or no scheme). Errors are {"error": "…"} with a 4xx status.
//
//	POST   /v1/tokens               {"profile","name","org","app","expiry","commands"} → 201 token with "token"
//	GET    /v1/tokens?org=SLUG[&app=NAME][&expired=true]                             → {"tokens": [...], "next"}
//	DELETE /v1/tokens/{id}          revoke a token whole (admin or creator)          → {"id","revoked"}
//	POST   /v1/tokens/revoke        revoke the branch the presented token is        → {"id","branch","revoked"}
//	POST   /v1/tokens/revoke-branch {"token"}  revoke that token's branch (admin or creator) → {"id","branch","revoked"}
//	POST   /v1/tokens/authenticate  {"header"}           → [{"caveats","permission_token","token_id","kind",…}] (judging.go)
//	POST   /v1/tokens/authorize     {"header","access"}  → {"access","verified_token","allowed": true} or 403 {"error","allowed": false}
//	GET    /v1/tokens/revocations?after=CURSOR  any valid token → {"revocations": [{"cursor","token_id","branch"}], "cursor"}
//	GET    /v1/orgs                                      → {"organizations": [{"id","slug","role"}], "next"}
//	POST   /v1/orgs                 {"slug"}             → 201 {"id","slug"}
//	POST   /v1/orgs/{slug}/rotate-key                    → {"kid"}
//	GET    /v1/orgs/{slug}/keys                          → {"keys": [{"kid","state","created_at",…}], "next"}
//	POST   /v1/orgs/{slug}/retire-key {"kid"}            → {"kid","state": "retired"}
//	GET    /v1/apps?org_slug=SLUG                        → {"apps": [...], "next"}
//	GET    /v1/operations                                → {"operations": [...]} (Operations, public)
//	POST   /v1/apps                 {"app_name","org_slug"} → 201 app
//
// Expiry is a lifetime ("8760h", "30d"; see internal/lifetime); access is
// a flyio.Access in JSON, or an access by name (judging.go).
// Members and invitations: see httpmembers.go. Every list takes limit and
// after and answers one page, with "next" when another follows (see
// paging.go); the token list leaves out expired tokens unless
// expired=true.

// Register adds the authority's routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/tokens", s.handle(s.createToken))
	mux.HandleFunc("GET /v1/tokens", s.handle(s.listTokens))
	mux.HandleFunc("DELETE /v1/tokens/{id}", s.handle(s.revokeToken))
	mux.HandleFunc("POST /v1/tokens/revoke", s.handle(s.revokeSelf))
	mux.HandleFunc("POST /v1/tokens/revoke-branch", s.handle(s.revokeBranch))
	mux.HandleFunc("POST /v1/tokens/authenticate", s.handleOpen(s.authenticate))
	mux.HandleFunc("POST /v1/tokens/authorize", s.handleOpen(s.authorize))
	mux.HandleFunc("GET /v1/tokens/revocations", s.handle(s.revocations))
	mux.HandleFunc("GET /v1/orgs", s.handle(s.listOrgs))
	mux.HandleFunc("POST /v1/orgs", s.handle(s.createOrg))
	mux.HandleFunc("POST /v1/orgs/{slug}/rotate-key", s.handle(s.rotateKey))
	mux.HandleFunc("GET /v1/orgs/{slug}/keys", s.handle(s.listKeys))
	mux.HandleFunc("POST /v1/orgs/{slug}/retire-key", s.handle(s.retireKey))
	mux.HandleFunc("GET /v1/operations", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]any{"operations": Operations})
	})
	mux.HandleFunc("GET /v1/apps", s.handle(s.listApps))
	mux.HandleFunc("POST /v1/apps", s.handle(s.createApp))
	s.registerMembers(mux)
}

// handle authenticates the request's bundle and runs h; h returns the
// status and the body to answer with, or an error. The request reads each
// membership once (see memberships.go).
func (s *Service) handle(h func(context.Context, *Principal, *http.Request, http.ResponseWriter) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withMemberships(r.Context()))
		p, err := s.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			httpjson.WriteError(w, r, s.cfg.Logger, err)
			return
		}
		status, body, err := h(r.Context(), p, r, w)
		if err != nil {
			httpjson.WriteError(w, r, s.cfg.Logger, err)
			return
		}
		httpjson.Write(w, status, body)
	}
}

// handleOpen runs h without authenticating the request itself.
func (s *Service) handleOpen(h func(context.Context, *http.Request, http.ResponseWriter) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withMemberships(r.Context()))
		status, body, err := h(r.Context(), r, w)
		if err != nil {
			httpjson.WriteError(w, r, s.cfg.Logger, err)
			return
		}
		httpjson.Write(w, status, body)
	}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func tokenJSON(t store.Token) api.Token {
	return api.Token{ID: t.ID, Name: t.Name, Profile: t.Profile, OrgID: t.OrgID, AppID: t.AppID,
		CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: optTime(t.ExpiresAt),
		RevokedAt: optTime(t.RevokedAt), LastUsedAt: optTime(t.LastUsedAt), RevokedBranches: t.RevokedBranches}
}

func (s *Service) createToken(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req api.CreateTokenRequest
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if req.Org == "" {
		return 0, nil, badRequest(`"org" is required: the organization's slug`)
	}
	o, err := s.Organization(ctx, p, req.Org)
	if err != nil {
		return 0, nil, err
	}
	mr := MintRequest{Profile: req.Profile, Name: req.Name, OrgID: o.ID, Commands: req.Commands}
	if req.Expiry != "" {
		d, err := lifetime.Parse(req.Expiry)
		if err != nil {
			return 0, nil, badRequest(`"expiry": %v`, err)
		}
		mr.Expiry = d
	}
	if req.App != "" {
		a, err := s.AppByName(ctx, p, o.ID, req.App)
		if err != nil {
			return 0, nil, err
		}
		mr.AppID = a.ID
	}
	m, err := s.Mint(ctx, p, mr)
	if err != nil {
		return 0, nil, err
	}
	out := tokenJSON(m.Record)
	out.Header = "FlyV1 " + m.Token.String()
	return http.StatusCreated, out, nil
}

func (s *Service) listTokens(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	slug := r.URL.Query().Get("org")
	if slug == "" {
		return 0, nil, badRequest(`the "org" query parameter is required`)
	}
	o, err := s.Organization(ctx, p, slug)
	if err != nil {
		return 0, nil, err
	}
	var appID uint64
	if name := r.URL.Query().Get("app"); name != "" {
		a, err := s.AppByName(ctx, p, o.ID, name)
		if err != nil {
			return 0, nil, err
		}
		appID = a.ID
	}
	page, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	var expired bool
	switch v := r.URL.Query().Get("expired"); v {
	case "", "false":
	case "true":
		expired = true
	default:
		return 0, nil, badRequest(`"expired" must be true or false, not %q`, v)
	}
	ts, next, err := s.List(ctx, p, o.ID, appID, expired, page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]api.Token, len(ts))
	emails := map[uint64]string{} // at most one read per creator of the page
	for i, t := range ts {
		out[i] = tokenJSON(t)
		email, ok := emails[t.CreatedBy]
		if !ok {
			if u, err := s.cfg.Store.GetUser(ctx, t.CreatedBy); err == nil {
				email = u.Email
			} else if !errors.Is(err, store.ErrNotFound) {
				return 0, nil, fmt.Errorf("token creator: %w", err)
			}
			emails[t.CreatedBy] = email
		}
		out[i].CreatedByEmail = email
	}
	return http.StatusOK, paged("tokens", out, next), nil
}

func (s *Service) revokeToken(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	id := strings.ToLower(r.PathValue("id"))
	if !store.ValidTokenID(id) {
		return 0, nil, badRequest("%q is not a token id (a UUID, as 'caveat tokens list' shows)", r.PathValue("id"))
	}
	revoked, err := s.Revoke(ctx, p, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"id": id, "revoked": revoked}, nil
}

func (s *Service) revokeSelf(ctx context.Context, p *Principal, _ *http.Request, _ http.ResponseWriter) (int, any, error) {
	r, err := s.RevokeSelf(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, api.BranchRevocation{ID: r.TokenID, Branch: r.Branch.String(), Revoked: r.Revoked}, nil
}

// RevokeBranchRequest is the body of POST /v1/tokens/revoke-branch.
type RevokeBranchRequest struct {
	// Token is the branch: a token (or a bundle with its discharges) as
	// an Authorization header value or bare.
	Token string `json:"token"`
}

func (s *Service) revokeBranch(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req RevokeBranchRequest
	if err := httpjson.Decode(w, r, &req, caveat.MaxHeaderSize+1024); err != nil {
		return 0, nil, err
	}
	if req.Token == "" {
		return 0, nil, badRequest(`"token" is required: the branch to revoke, a token attenuated from one of your tokens`)
	}
	rev, err := s.RevokeBranch(ctx, p, req.Token)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, api.BranchRevocation{ID: rev.TokenID, Branch: rev.Branch.String(), Revoked: rev.Revoked}, nil
}

func (s *Service) principalJSON(ctx context.Context, p *Principal) (api.VerifiedToken, error) {
	cs, err := p.Caveats.MarshalJSON()
	if err != nil {
		return api.VerifiedToken{}, err
	}
	out := api.VerifiedToken{TokenID: p.TokenID(), Kind: "token", UserID: p.UserID, OrgID: p.OrgID, Caveats: cs,
		CaveatsMsgpack: base64.StdEncoding.EncodeToString(p.Caveats.AppendEncoded(nil))}
	if !p.Expires.IsZero() {
		out.ExpiresAt = optTime(p.Expires)
	}
	if p.IsSession() {
		out.Kind = "session"
		orgs, err := s.cfg.Store.ListUserOrganizations(ctx, p.UserID)
		if err != nil {
			return out, fmt.Errorf("memberships: %w", err)
		}
		out.Memberships = make([]api.Organization, len(orgs))
		for i, o := range orgs {
			out.Memberships[i] = api.Organization{ID: o.ID, Slug: o.Slug, Role: string(o.Role)}
		}
		return out, nil
	}
	m, err := s.cfg.Store.GetMembership(ctx, p.OrgID, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("creator's membership: %w", err)
	}
	o, err := s.cfg.Store.GetOrganization(ctx, p.OrgID)
	if err != nil {
		return out, fmt.Errorf("organization: %w", err)
	}
	out.Memberships = []api.Organization{{ID: o.ID, Slug: o.Slug, Role: string(m.Role)}}
	return out, nil
}

// revocations serves the revocation feed, for verifiers that cache
// verified tokens: every revoked named token, and every revoked branch of
// one, in order, after a cursor. A verifier evicts what it cached for the
// token id either way. It says which token ids (and branch ids, hashes of
// tails) were revoked and nothing else, but those ids are the registry's,
// of every organization: the caller must present a valid token, of any
// kind and organization (a verifier holds one for the purpose, see
// client.RemoteConfig.FeedToken), so that the feed is not open to the
// whole network and every reader is a registered token.
func (s *Service) revocations(ctx context.Context, _ *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	var after uint64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, nil, badRequest(`"after" must be a cursor (a number), not %q`, v)
		}
		after = n
	}
	revs, err := s.cfg.Store.RevocationsSince(ctx, after, 1000)
	if err != nil {
		return 0, nil, fmt.Errorf("revocations: %w", err)
	}
	out := make([]api.Revocation, len(revs))
	cursor := after
	for i, v := range revs {
		out[i] = api.Revocation{Cursor: v.Cursor, TokenID: v.TokenID}
		if !v.Branch.IsZero() {
			out[i].Branch = v.Branch.String()
		}
		cursor = v.Cursor
	}
	return http.StatusOK, api.Revocations{Revocations: out, Cursor: cursor}, nil
}

// listOrgs pages through the caller's organizations in memory: they are
// read whole anyway, for every discharge the caller's login gets.
func (s *Service) listOrgs(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	page, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	after, _, err := store.ParseIDCursor(cursorOrgs, page.After)
	if err != nil {
		return 0, nil, pageErr("list organizations", err)
	}
	os, err := s.Organizations(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	out := []api.Organization{}
	for _, o := range os { // by id
		if o.ID > after {
			out = append(out, api.Organization{ID: o.ID, Slug: o.Slug, Role: string(o.Role)})
		}
	}
	out, next := store.PageOf(out, store.Page{Limit: page.Limit}, func(o api.Organization) string { return store.IDCursor(cursorOrgs, o.ID) })
	return http.StatusOK, paged("organizations", out, next), nil
}

// cursorOrgs is the kind of the cursors of GET /v1/orgs.
const cursorOrgs = "organizations"

func (s *Service) createOrg(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		Slug string `json:"slug"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if !store.ValidSlug(req.Slug) {
		return 0, nil, badRequest(`"slug" must be 1 to 63 lowercase letters, digits and dashes, not %q`, req.Slug)
	}
	o, err := s.CreateOrganization(ctx, p, req.Slug)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, api.Organization{ID: o.ID, Slug: o.Slug, Role: string(store.RoleAdmin)}, nil
}

func (s *Service) rotateKey(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	kid, err := s.RotateKey(ctx, p, o.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"kid": hex.EncodeToString(kid)}, nil
}

func (s *Service) listKeys(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	return orgPage(ctx, s, p, r, r.PathValue("slug"), "keys", s.Keys, func(k store.RootKey) api.Key {
		return api.Key{KID: hex.EncodeToString(k.KID), State: string(k.State), CreatedAt: k.CreatedAt.UTC(),
			RotatedAt: optTime(k.RotatedAt), RetiredAt: optTime(k.RetiredAt)}
	})
}

func (s *Service) retireKey(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		KID string `json:"kid"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	kid, err := hex.DecodeString(req.KID)
	if err != nil || len(kid) == 0 {
		return 0, nil, badRequest(`"kid" must be a key id in hex, as 'caveat orgs keys' shows`)
	}
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	if err := s.RetireKey(ctx, p, o.ID, kid); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"kid": req.KID, "state": string(store.KeyRetired)}, nil
}

func appJSON(a store.App) api.App {
	return api.App{ID: a.ID, Name: a.Name, OrgID: a.OrgID, CreatedAt: a.CreatedAt.UTC()}
}

func (s *Service) listApps(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	slug := r.URL.Query().Get("org_slug")
	if slug == "" {
		return 0, nil, badRequest(`the "org_slug" query parameter is required`)
	}
	return orgPage(ctx, s, p, r, slug, "apps", s.ListApps, appJSON)
}

func (s *Service) createApp(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req struct {
		AppName string `json:"app_name"`
		OrgSlug string `json:"org_slug"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if !store.ValidSlug(req.AppName) {
		return 0, nil, badRequest(`"app_name" must be 1 to 63 lowercase letters, digits and dashes, not %q`, req.AppName)
	}
	o, err := s.Organization(ctx, p, req.OrgSlug)
	if err != nil {
		return 0, nil, err
	}
	a, err := s.CreateApp(ctx, p, o.ID, req.AppName)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, appJSON(a), nil
}
