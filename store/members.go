package store

import (
	"context"
	"fmt"
	"time"
)

// Member is a membership with what an admin needs to recognise the member.
type Member struct {
	Membership
	Email string
	// LastLoginAt is when the user last started a session (in any
	// organization), or zero for never.
	LastLoginAt time.Time
}

// Removal asks [Members.RemoveMemberWithTokens] to end a membership.
type Removal struct {
	OrgID  uint64
	UserID uint64
	At     time.Time
	// KeepTokensFor, when not 0, is another member of the organization
	// who becomes the creator of the removed user's tokens, which are
	// then not revoked.
	KeepTokensFor uint64
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (r Removal) Validate() error {
	if err := checkTime("removed at", r.At); err != nil {
		return err
	}
	if r.KeepTokensFor != 0 && r.KeepTokensFor == r.UserID {
		return fmt.Errorf("the tokens of a removed member cannot be kept for that member: %w", ErrInvalid)
	}
	return nil
}

// Members reads and ends memberships with their consequences for tokens.
type Members interface {
	// ListMemberDetails returns the organization's members with their
	// emails and last logins, ordered by user id; an unknown organization
	// gives an empty list.
	ListMemberDetails(ctx context.Context, orgID uint64) ([]Member, error)

	// RemoveMemberWithTokens ends a membership and, in the same atomic
	// step, either revokes at r.At every token that the user created in
	// the organization and that is neither revoked nor expired at r.At
	// (appending each to the revocation feed, as [Tokens.RevokeToken]
	// does), or, with r.KeepTokensFor, makes that member their creator.
	// It returns those tokens as they are after the step, oldest first.
	//
	// It fails with ErrNotFound when the user is not a member, with
	// ErrConflict when the user is the organization's last admin, and
	// with ErrInvalid when r does not validate or r.KeepTokensFor is not
	// a member. A token created in the organization while the removal
	// runs is either in the result or created after it (and its creator
	// is then no member: see [Organizations.GetMembership]).
	RemoveMemberWithTokens(ctx context.Context, r Removal) ([]Token, error)
}
