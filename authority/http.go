package authority

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
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

// TokenJSON is a registry record as the API shows it.
type TokenJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Profile   string `json:"profile"`
	OrgID     uint64 `json:"org_id"`
	AppID     uint64 `json:"app_id,omitempty"`
	CreatedBy uint64 `json:"created_by"`
	// CreatedByEmail is the creator's email, in lists.
	CreatedByEmail string     `json:"created_by_email,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
	// RevokedBranches counts the token's revoked branches.
	RevokedBranches int `json:"revoked_branches"`
	// Token is the header value, only in the answer to its creation.
	Token string `json:"token,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func tokenJSON(t store.Token) TokenJSON {
	return TokenJSON{ID: t.ID, Name: t.Name, Profile: t.Profile, OrgID: t.OrgID, AppID: t.AppID,
		CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: optTime(t.ExpiresAt),
		RevokedAt: optTime(t.RevokedAt), LastUsedAt: optTime(t.LastUsedAt), RevokedBranches: t.RevokedBranches}
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Profile  string         `json:"profile"`
	Name     string         `json:"name"`
	Org      string         `json:"org"`
	App      string         `json:"app"`
	Expiry   string         `json:"expiry"`
	Commands flyio.Commands `json:"commands"`
}

func (s *Service) createToken(ctx context.Context, p *Principal, r *http.Request, w http.ResponseWriter) (int, any, error) {
	var req CreateTokenRequest
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
	out.Token = "FlyV1 " + m.Token.String()
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
	out := make([]TokenJSON, len(ts))
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

// BranchRevocationJSON is the answer to a branch revocation.
type BranchRevocationJSON struct {
	ID      string `json:"id"`
	Branch  string `json:"branch"`
	Revoked bool   `json:"revoked"`
}

func (s *Service) revokeSelf(ctx context.Context, p *Principal, _ *http.Request, _ http.ResponseWriter) (int, any, error) {
	r, err := s.RevokeSelf(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, BranchRevocationJSON{ID: r.TokenID, Branch: r.Branch.String(), Revoked: r.Revoked}, nil
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
	return http.StatusOK, BranchRevocationJSON{ID: rev.TokenID, Branch: rev.Branch.String(), Revoked: rev.Revoked}, nil
}

// PrincipalJSON is the answer of authenticate and authorize.
type PrincipalJSON struct {
	TokenID string          `json:"token_id"`
	Kind    string          `json:"kind"` // "session" or "token"
	UserID  uint64          `json:"user_id"`
	OrgID   uint64          `json:"org_id,omitempty"`
	Caveats json.RawMessage `json:"caveats"`
	// CaveatsMsgpack is the verified caveat set in its wire form (standard
	// base64), for verifiers that clear accesses themselves: JSON is not a
	// lossless form of caveats.
	CaveatsMsgpack string `json:"caveats_msgpack"`
	// ExpiresAt is the effective expiry: the earliest end of a
	// ValidityWindow over the token and its discharges.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Memberships are a session's organizations and roles; for a named
	// token, its creator's role in the token's organization (none when
	// the creator is no longer a member), which decides whether it may do
	// what only admins may (CheckAccess).
	Memberships []OrgJSON `json:"memberships,omitempty"`
	// PermissionToken is the verified permission token's bytes in
	// standard padded base64 (the fm2_ text without its prefix), which
	// Fly's machinesapi client matches against its own bundle.
	PermissionToken string `json:"permission_token"`
}

func (s *Service) principalJSON(ctx context.Context, p *Principal) (PrincipalJSON, error) {
	cs, err := p.Caveats.MarshalJSON()
	if err != nil {
		return PrincipalJSON{}, err
	}
	out := PrincipalJSON{TokenID: p.TokenID(), Kind: "token", UserID: p.UserID, OrgID: p.OrgID, Caveats: cs,
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
		out.Memberships = make([]OrgJSON, len(orgs))
		for i, o := range orgs {
			out.Memberships[i] = OrgJSON{ID: o.ID, Slug: o.Slug, Role: string(o.Role)}
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
	out.Memberships = []OrgJSON{{ID: o.ID, Slug: o.Slug, Role: string(m.Role)}}
	return out, nil
}

// revocations serves the revocation feed, for verifiers that cache
// verified tokens: every revoked named token, and every revoked branch of
// one, in order, after a cursor. A verifier evicts what it cached for the
// token id either way. It says which token ids (and branch ids, hashes of
// tails) were revoked and nothing else, but those ids are the registry's,
// of every organization: the caller must present a valid token, of any
// kind and organization (a verifier holds one for the purpose, see
// middleware.RemoteConfig.FeedToken), so that the feed is not open to the
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
	type rev struct {
		Cursor  uint64 `json:"cursor"`
		TokenID string `json:"token_id"`
		// Branch is set for the revocation of one branch of the token.
		Branch string `json:"branch,omitempty"`
	}
	out := make([]rev, len(revs))
	cursor := after
	for i, v := range revs {
		out[i] = rev{Cursor: v.Cursor, TokenID: v.TokenID}
		if !v.Branch.IsZero() {
			out[i].Branch = v.Branch.String()
		}
		cursor = v.Cursor
	}
	return http.StatusOK, map[string]any{"revocations": out, "cursor": cursor}, nil
}

// OrgJSON is an organization as the API shows it.
type OrgJSON struct {
	ID   uint64 `json:"id"`
	Slug string `json:"slug"`
	Role string `json:"role,omitempty"`
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
	out := []OrgJSON{}
	for _, o := range os { // by id
		if o.ID > after {
			out = append(out, OrgJSON{ID: o.ID, Slug: o.Slug, Role: string(o.Role)})
		}
	}
	out, next := store.PageOf(out, store.Page{Limit: page.Limit}, func(o OrgJSON) string { return store.IDCursor(cursorOrgs, o.ID) })
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
	return http.StatusCreated, OrgJSON{ID: o.ID, Slug: o.Slug, Role: string(store.RoleAdmin)}, nil
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

// KeyJSON is a root key as the API shows it: never its material.
type KeyJSON struct {
	KID       string     `json:"kid"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	RotatedAt *time.Time `json:"rotated_at,omitempty"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

func (s *Service) listKeys(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	o, err := s.Organization(ctx, p, r.PathValue("slug"))
	if err != nil {
		return 0, nil, err
	}
	page, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	ks, next, err := s.Keys(ctx, p, o.ID, page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]KeyJSON, len(ks))
	for i, k := range ks {
		out[i] = KeyJSON{KID: hex.EncodeToString(k.KID), State: string(k.State), CreatedAt: k.CreatedAt.UTC(),
			RotatedAt: optTime(k.RotatedAt), RetiredAt: optTime(k.RetiredAt)}
	}
	return http.StatusOK, paged("keys", out, next), nil
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

// AppJSON is an app as the API shows it.
type AppJSON struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	OrgID     uint64    `json:"org_id"`
	CreatedAt time.Time `json:"created_at"`
}

func appJSON(a store.App) AppJSON {
	return AppJSON{ID: a.ID, Name: a.Name, OrgID: a.OrgID, CreatedAt: a.CreatedAt.UTC()}
}

func (s *Service) listApps(ctx context.Context, p *Principal, r *http.Request, _ http.ResponseWriter) (int, any, error) {
	slug := r.URL.Query().Get("org_slug")
	if slug == "" {
		return 0, nil, badRequest(`the "org_slug" query parameter is required`)
	}
	o, err := s.Organization(ctx, p, slug)
	if err != nil {
		return 0, nil, err
	}
	page, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	apps, next, err := s.ListApps(ctx, p, o.ID, page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]AppJSON, len(apps))
	for i, a := range apps {
		out[i] = appJSON(a)
	}
	return http.StatusOK, paged("apps", out, next), nil
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
