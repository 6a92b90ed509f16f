package middleware

import (
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
)

// Standing is a user's place in an organization, as the access rule reads
// it: not a member, a member, or an admin.
type Standing uint8

const (
	NotMember Standing = iota
	Member
	Admin
)

// String names the standing as roles are named elsewhere ("member",
// "admin"), for the rule's messages.
func (s Standing) String() string {
	switch s {
	case Member:
		return "member"
	case Admin:
		return "admin"
	}
	return "not a member"
}

// CheckAccess is the rule every Principal's Allow applies, in one place for
// the authority (which reads memberships from its store) and for verifiers
// that hold a principal's verified caveats and its memberships
// (client.Remote's cache):
//
//   - the caveats must allow the access (a refusal is fault.Deny of the
//     caveats' error, naming the caveat);
//   - a named token must be of the access's organization, and for what only
//     admins may do its creator must be an admin of it now;
//   - a session's user must be a member of the organization, in a standing
//     that may do the access.
//
// standing returns the user's (a named token's creator's) standing in an
// organization; for a named token it is called only for accesses that
// need an admin. An error from it means the access could not be checked
// and is returned wrapped, never as a refusal.
func CheckAccess(caveats caveat.CaveatSet, session bool, tokenOrg, userID uint64,
	standing func(orgID uint64) (Standing, error), a *flyio.Access) error {
	if err := caveats.Clear(a); err != nil {
		return fault.Deny(err)
	}
	orgID := *a.OrgID // Clear validated the access: it names an organization
	if !session {
		if tokenOrg != orgID {
			return fault.Errorf(fault.Denied, "token of organization %d cannot act on organization %d", tokenOrg, orgID)
		}
		if a.RequiredRole() == flyio.RoleMember {
			return nil
		}
		// A token acts with at most its creator's current standing: what
		// only admins may do needs its creator to be an admin now. (A
		// member's token carries AllowedRoles and never gets here.)
		s, err := standing(orgID)
		if err != nil {
			return fmt.Errorf("membership of the token's creator: %w", err)
		}
		switch s {
		case Admin:
			return nil
		case NotMember:
			return fault.Errorf(fault.Denied, "action %s on this feature needs an admin of organization %d; the token's creator, user %d, is no longer a member",
				a.Action, orgID, userID)
		}
		return fault.Errorf(fault.Denied, "action %s on this feature needs an admin of organization %d; the token's creator, user %d, is now a %s",
			a.Action, orgID, userID, s)
	}
	s, err := standing(orgID)
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	if s == NotMember {
		return fault.Errorf(fault.Denied, "user %d is not a member of organization %d", userID, orgID)
	}
	if s != Admin && a.RequiredRole() != flyio.RoleMember {
		return fault.Errorf(fault.Denied, "action %s on this feature needs an admin of organization %d; user %d is a %s",
			a.Action, orgID, userID, s)
	}
	return nil
}
