package sqlrules

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/caveatdev/caveat/store"
)

// Invitations and the member operations of teams. An invitation being
// accepted is locked (FOR UPDATE on PostgreSQL) so that two acceptances of
// one code serialise; a removal locks the organization's row FOR UPDATE,
// which also makes concurrent inserts of tokens of the organization (whose
// foreign key check takes FOR KEY SHARE on that row) wait for it, so that
// a token is either created before the removal, and revoked by it, or
// after it. SQLite's single writer gives the same order.

const invitationColumns = "id, org_id, email, role, code_hash, invited_by, created_at, expires_at, accepted_at, accepted_by, cancelled_at"

func scanInvitation(row Row) (store.Invitation, error) {
	var i store.Invitation
	err := row.Scan(Num{&i.ID}, Num{&i.OrgID}, &i.Email, (*string)(&i.Role), &i.CodeHash, Num{&i.InvitedBy}, At{&i.CreatedAt},
		At{&i.ExpiresAt}, At{&i.AcceptedAt}, Num{&i.AcceptedBy}, At{&i.CancelledAt})
	return i, err
}

// CreateInvitation implements [store.Invitations].
func (s *Store) CreateInvitation(ctx context.Context, n store.NewInvitation) (store.Invitation, error) {
	refs := []ref{orgRef(n.OrgID), userRef("inviting user", n.InvitedBy)}
	return create(ctx, s, "create invitation", n.Validate(), refs, func(tx Conn) (store.Invitation, error) {
		created, expires := micro(n.CreatedAt), micro(n.ExpiresAt)
		// An expired invitation for the same email gives way to the new one.
		_, err := tx.Exec(ctx, `UPDATE invitations SET cancelled_at = ?
			WHERE org_id = ? AND email_key = ? AND accepted_at IS NULL AND cancelled_at IS NULL AND expires_at <= ?`,
			s.ts(created), int64(n.OrgID), store.EmailKey(n.Email), s.ts(created))
		if err != nil {
			return store.Invitation{}, fmt.Errorf("cancel expired invitations: %w", err)
		}
		var id int64
		err = s.insert(ctx, tx, "invitation", "an open invitation for this email, or this code", &id, `INSERT INTO invitations
			(org_id, email, email_key, role, code_hash, invited_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			int64(n.OrgID), n.Email, store.EmailKey(n.Email), string(n.Role), n.CodeHash, int64(n.InvitedBy),
			s.ts(created), s.ts(expires))
		return store.Invitation{ID: uint64(id), OrgID: n.OrgID, Email: n.Email, Role: n.Role, CodeHash: n.CodeHash,
			InvitedBy: n.InvitedBy, CreatedAt: created, ExpiresAt: expires}, err
	}, "create invitation to organization %d", n.OrgID)
}

// GetInvitation implements [store.Invitations].
func (s *Store) GetInvitation(ctx context.Context, codeHash string) (store.Invitation, error) {
	return get(ctx, s, storable(codeHash), scanInvitation, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = ?",
		[]any{codeHash}, "get invitation")
}

var invitationListing = listing[store.CreatedKey, store.Invitation]{"list invitations", "organization",
	store.CursorInvitations, store.ParseCreatedCursor, scanInvitation, store.InvitationCursor}

// ListInvitations implements [store.Invitations].
func (s *Store) ListInvitations(ctx context.Context, orgID uint64, p store.Page) ([]store.Invitation, string, error) {
	return invitationListing.read(ctx, s, orgID, p, func(q *page, o int64, after store.CreatedKey, from bool) (bool, error) {
		q.add("SELECT "+invitationColumns+` FROM invitations
			WHERE org_id = ? AND accepted_at IS NULL AND cancelled_at IS NULL`, o)
		id, err := strconv.ParseInt(after.ID, 10, 64)
		if from && err != nil {
			return false, fmt.Errorf("cursor: %w", store.ErrInvalid)
		}
		s.createdAfter(q, "id", after, id, from)
		return true, nil
	})
}

// CancelInvitation implements [store.Invitations].
func (s *Store) CancelInvitation(ctx context.Context, orgID, id uint64, when time.Time) (store.Invitation, error) {
	if err := store.CheckTime("cancelled at", when); err != nil {
		return store.Invitation{}, s.errf("cancel invitation %d: %w", id, err)
	}
	o, ok1 := DBID(orgID)
	i, ok2 := DBID(id)
	if !ok1 || !ok2 {
		return store.Invitation{}, s.errf("cancel invitation %d of organization %d: %w", id, orgID, store.ErrNotFound)
	}
	inv, err := inTx(ctx, s, func(tx Conn) (store.Invitation, error) {
		inv, err := one(ctx, tx, scanInvitation,
			"SELECT "+invitationColumns+" FROM invitations WHERE id = ? AND org_id = ?"+s.d.ForUpdate, i, o)
		switch {
		case err != nil:
			return inv, err
		case !inv.AcceptedAt.IsZero():
			return inv, store.ErrInvitationUsed
		case !inv.CancelledAt.IsZero():
			return inv, store.ErrInvitationCancelled
		}
		inv.CancelledAt = micro(when)
		_, err = tx.Exec(ctx, "UPDATE invitations SET cancelled_at = ? WHERE id = ?", s.ts(when), i)
		return inv, err
	})
	if err != nil {
		return store.Invitation{}, s.errf("cancel invitation %d of organization %d: %w", id, orgID, err)
	}
	return inv, nil
}

// lockInvitation reads the invitation with codeHash and locks it until the
// transaction ends, and checks that it may be accepted at when by a user
// with emailKey.
func (s *Store) lockInvitation(ctx context.Context, tx Conn, codeHash, emailKey string, when time.Time) (store.Invitation, error) {
	if !storable(codeHash) {
		return store.Invitation{}, fmt.Errorf("invitation: %w", store.ErrNotFound)
	}
	inv, err := one(ctx, tx, scanInvitation, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = ?"+s.d.ForUpdate, codeHash)
	if err != nil {
		return inv, fmt.Errorf("invitation: %w", err)
	}
	if err = inv.Acceptable(when); err == nil && emailKey != store.EmailKey(inv.Email) {
		err = store.ErrInvitationEmail
	}
	if err != nil {
		return inv, fmt.Errorf("invitation %d: %w", inv.ID, err)
	}
	return inv, nil
}

// accept makes the user a member through the locked invitation inv.
func (s *Store) accept(ctx context.Context, tx Conn, inv store.Invitation, userID uint64, when time.Time) (store.Invitation, error) {
	when = micro(when)
	if err := s.insertMember(ctx, tx, store.Membership{OrgID: inv.OrgID, UserID: userID, Role: inv.Role, CreatedAt: when}); err != nil {
		return inv, err
	}
	if _, err := tx.Exec(ctx, "UPDATE invitations SET accepted_at = ?, accepted_by = ? WHERE id = ?",
		s.ts(when), int64(userID), int64(inv.ID)); err != nil {
		return inv, fmt.Errorf("mark invitation accepted: %w", err)
	}
	inv.AcceptedAt, inv.AcceptedBy = when, userID
	return inv, nil
}

// AcceptInvitation implements [store.Invitations].
func (s *Store) AcceptInvitation(ctx context.Context, codeHash string, userID uint64, when time.Time) (store.Invitation, error) {
	if err := store.CheckTime("accepted at", when); err != nil {
		return store.Invitation{}, s.errf("accept invitation: %w", err)
	}
	u, ok := DBID(userID)
	if !ok {
		return store.Invitation{}, s.errf("accept invitation: user %d: %w", userID, store.ErrNotFound)
	}
	inv, err := inTx(ctx, s, func(tx Conn) (store.Invitation, error) {
		key, err := one(ctx, tx, scanString, "SELECT email_key FROM users WHERE id = ?", u)
		if err != nil {
			return store.Invitation{}, fmt.Errorf("user %d: %w", userID, err)
		}
		inv, err := s.lockInvitation(ctx, tx, codeHash, key, when)
		if err != nil {
			return inv, err
		}
		return s.accept(ctx, tx, inv, userID, when)
	})
	if err != nil {
		return store.Invitation{}, s.errf("accept invitation for user %d: %w", userID, err)
	}
	return inv, nil
}

// SignupWithInvitation implements [store.Invitations].
func (s *Store) SignupWithInvitation(ctx context.Context, codeHash string, nu store.NewUser) (store.User, store.Invitation, error) {
	if err := nu.Validate(); err != nil {
		return store.User{}, store.Invitation{}, s.errf("signup with invitation: %w", err)
	}
	var user store.User
	inv, err := inTx(ctx, s, func(tx Conn) (store.Invitation, error) {
		// The invitation is checked before the user is inserted, so that a
		// wrong email is reported as such rather than as a taken one.
		inv, err := s.lockInvitation(ctx, tx, codeHash, store.EmailKey(nu.Email), nu.CreatedAt)
		if err != nil {
			return inv, err
		}
		if user, err = s.insertUser(ctx, tx, nu); err != nil {
			return inv, err
		}
		return s.accept(ctx, tx, inv, user.ID, nu.CreatedAt)
	})
	if err != nil {
		return store.User{}, store.Invitation{}, s.errf("signup with invitation: %w", err)
	}
	return user, inv, nil
}

var memberListing = listing[uint64, store.Member]{"list members", "organization", store.CursorMembers,
	store.ParseIDCursor, nil, store.MemberCursor}

// ListMemberDetails implements [store.Members].
func (s *Store) ListMemberDetails(ctx context.Context, orgID uint64, p store.Page) ([]store.Member, string, error) {
	l := memberListing
	l.scan = func(row Row) (store.Member, error) {
		m := store.Member{Membership: store.Membership{OrgID: orgID}}
		err := row.Scan(Num{&m.UserID}, (*string)(&m.Role), At{&m.CreatedAt}, &m.Email, At{&m.LastLoginAt})
		return m, err
	}
	return l.read(ctx, s, orgID, p, func(q *page, o int64, after uint64, _ bool) (bool, error) {
		q.add(`SELECT m.user_id, m.role, m.created_at, u.email, u.last_login_at
			FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.org_id = ? AND m.user_id > ?
			ORDER BY m.user_id`, o, int64(after))
		return after <= math.MaxInt64, nil
	})
}

// RemoveMemberWithTokens implements [store.Members].
func (s *Store) RemoveMemberWithTokens(ctx context.Context, r store.Removal) ([]store.Token, error) {
	if err := r.Validate(); err != nil {
		return nil, s.errf("remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	toks, err := inTx(ctx, s, func(tx Conn) ([]store.Token, error) {
		// FOR UPDATE, not the FOR NO KEY UPDATE of role changes: see the
		// top of this file.
		if err := lockOrganization(ctx, tx, r.OrgID, s.d.ForUpdate); err != nil {
			return nil, err
		}
		if _, err := s.leaveRole(ctx, tx, r.OrgID, r.UserID); err != nil {
			return nil, err
		}
		if r.KeepTokensFor != 0 {
			if _, err := s.currentRole(ctx, tx, r.OrgID, r.KeepTokensFor); errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("user %d, who would keep the tokens, is not a member: %w", r.KeepTokensFor, store.ErrInvalid)
			} else if err != nil {
				return nil, err
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM memberships WHERE org_id = ? AND user_id = ?", int64(r.OrgID), int64(r.UserID)); err != nil {
			return nil, fmt.Errorf("delete membership: %w", err)
		}
		ids, err := s.leaveTokens(ctx, tx, r)
		if err != nil || len(ids) == 0 {
			return []store.Token{}, err
		}
		rows, err := tx.Query(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE id "+s.d.AnyID+" ORDER BY created_at, id", s.d.IDs(ids))
		toks, err := collect(rows, err, scanToken)
		if err != nil {
			return nil, fmt.Errorf("read the member's tokens: %w", err)
		}
		return toks, nil
	})
	if err != nil {
		return nil, s.errf("remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	return toks, nil
}

// leaveTokens hands the live tokens that the removed member made in the
// organization to r.KeepTokensFor or, without one, revokes them with their
// feed entries, and returns their ids.
func (s *Store) leaveTokens(ctx context.Context, tx Conn, r store.Removal) ([]string, error) {
	const mine = "org_id = ? AND created_by = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
	set, to := "revoked_at", s.ts(r.At)
	if r.KeepTokensFor != 0 {
		set, to = "created_by", int64(r.KeepTokensFor)
	}
	rows, err := tx.Query(ctx, "UPDATE tokens SET "+set+" = ? WHERE "+mine+" RETURNING id",
		to, int64(r.OrgID), int64(r.UserID), s.ts(r.At))
	ids, err := collect(rows, err, scanString)
	if err != nil {
		return nil, fmt.Errorf("update the member's tokens: %w", err)
	}
	if r.KeepTokensFor != 0 || len(ids) == 0 {
		return ids, nil
	}
	// The same feed entries as RevokeToken's, under its lock, taken last
	// (see RevokeToken), in the tokens' order.
	return ids, s.feed(ctx, tx, func() error {
		_, err := tx.Exec(ctx, `INSERT INTO revocations (token_id, org_id, revoked_at)
			SELECT id, org_id, revoked_at FROM tokens WHERE id `+s.d.AnyID+` ORDER BY created_at, id`, s.d.IDs(ids))
		return err
	})
}
