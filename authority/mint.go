package authority

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// The mint profiles of named tokens. Every token carries an Organization
// caveat and, unless the request asks for none, a ValidityWindow.
//
//	org           Organization{org, rwcdC}: everything in the organization
//	deploy        Organization{org, rwcdC}, Apps{app: rwcdC}: one app
//	readonly      Organization{org, r}: read everything
//	machine-exec  Organization{org, rwcdC}, Apps{app: rwcdC}, Commands{…}:
//	              only running the given commands on the app's machines
//
// Session tokens are minted at login (Keyring.MintSession), not here.
const (
	ProfileOrg         = "org"
	ProfileDeploy      = "deploy"
	ProfileReadonly    = "readonly"
	ProfileMachineExec = "machine-exec"
)

// Profiles lists the profiles of named tokens.
var Profiles = []string{ProfileOrg, ProfileDeploy, ProfileReadonly, ProfileMachineExec}

// DefaultExpiry is the lifetime of a named token created without one.
const DefaultExpiry = 365 * 24 * time.Hour

// MintRequest asks for a named token.
type MintRequest struct {
	Profile string
	Name    string
	OrgID   uint64
	// AppID is required by deploy and machine-exec, refused by the others.
	AppID uint64
	// Expiry is the token's lifetime; 0 means DefaultExpiry.
	Expiry time.Duration
	// Commands are machine-exec's allowed commands; none allows any.
	Commands flyio.Commands
}

// Minted is a new named token and its registry record.
type Minted struct {
	Record store.Token
	Token  *caveat.Macaroon
}

func badRequest(format string, args ...any) error {
	return httpjson.Errorf(http.StatusBadRequest, format, args...)
}

func forbidden(format string, args ...any) error {
	return httpjson.Errorf(http.StatusForbidden, format, args...)
}

// Mint mints and registers a named token for a principal.
//
// Who may mint: a logged-in user (a session) who is a member of the
// organization; the org profile needs an admin. A named token cannot mint
// tokens, not even narrower ones: tokens that mint tokens would make the
// registry's "created by" meaningless and revocation of a tree of tokens
// unenforceable. Attenuation, which needs no server, is the way to narrow a
// token.
func (s *Service) Mint(ctx context.Context, p *Principal, req MintRequest) (*Minted, error) {
	if !p.IsSession() {
		return nil, forbidden("only a logged-in user can create tokens; attenuate this token offline to narrow it")
	}
	if !slices.Contains(Profiles, req.Profile) {
		return nil, badRequest("unknown profile %q (want one of %s)", req.Profile, strings.Join(Profiles, ", "))
	}
	needsApp := req.Profile == ProfileDeploy || req.Profile == ProfileMachineExec
	switch {
	case needsApp && req.AppID == 0:
		return nil, badRequest("profile %s needs an app", req.Profile)
	case !needsApp && req.AppID != 0:
		return nil, badRequest("profile %s is for a whole organization, not an app", req.Profile)
	case req.Commands != nil && req.Profile != ProfileMachineExec:
		return nil, badRequest("commands are only for the machine-exec profile")
	case req.Expiry < 0:
		return nil, badRequest("expiry must be positive")
	}
	if req.Expiry == 0 {
		req.Expiry = DefaultExpiry
	}
	if req.Name == "" {
		req.Name = req.Profile
	}
	// The user must be allowed to create in the organization (or the app)
	// themselves; the org profile needs an admin, as an admin-only
	// feature does.
	access := &flyio.Access{OrgID: &req.OrgID, Action: resset.ActionCreate}
	if req.AppID != 0 {
		access.AppID = &req.AppID
	}
	if err := s.Allow(ctx, p, access); err != nil {
		return nil, err
	}
	if req.Profile == ProfileOrg {
		m, err := s.cfg.Store.GetMembership(ctx, req.OrgID, p.UserID)
		if err != nil {
			return nil, fmt.Errorf("membership: %w", err)
		}
		if m.Role != store.RoleAdmin {
			return nil, forbidden("only an admin of organization %d can create org tokens", req.OrgID)
		}
	}
	if req.AppID != 0 {
		if _, err := s.app(ctx, req.OrgID, req.AppID); err != nil {
			return nil, err
		}
	}

	now := s.cfg.Now()
	caveats := []caveat.Caveat{}
	switch req.Profile {
	case ProfileOrg:
		caveats = append(caveats, &flyio.Organization{ID: req.OrgID, Mask: resset.ActionAll})
	case ProfileReadonly:
		caveats = append(caveats, &flyio.Organization{ID: req.OrgID, Mask: resset.ActionRead})
	case ProfileDeploy, ProfileMachineExec:
		caveats = append(caveats, &flyio.Organization{ID: req.OrgID, Mask: resset.ActionAll},
			&flyio.Apps{Apps: resset.ResourceSet[uint64]{req.AppID: resset.ActionAll}})
	}
	if req.Profile == ProfileMachineExec {
		cmds := req.Commands
		if len(cmds) == 0 {
			cmds = flyio.Commands{{Args: []string{}}} // any command
		}
		caveats = append(caveats, &cmds)
	}
	vw := caveat.NewValidityWindow(now, req.Expiry)
	caveats = append(caveats, vw)

	// An organization created at signup gets its first key on first use.
	if err := s.EnsureRootKey(ctx, req.OrgID); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	kid, key, err := s.cfg.Keyring.MintingKey(ctx, req.OrgID)
	if err != nil {
		return nil, err
	}
	nonce := caveat.NewNonce(kid, false)
	m, err := caveat.Mint(key, nonce, s.cfg.Location, caveats...)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	rec := store.Token{
		ID:        nonce.UUID().String(),
		Name:      req.Name,
		Profile:   req.Profile,
		OrgID:     req.OrgID,
		AppID:     req.AppID,
		CreatedBy: p.UserID,
		CreatedAt: now,
		ExpiresAt: vw.NotAfterTime(),
	}
	if err := s.cfg.Store.CreateToken(ctx, rec); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return nil, badRequest("%v", err)
		}
		return nil, fmt.Errorf("register token: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "token created", "token", rec.ID, "profile", rec.Profile,
		"org", rec.OrgID, "app", rec.AppID, "user", p.UserID)
	return &Minted{Record: rec, Token: m}, nil
}

// Revoke revokes a named token by id. A principal may revoke the token it
// presents; otherwise it must be a logged-in admin of the token's
// organization, or the user who created it. It reports whether this call
// revoked it (false when it was already revoked).
func (s *Service) Revoke(ctx context.Context, p *Principal, id string) (bool, error) {
	t, err := s.cfg.Store.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, httpjson.Errorf(http.StatusNotFound, "no token %q", id)
	}
	if err != nil {
		return false, fmt.Errorf("token: %w", err)
	}
	if p.TokenID() != id {
		if !p.IsSession() {
			return false, forbidden("a token can revoke only itself")
		}
		if t.CreatedBy != p.UserID {
			m, err := s.cfg.Store.GetMembership(ctx, t.OrgID, p.UserID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && m.Role != store.RoleAdmin) {
				return false, forbidden("only an admin of the token's organization, or its creator, can revoke token %s", id)
			}
			if err != nil {
				return false, fmt.Errorf("membership: %w", err)
			}
		}
	}
	revoked, err := s.cfg.Store.RevokeToken(ctx, id, s.cfg.Now())
	if err != nil {
		return false, fmt.Errorf("revoke: %w", err)
	}
	if s.cache != nil {
		s.cache.EvictToken(id)
	}
	if revoked {
		s.cfg.Logger.InfoContext(ctx, "token revoked", "token", id, "org", t.OrgID, "by", p.UserID)
	}
	return revoked, nil
}

// List returns the tokens of an organization, or of one of its apps when
// appID is not 0, for a logged-in member of the organization.
func (s *Service) List(ctx context.Context, p *Principal, orgID, appID uint64) ([]store.Token, error) {
	access := &flyio.Access{OrgID: &orgID, Action: resset.ActionRead}
	if appID != 0 {
		access.AppID = &appID
	}
	if err := s.Allow(ctx, p, access); err != nil {
		return nil, err
	}
	if appID != 0 {
		if _, err := s.app(ctx, orgID, appID); err != nil {
			return nil, err
		}
	}
	var (
		ts  []store.Token
		err error
	)
	if appID != 0 {
		ts, err = s.cfg.Store.ListTokensByApp(ctx, appID)
	} else {
		ts, err = s.cfg.Store.ListTokensByOrganization(ctx, orgID)
	}
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}
