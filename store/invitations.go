package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Invitations let an organization's admin bring in someone by email: the
// invitation names the email and the role, and is accepted with a one-time
// code that the store never sees, only a hash of it (CodeHash), so that a
// database dump opens no invitation.
//
// An invitation is open until it is accepted or cancelled; an open one
// past its ExpiresAt can no longer be accepted. At most one open, unexpired
// invitation exists per organization and email (compared by [EmailKey]).

// The refusals of an invitation that exists but cannot be accepted. Each
// is an [ErrConflict], so that callers that only care whether the change
// happened need not list them.
var (
	// ErrInvitationUsed: the invitation was accepted already.
	ErrInvitationUsed error = &sentinel{msg: "invitation already used", parent: ErrConflict}
	// ErrInvitationCancelled: an admin cancelled the invitation.
	ErrInvitationCancelled error = &sentinel{msg: "invitation cancelled", parent: ErrConflict}
	// ErrInvitationExpired: the invitation's ExpiresAt has passed.
	ErrInvitationExpired error = &sentinel{msg: "invitation expired", parent: ErrConflict}
	// ErrInvitationEmail: the accepting user's email is not the one the
	// invitation was sent to.
	ErrInvitationEmail error = &sentinel{msg: "invitation is for another email", parent: ErrConflict}
)

// Invitation is an invitation to join an organization.
type Invitation struct {
	ID    uint64
	OrgID uint64
	// Email is the invitee's address as the admin typed it; only a user
	// whose email has the same [EmailKey] may accept.
	Email string
	Role  Role
	// CodeHash finds the invitation from its code; see
	// [NewInvitation.CodeHash].
	CodeHash  string
	InvitedBy uint64
	CreatedAt time.Time
	ExpiresAt time.Time
	// AcceptedAt and AcceptedBy are zero until the invitation is
	// accepted.
	AcceptedAt time.Time
	AcceptedBy uint64
	// CancelledAt is zero unless an admin cancelled the invitation.
	CancelledAt time.Time
}

// Open reports whether the invitation was neither accepted nor cancelled.
func (i Invitation) Open() bool { return i.AcceptedAt.IsZero() && i.CancelledAt.IsZero() }

// Acceptable returns nil when the invitation may be accepted at now, and
// otherwise the refusal: [ErrInvitationUsed], [ErrInvitationCancelled] or
// [ErrInvitationExpired].
func (i Invitation) Acceptable(now time.Time) error {
	switch {
	case !i.AcceptedAt.IsZero():
		return ErrInvitationUsed
	case !i.CancelledAt.IsZero():
		return ErrInvitationCancelled
	case !now.Before(i.ExpiresAt):
		return ErrInvitationExpired
	}
	return nil
}

// LogValue keeps the email and the code hash out of logs.
func (i Invitation) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("id", i.ID), slog.Uint64("org", i.OrgID), slog.String("role", string(i.Role)))
}

// NewInvitation is what [Invitations.CreateInvitation] needs.
type NewInvitation struct {
	OrgID uint64
	Email string // 1 to MaxEmailLen bytes of UTF-8
	Role  Role
	// CodeHash is a hash of the invitation's code, 1 to MaxNameLen bytes,
	// unique across the store. The code itself must carry enough entropy
	// that the hash cannot be reversed by guessing.
	CodeHash  string
	InvitedBy uint64
	CreatedAt time.Time
	// ExpiresAt is after CreatedAt.
	ExpiresAt time.Time
}

// LogValue keeps the email and the code hash out of logs.
func (n NewInvitation) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("org", n.OrgID), slog.String("role", string(n.Role)))
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (n NewInvitation) Validate() error {
	if err := checkText("email", n.Email, MaxEmailLen); err != nil {
		return err
	}
	if !n.Role.Valid() {
		return fmt.Errorf("role %q: %w", n.Role, ErrInvalid)
	}
	if err := checkText("code hash", n.CodeHash, MaxNameLen); err != nil {
		return err
	}
	if n.OrgID == 0 || n.InvitedBy == 0 {
		return fmt.Errorf("invitation without organization or inviter: %w", ErrInvalid)
	}
	if err := checkTime("created at", n.CreatedAt); err != nil {
		return err
	}
	if err := checkTime("expires at", n.ExpiresAt); err != nil {
		return err
	}
	if !n.ExpiresAt.After(n.CreatedAt) {
		return fmt.Errorf("invitation expires at or before its creation: %w", ErrInvalid)
	}
	return nil
}

// Invitations holds the organizations' invitations.
type Invitations interface {
	// CreateInvitation stores an open invitation and returns it with its
	// new id. An open invitation of the organization for the same
	// [EmailKey] that has expired at n.CreatedAt is cancelled at
	// n.CreatedAt in the same step; one that has not fails the call with
	// ErrExists, as does a taken code hash. It fails with ErrNotFound
	// when the organization or the inviter does not exist, and with
	// ErrInvalid when n does not validate.
	CreateInvitation(ctx context.Context, n NewInvitation) (Invitation, error)

	// GetInvitation returns the invitation with this code hash, in
	// whatever state, or ErrNotFound.
	GetInvitation(ctx context.Context, codeHash string) (Invitation, error)

	// ListInvitations returns the organization's open invitations,
	// expired ones included, oldest first (by creation time, then id); an
	// unknown organization gives an empty list.
	ListInvitations(ctx context.Context, orgID uint64) ([]Invitation, error)

	// CancelInvitation cancels the organization's invitation with this id
	// at at and returns it. It fails with ErrNotFound when the
	// organization has no such invitation, with ErrInvitationUsed or
	// ErrInvitationCancelled when it is not open, and with ErrInvalid for
	// a zero time.
	CancelInvitation(ctx context.Context, orgID, id uint64, at time.Time) (Invitation, error)

	// AcceptInvitation makes the user a member of the invitation's
	// organization, in its role, and marks it accepted by the user at at,
	// all or nothing. It fails with ErrNotFound for an unknown code hash
	// or user, with ErrInvitationUsed, ErrInvitationCancelled or
	// ErrInvitationExpired (see [Invitation.Acceptable]), with
	// ErrInvitationEmail when the user's email is not the invitation's,
	// with ErrExists when the user is a member already (the invitation
	// stays open), and with ErrInvalid for a zero time.
	AcceptInvitation(ctx context.Context, codeHash string, userID uint64, at time.Time) (Invitation, error)

	// SignupWithInvitation creates the user and accepts the invitation
	// for it at u.CreatedAt, all or nothing: it is how someone without an
	// account accepts. It fails as AcceptInvitation does, with
	// ErrInvitationEmail when u's email is not the invitation's, with
	// ErrExists when the email is taken, and with ErrInvalid when u does
	// not validate.
	SignupWithInvitation(ctx context.Context, codeHash string, u NewUser) (User, Invitation, error)
}
