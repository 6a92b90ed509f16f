package authority

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// The mint profiles of named tokens. Every token carries an Organization
// caveat and, unless the request asks for none, a ValidityWindow.
//
//	org           Organization{org, rwcdC}: everything in the organization
//	deploy        Organization{org, rwcdC}, Apps{app: rwcdC}: one app
//	readonly      Organization{org, r}: read everything
//	machine-exec  Organization{org, rwcdC}, Apps{app: rwcdC},
//	              IfPresent{ifs: [Commands{…}], else: r}: running the given
//	              commands on the app's machines, and reading the app
//	              (as flyctl's machine-exec tokens)
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
	return fault.Errorf(fault.Invalid, format, args...)
}

// denied is the refusal of an access by the caveats (what Clear
// returned): a Denied *fault.Error carrying the caveats' refusals, whose
// classes stay visible to errors.Is.
func denied(err error) error { return fault.Deny(err) }

func forbidden(format string, args ...any) error {
	return fault.Errorf(fault.Denied, format, args...)
}

// Mint mints and registers a named token for a principal.
//
// Who may mint: a logged-in user (a session) who is a member of the
// organization, and whose session's caveats allow creating tokens there
// (the operation table); the org profile needs an admin. A named token
// cannot mint tokens, not even narrower ones: tokens that mint tokens would
// make the registry's "created by" meaningless and revocation of a tree of
// tokens unenforceable. Attenuation, which needs no server, is the way to
// narrow a token.
//
// Nothing minted is broader than its minter: the new token carries every
// caveat its holder added to the session token after login (an attenuated
// session stays attenuated in what it mints, ValidityWindow included), then
// the profile's caveats, then the creator's role unless it is admin
// (AllowedRoles), so that the token itself never does what its creator's
// role may not. The session's own lifetime and login caveat are not
// carried: a one-year token minted from a 30-day session lasts a year.
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
	case req.Commands != nil && len(req.Commands) == 0:
		return nil, badRequest("an empty command list allows no command: list the commands, or leave commands out to allow any")
	case req.Expiry < 0:
		return nil, badRequest("expiry must be positive")
	}
	if req.Expiry == 0 {
		req.Expiry = DefaultExpiry
	}
	if req.Name == "" {
		req.Name = req.Profile
	}
	// Caveats first: creating tokens in the organization (or the app)
	// must be allowed by the session's caveats; then the role.
	role, err := s.allowRole(ctx, p, tokensAccess(req.OrgID, req.AppID, resset.ActionCreate))
	if err != nil {
		return nil, err
	}
	if req.Profile == ProfileOrg && role != store.RoleAdmin {
		return nil, forbidden("only an admin of organization %d can create org tokens", req.OrgID)
	}
	if req.AppID != 0 {
		if _, err := s.app(ctx, req.OrgID, req.AppID); err != nil {
			return nil, err
		}
	}
	for i, c := range p.Attenuations {
		if c.Type == caveat.Type3P {
			r, _ := c.Decode()
			loc := ""
			if tp, ok := r.(*caveat.Caveat3P); ok {
				loc = tp.Location
			}
			return nil, forbidden("the session carries a third-party caveat (to %s, caveat %d added after login) that a new token cannot carry: create tokens from a session without it",
				loc, keyring.SessionMintedCaveats+i)
		}
	}

	now := s.cfg.Now()
	profile := []caveat.Caveat{}
	switch req.Profile {
	case ProfileOrg:
		profile = append(profile, &flyio.Organization{ID: req.OrgID, Mask: resset.ActionAll})
	case ProfileReadonly:
		profile = append(profile, &flyio.Organization{ID: req.OrgID, Mask: resset.ActionRead})
	case ProfileDeploy, ProfileMachineExec:
		profile = append(profile, &flyio.Organization{ID: req.OrgID, Mask: resset.ActionAll},
			&flyio.Apps{Apps: resset.ResourceSet[uint64]{req.AppID: resset.ActionAll}})
	}
	if req.Profile == ProfileMachineExec {
		cmds := req.Commands
		if cmds == nil {
			// Any command, written out so that the token says so.
			cmds = flyio.Commands{{Args: []string{}, Exact: false}}
		}
		// As flyctl's: where an access runs a command, the commands
		// decide; everywhere else the token only reads (it can list the
		// app's machines to find where to run them).
		profile = append(profile, &resset.IfPresent{Ifs: caveat.CaveatSet{caveat.Encode(&cmds)}, Else: resset.ActionRead})
	}
	vw := caveat.NewValidityWindow(now, req.Expiry)
	profile = append(profile, vw)
	if role != store.RoleAdmin {
		member := flyio.AllowedRoles(flyio.RoleMember)
		profile = append(profile, &member)
	}
	expires := vw.NotAfterTime()
	for _, c := range p.Attenuations {
		if c.Type != caveat.TypeValidityWindow {
			continue
		}
		v, err := c.Decode()
		if err != nil {
			return nil, fmt.Errorf("session caveat: %w", err)
		}
		if end := v.(*caveat.ValidityWindow).NotAfterTime(); end.Before(expires) {
			expires = end
		}
	}
	if !expires.After(now) {
		return nil, badRequest("the session's own ValidityWindow ends at %s: a token minted from it would never be valid",
			expires.UTC().Format(time.RFC3339))
	}

	// An organization created at signup gets its first key on first use.
	if err := s.EnsureRootKey(ctx, req.OrgID); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	kid, key, err := s.cfg.Keyring.MintingKey(ctx, req.OrgID)
	if err != nil {
		return nil, err
	}
	nonce := caveat.NewNonce(kid, false)
	tok, err := caveat.Mint(key, nonce, s.cfg.Location)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	if err := tok.AddRaw(p.Attenuations...); err != nil {
		return nil, badRequest("the session's caveats cannot be carried into a token: %v", err)
	}
	if err := tok.Add(profile...); err != nil {
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
		ExpiresAt: expires,
	}
	if err := s.cfg.Store.CreateToken(ctx, rec); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return nil, badRequest("%v", err)
		}
		return nil, fmt.Errorf("register token: %w", err)
	}
	// A removal that committed after the check above revoked the
	// creator's tokens without this one (store.Members): it goes too.
	if _, err := s.cfg.Store.GetMembership(ctx, req.OrgID, p.UserID); errors.Is(err, store.ErrNotFound) {
		if _, err := s.cfg.Store.RevokeToken(ctx, rec.ID, s.cfg.Now()); err != nil {
			return nil, fmt.Errorf("revoke the token of a removed member: %w", err)
		}
		return nil, forbidden("user %d was removed from organization %d while the token was being created", p.UserID, req.OrgID)
	} else if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "token created", "token", rec.ID, "profile", rec.Profile,
		"org", rec.OrgID, "app", rec.AppID, "user", p.UserID, "carried_caveats", len(p.Attenuations))
	return &Minted{Record: rec, Token: tok}, nil
}

// Revoke revokes a named token by id, every copy and every attenuation of
// it. Only a logged-in admin of the token's organization, or the user who
// created it, may: a token, even the one named, revokes only its own
// branch (RevokeSelf), since every attenuation of a token shares its id and
// a narrowed child must not take its parent down. It reports whether this
// call revoked it (false when it was already revoked).
func (s *Service) Revoke(ctx context.Context, p *Principal, id string) (bool, error) {
	if !p.IsSession() {
		return false, forbidden("a token cannot revoke a token by id, not even itself: POST /v1/tokens/revoke revokes the branch it is")
	}
	t, err := s.cfg.Store.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, fault.Errorf(fault.NotFound, "no token %q", id)
	}
	if err != nil {
		return false, fmt.Errorf("token: %w", err)
	}
	// To a user who does not belong to the token's organization, the id
	// is unknown, as one that exists nowhere: a refusal would confirm it
	// and name the organization (token ids are in the revocation feed,
	// which any valid token reads). A branch's revoker presents the token
	// and so learns nothing from mayRevoke's refusal.
	if err := s.member(ctx, p, t.OrgID); err != nil {
		if fault.CodeOf(err) == fault.Denied {
			return false, fault.Errorf(fault.NotFound, "no token %q", id)
		}
		return false, err
	}
	if err := s.mayRevoke(ctx, p, t); err != nil {
		return false, err
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

// mayRevoke is who may revoke a token, whole or a branch of it, other than
// the branch itself: a logged-in admin of its organization, or the user
// who created it, whose caveats allow deleting the organization's (or the
// app's) tokens: caveats first (the operation table), then the role.
func (s *Service) mayRevoke(ctx context.Context, p *Principal, t store.Token) error {
	if !p.IsSession() {
		return forbidden("only a logged-in admin of the token's organization, or its creator, can revoke token %s", t.ID)
	}
	role, err := s.allowRole(ctx, p, tokensAccess(t.OrgID, t.AppID, resset.ActionDelete))
	if err != nil {
		return err
	}
	if t.CreatedBy != p.UserID && role != store.RoleAdmin {
		return forbidden("only an admin of the token's organization, or its creator, can revoke token %s", t.ID)
	}
	return nil
}

// List returns a page of the tokens of an organization, or of one of its
// apps when appID is not 0, for a logged-in member of the organization,
// and the cursor of the next page ("" after the last). Tokens that have
// expired are left out unless expired is true.
func (s *Service) List(ctx context.Context, p *Principal, orgID, appID uint64, expired bool, page store.Page) ([]store.Token, string, error) {
	if err := s.Allow(ctx, p, tokensAccess(orgID, appID, resset.ActionRead)); err != nil {
		return nil, "", err
	}
	if appID != 0 {
		if _, err := s.app(ctx, orgID, appID); err != nil {
			return nil, "", err
		}
	}
	f := store.TokenFilter{OrgID: orgID, AppID: appID}
	if !expired {
		f.LiveAt = s.cfg.Now()
	}
	ts, next, err := s.cfg.Store.ListTokens(ctx, f, page)
	if err != nil {
		return nil, "", pageErr("list tokens", err)
	}
	return ts, next, nil
}
