package authority

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// Members and invitations. The organization's members and its pending
// invitations are its feature "membership" (spec §6.5: a member may read
// it, everything else needs an admin), so that a FeatureSet caveat scopes
// them like any other feature and a member's token (AllowedRoles) never
// manages them. Joining and leaving are a user's own acts on their own
// membership, not management of the feature: they clear the organization
// itself, c to join and d to leave, so that an r-only session, or one
// confined to another organization, can do neither, while a session
// limited to a member's powers still can.
//
// A named token acts with at most its creator's current standing: a
// removed member's tokens of the organization are revoked in the removal's
// own transaction, through the revocation feed (or, on request, re-assigned
// to the admin removing them), and what only admins may do is refused to
// an admin's token once its creator is no longer an admin (middleware.CheckAccess).

// FeatureMembership is the organization feature of members and invitations.
const FeatureMembership = "membership"

// Invitation lifetimes.
const (
	DefaultInvitationExpiry = 7 * 24 * time.Hour
	MaxInvitationExpiry     = 30 * 24 * time.Hour
)

// membershipAccess is an action on the organization's members and
// invitations.
func membershipAccess(orgID uint64, action resset.Action) *flyio.Access {
	f := FeatureMembership
	return &flyio.Access{OrgID: &orgID, Feature: &f, Action: action}
}

// Invited is a new invitation with its code, which is shown once and
// never stored.
type Invited struct {
	Invitation store.Invitation
	Code       string
	// URL is the invitation's page on the login service.
	URL string
}

// InviteRequest asks for an invitation.
type InviteRequest struct {
	Email string
	// Role is the invitee's role once joined; member when empty.
	Role store.Role
	// Expiry is the invitation's lifetime; DefaultInvitationExpiry when 0.
	Expiry time.Duration
}

// Invite invites an email to the organization. Admins only.
func (s *Service) Invite(ctx context.Context, p *Principal, orgID uint64, req InviteRequest) (*Invited, error) {
	if err := s.adminOnly(ctx, p, membershipAccess(orgID, resset.ActionCreate), "invite members"); err != nil {
		return nil, err
	}
	email := strings.TrimSpace(req.Email)
	if local, domain, ok := strings.Cut(email, "@"); !ok || local == "" || domain == "" || strings.ContainsAny(email, " \t\r\n") {
		return nil, badRequest("%q is not an email address", req.Email)
	}
	if req.Role == "" {
		req.Role = store.RoleMember
	}
	if !req.Role.Valid() {
		return nil, badRequest("role must be %q or %q, not %q", store.RoleMember, store.RoleAdmin, req.Role)
	}
	switch {
	case req.Expiry == 0:
		req.Expiry = DefaultInvitationExpiry
	case req.Expiry < time.Minute || req.Expiry > MaxInvitationExpiry:
		return nil, badRequest("an invitation lasts from a minute to %s, not %s", MaxInvitationExpiry, req.Expiry)
	}
	if u, err := s.cfg.Store.GetUserByEmail(ctx, email); err == nil {
		if _, err := s.cfg.Store.GetMembership(ctx, orgID, u.ID); err == nil {
			return nil, fault.Errorf(fault.Conflict, "%s is already a member of this organization", email)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("membership: %w", err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("user: %w", err)
	}
	code := invitation.NewCode()
	now := s.cfg.Now()
	inv, err := s.cfg.Store.CreateInvitation(ctx, store.NewInvitation{OrgID: orgID, Email: email, Role: req.Role,
		CodeHash: invitation.CodeHash(code), InvitedBy: p.UserID, CreatedAt: now, ExpiresAt: now.Add(req.Expiry)})
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, fault.Errorf(fault.Conflict,
			"an invitation for %s is pending; cancel it first ('caveat orgs uninvite %s') to send a new one", email, email)
	case errors.Is(err, store.ErrInvalid):
		return nil, badRequest("%v", err)
	case err != nil:
		return nil, fmt.Errorf("create invitation: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "invitation created", "invitation", inv, "by", p.UserID)
	return &Invited{Invitation: inv, Code: code,
		URL: strings.TrimSuffix(s.cfg.LoginLocation, "/") + invitation.Path + code}, nil
}

// Invitations lists a page of the organization's pending invitations
// (expired ones included, until they are cancelled or replaced) and the
// cursor of the next.
func (s *Service) Invitations(ctx context.Context, p *Principal, orgID uint64, page store.Page) ([]store.Invitation, string, error) {
	if err := s.Allow(ctx, p, membershipAccess(orgID, resset.ActionRead)); err != nil {
		return nil, "", err
	}
	invs, next, err := s.cfg.Store.ListInvitations(ctx, orgID, page)
	if err != nil {
		return nil, "", pageErr("list invitations", err)
	}
	return invs, next, nil
}

// CancelInvitation cancels a pending invitation, named by its id or its
// email. Admins only.
func (s *Service) CancelInvitation(ctx context.Context, p *Principal, orgID uint64, which string) (store.Invitation, error) {
	if err := s.adminOnly(ctx, p, membershipAccess(orgID, resset.ActionDelete), "cancel invitations"); err != nil {
		return store.Invitation{}, err
	}
	which = strings.TrimSpace(which)
	id, err := strconv.ParseUint(which, 10, 64)
	if err != nil {
		// By email: at most one open invitation has it; look for it a
		// page at a time.
		page := store.Page{Limit: store.MaxPageLimit}
		for id == 0 {
			invs, next, err := s.cfg.Store.ListInvitations(ctx, orgID, page)
			if err != nil {
				return store.Invitation{}, fmt.Errorf("list invitations: %w", err)
			}
			for _, inv := range invs {
				if store.EmailKey(inv.Email) == store.EmailKey(which) {
					id = inv.ID
				}
			}
			if next == "" {
				break
			}
			page.After = next
		}
	}
	inv, err := s.cfg.Store.CancelInvitation(ctx, orgID, id, s.cfg.Now())
	switch {
	case id == 0 || errors.Is(err, store.ErrNotFound):
		return inv, fault.Errorf(fault.NotFound, "no pending invitation %q in this organization ('caveat orgs invitations' lists them)", which)
	case errors.Is(err, store.ErrInvitationUsed):
		return inv, fault.Errorf(fault.Conflict, "invitation %q was already accepted: remove the member instead", which)
	case errors.Is(err, store.ErrInvitationCancelled):
		return inv, fault.Errorf(fault.Conflict, "invitation %q was already cancelled", which)
	case err != nil:
		return inv, fmt.Errorf("cancel invitation: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "invitation cancelled", "invitation", inv, "by", p.UserID)
	return inv, nil
}

// AcceptInvitation makes the logged-in user a member of the invitation's
// organization, if the invitation is theirs (by email), open and
// unexpired.
func (s *Service) AcceptInvitation(ctx context.Context, p *Principal, code string) (store.Invitation, store.Organization, error) {
	if !p.IsSession() {
		return store.Invitation{}, store.Organization{}, forbidden("only a logged-in user can accept an invitation")
	}
	inv, err := invitation.Find(ctx, s.cfg.Store, code)
	if err != nil {
		return inv, store.Organization{}, err
	}
	// The caller's own act: joining creates their membership.
	if err := s.clearCaveats(p, orgAccess(inv.OrgID, resset.ActionCreate)); err != nil {
		return inv, store.Organization{}, err
	}
	o, err := s.cfg.Store.GetOrganization(ctx, inv.OrgID)
	if err != nil {
		return inv, o, fmt.Errorf("organization: %w", err)
	}
	got, err := s.cfg.Store.AcceptInvitation(ctx, inv.CodeHash, p.UserID, s.cfg.Now())
	if err != nil {
		return inv, o, invitation.Refusal(err, inv, false)
	}
	s.cfg.Logger.InfoContext(ctx, "invitation accepted", "invitation", got, "user", p.UserID)
	return got, o, nil
}

// Members lists a page of the organization's members, with their emails
// and last logins, and the cursor of the next.
func (s *Service) Members(ctx context.Context, p *Principal, orgID uint64, page store.Page) ([]store.Member, string, error) {
	if err := s.Allow(ctx, p, membershipAccess(orgID, resset.ActionRead)); err != nil {
		return nil, "", err
	}
	ms, next, err := s.cfg.Store.ListMemberDetails(ctx, orgID, page)
	if err != nil {
		return nil, "", pageErr("list members", err)
	}
	return ms, next, nil
}

// memberOf resolves a member of the organization named by user id or
// email.
func (s *Service) memberOf(ctx context.Context, orgID uint64, who string) (store.User, error) {
	who = strings.TrimSpace(who)
	var (
		u   store.User
		err error
	)
	if id, perr := strconv.ParseUint(who, 10, 64); perr == nil {
		u, err = s.cfg.Store.GetUser(ctx, id)
	} else {
		u, err = s.cfg.Store.GetUserByEmail(ctx, who)
	}
	if err == nil {
		_, err = s.cfg.Store.GetMembership(ctx, orgID, u.ID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return u, fault.Errorf(fault.NotFound, "%q is not a member of this organization ('caveat orgs members' lists them)", who)
	}
	if err != nil {
		return u, fmt.Errorf("member: %w", err)
	}
	return u, nil
}

// lastAdmin is the refusal of a change that would leave the organization
// without an admin.
func lastAdmin(what string) error {
	return fault.Errorf(fault.Conflict,
		"%s: that is the organization's last admin; make another member admin first ('caveat orgs set-role EMAIL admin')", what)
}

// SetRole changes a member's role, named by user id or email. Admins
// only. Demoting an admin takes from their tokens at once what only
// admins may do (see middleware.CheckAccess).
func (s *Service) SetRole(ctx context.Context, p *Principal, orgID uint64, who string, role store.Role) (store.User, error) {
	if err := s.adminOnly(ctx, p, membershipAccess(orgID, resset.ActionWrite), "change roles"); err != nil {
		return store.User{}, err
	}
	if !role.Valid() {
		return store.User{}, badRequest("role must be %q or %q, not %q", store.RoleMember, store.RoleAdmin, role)
	}
	u, err := s.memberOf(ctx, orgID, who)
	if err != nil {
		return u, err
	}
	err = s.cfg.Store.SetMemberRole(ctx, orgID, u.ID, role)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return u, fault.Errorf(fault.NotFound, "%q is not a member of this organization", who)
	case errors.Is(err, store.ErrConflict):
		return u, lastAdmin("cannot make them a " + string(role))
	case err != nil:
		return u, fmt.Errorf("set role: %w", err)
	}
	s.cfg.Logger.InfoContext(ctx, "role changed", "org", orgID, "user", u.ID, "role", role, "by", p.UserID)
	return u, nil
}

// Removed is a removal's outcome: the removed user, and their tokens of
// the organization, revoked or kept.
type Removed struct {
	User   store.User
	Tokens []store.Token
	// Kept says the tokens were re-assigned rather than revoked.
	Kept bool
}

// RemoveMember ends a membership, named by user id or email; admins only.
// The member's tokens of the organization that are neither revoked nor
// expired are revoked with it, in one step, and reach every replica
// through the revocation feed; with keepTokens they are re-assigned to
// the admin removing the member instead.
func (s *Service) RemoveMember(ctx context.Context, p *Principal, orgID uint64, who string, keepTokens bool) (*Removed, error) {
	if err := s.adminOnly(ctx, p, membershipAccess(orgID, resset.ActionDelete), "remove members"); err != nil {
		return nil, err
	}
	u, err := s.memberOf(ctx, orgID, who)
	if err != nil {
		return nil, err
	}
	r := store.Removal{OrgID: orgID, UserID: u.ID, At: s.cfg.Now()}
	if keepTokens {
		if u.ID == p.UserID {
			return nil, badRequest("you cannot keep your own tokens while removing yourself: leave without --keep-tokens")
		}
		r.KeepTokensFor = p.UserID
	}
	return s.remove(ctx, p, r, u, "cannot remove them")
}

// Leave ends the caller's own membership of the organization; their tokens
// of it are revoked with it.
func (s *Service) Leave(ctx context.Context, p *Principal, orgID uint64) (*Removed, error) {
	if !p.IsSession() {
		return nil, forbidden("only a logged-in user can leave an organization")
	}
	if err := s.clearCaveats(p, orgAccess(orgID, resset.ActionDelete)); err != nil {
		return nil, err
	}
	u, err := s.cfg.Store.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	return s.remove(ctx, p, store.Removal{OrgID: orgID, UserID: p.UserID, At: s.cfg.Now()}, u, "you cannot leave")
}

func (s *Service) remove(ctx context.Context, p *Principal, r store.Removal, u store.User, refusal string) (*Removed, error) {
	toks, err := s.cfg.Store.RemoveMemberWithTokens(ctx, r)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fault.Errorf(fault.NotFound, "user %d is not a member of this organization", r.UserID)
	case errors.Is(err, store.ErrInvalid):
		return nil, badRequest("%v", err)
	case errors.Is(err, store.ErrConflict):
		return nil, lastAdmin(refusal)
	case err != nil:
		return nil, fmt.Errorf("remove member: %w", err)
	}
	// This replica forgets them at once; the others through the feed
	// (re-assigned tokens too, so that their creator is read again).
	if s.cache != nil {
		for _, t := range toks {
			s.cache.EvictToken(t.ID)
		}
	}
	s.cfg.Logger.InfoContext(ctx, "member removed", "org", r.OrgID, "user", r.UserID, "by", p.UserID,
		"tokens", len(toks), "kept_for", r.KeepTokensFor)
	return &Removed{User: u, Tokens: toks, Kept: r.KeepTokensFor != 0}, nil
}
