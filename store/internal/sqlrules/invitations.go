package sqlrules

import (
	"context"
	"database/sql"
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
	var (
		i           store.Invitation
		id, org, by int64
		acceptedBy  sql.NullInt64
	)
	err := row.Scan(&id, &org, &i.Email, (*string)(&i.Role), &i.CodeHash, &by, at{&i.CreatedAt}, at{&i.ExpiresAt},
		at{&i.AcceptedAt}, &acceptedBy, at{&i.CancelledAt})
	i.ID, i.OrgID, i.InvitedBy, i.AcceptedBy = uint64(id), uint64(org), uint64(by), uint64(acceptedBy.Int64)
	return i, err
}

// CreateInvitation implements [store.Invitations].
func (s *Store) CreateInvitation(ctx context.Context, n store.NewInvitation) (store.Invitation, error) {
	if err := n.Validate(); err != nil {
		return store.Invitation{}, s.errf("create invitation: %w", err)
	}
	created, expires := Micro(n.CreatedAt), Micro(n.ExpiresAt)
	var id int64
	err := s.tx(ctx, func(tx Conn) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = ?", n.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", n.InvitedBy, "inviting user"); err != nil {
			return err
		}
		// An expired invitation for the same email gives way to the new one.
		_, err := tx.Exec(ctx, `UPDATE invitations SET cancelled_at = ?
			WHERE org_id = ? AND email_key = ? AND accepted_at IS NULL AND cancelled_at IS NULL AND expires_at <= ?`,
			s.ts(created), int64(n.OrgID), store.EmailKey(n.Email), s.ts(created))
		if err != nil {
			return fmt.Errorf("cancel expired invitations: %w", err)
		}
		err = tx.QueryRow(ctx, `INSERT INTO invitations
			(org_id, email, email_key, role, code_hash, invited_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			int64(n.OrgID), n.Email, store.EmailKey(n.Email), string(n.Role), n.CodeHash, int64(n.InvitedBy),
			s.ts(created), s.ts(expires)).Scan(&id)
		if s.d.IsUnique(err) {
			return fmt.Errorf("an open invitation for this email, or this code: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert invitation: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.Invitation{}, s.errf("create invitation to organization %d: %w", n.OrgID, err)
	}
	return store.Invitation{ID: uint64(id), OrgID: n.OrgID, Email: n.Email, Role: n.Role, CodeHash: n.CodeHash,
		InvitedBy: n.InvitedBy, CreatedAt: created, ExpiresAt: expires}, nil
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
	var inv store.Invitation
	err := s.tx(ctx, func(tx Conn) error {
		var err error
		inv, err = scanInvitation(tx.QueryRow(ctx,
			"SELECT "+invitationColumns+" FROM invitations WHERE id = ? AND org_id = ?"+s.d.ForUpdate, i, o))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read invitation: %w", err)
		}
		switch {
		case !inv.AcceptedAt.IsZero():
			return store.ErrInvitationUsed
		case !inv.CancelledAt.IsZero():
			return store.ErrInvitationCancelled
		}
		inv.CancelledAt = Micro(when)
		_, err = tx.Exec(ctx, "UPDATE invitations SET cancelled_at = ? WHERE id = ?", s.ts(when), i)
		return err
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
	inv, err := scanInvitation(tx.QueryRow(ctx,
		"SELECT "+invitationColumns+" FROM invitations WHERE code_hash = ?"+s.d.ForUpdate, codeHash))
	if errors.Is(err, sql.ErrNoRows) {
		return inv, fmt.Errorf("invitation: %w", store.ErrNotFound)
	}
	if err != nil {
		return inv, fmt.Errorf("read invitation: %w", err)
	}
	if err := inv.Acceptable(when); err != nil {
		return inv, fmt.Errorf("invitation %d: %w", inv.ID, err)
	}
	if emailKey != store.EmailKey(inv.Email) {
		return inv, fmt.Errorf("invitation %d: %w", inv.ID, store.ErrInvitationEmail)
	}
	return inv, nil
}

// accept makes the user a member through the locked invitation inv.
func (s *Store) accept(ctx context.Context, tx Conn, inv store.Invitation, userID uint64, when time.Time) (store.Invitation, error) {
	when = Micro(when)
	_, err := tx.Exec(ctx, "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
		int64(inv.OrgID), int64(userID), string(inv.Role), s.ts(when))
	if s.d.IsUnique(err) {
		return inv, fmt.Errorf("membership: %w", store.ErrExists)
	}
	if err != nil {
		return inv, fmt.Errorf("insert membership: %w", err)
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
	var inv store.Invitation
	err := s.tx(ctx, func(tx Conn) error {
		var key string
		err := tx.QueryRow(ctx, "SELECT email_key FROM users WHERE id = ?", u).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %d: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read user %d: %w", userID, err)
		}
		if inv, err = s.lockInvitation(ctx, tx, codeHash, key, when); err != nil {
			return err
		}
		inv, err = s.accept(ctx, tx, inv, userID, when)
		return err
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
	var (
		user store.User
		inv  store.Invitation
	)
	err := s.tx(ctx, func(tx Conn) error {
		// The invitation is checked before the user is inserted, so that a
		// wrong email is reported as such rather than as a taken one.
		var err error
		if inv, err = s.lockInvitation(ctx, tx, codeHash, store.EmailKey(nu.Email), nu.CreatedAt); err != nil {
			return err
		}
		if user, err = s.insertUser(ctx, tx, nu); err != nil {
			return err
		}
		inv, err = s.accept(ctx, tx, inv, user.ID, nu.CreatedAt)
		return err
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
		var (
			m    = store.Member{Membership: store.Membership{OrgID: orgID}}
			user int64
		)
		err := row.Scan(&user, (*string)(&m.Role), at{&m.CreatedAt}, &m.Email, at{&m.LastLoginAt})
		m.UserID = uint64(user)
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
	var toks []store.Token
	err := s.tx(ctx, func(tx Conn) error {
		// FOR UPDATE, not the FOR NO KEY UPDATE of role changes: see the
		// top of this file.
		if err := lockOrganization(ctx, tx, r.OrgID, s.d.ForUpdate); err != nil {
			return err
		}
		if _, err := s.leaveRole(ctx, tx, r.OrgID, r.UserID); err != nil {
			return err
		}
		if r.KeepTokensFor != 0 {
			if _, err := s.currentRole(ctx, tx, r.OrgID, r.KeepTokensFor); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("user %d, who would keep the tokens, is not a member: %w", r.KeepTokensFor, store.ErrInvalid)
			} else if err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM memberships WHERE org_id = ? AND user_id = ?", int64(r.OrgID), int64(r.UserID)); err != nil {
			return fmt.Errorf("delete membership: %w", err)
		}
		const mine = "org_id = ? AND created_by = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
		var (
			rows Rows
			err  error
		)
		if r.KeepTokensFor != 0 {
			rows, err = tx.Query(ctx, "UPDATE tokens SET created_by = ? WHERE "+mine+" RETURNING id",
				int64(r.KeepTokensFor), int64(r.OrgID), int64(r.UserID), s.ts(r.At))
		} else {
			rows, err = tx.Query(ctx, "UPDATE tokens SET revoked_at = ? WHERE "+mine+" RETURNING id",
				s.ts(r.At), int64(r.OrgID), int64(r.UserID), s.ts(r.At))
		}
		ids, err := collect(rows, err, scanString)
		if err != nil {
			return fmt.Errorf("update the member's tokens: %w", err)
		}
		if len(ids) == 0 {
			toks = []store.Token{}
			return nil
		}
		if r.KeepTokensFor == 0 {
			// The same feed entries as RevokeToken's, under its lock,
			// taken last (see RevokeToken), in the tokens' order.
			err := s.feed(ctx, tx, func() error {
				_, err := tx.Exec(ctx, `INSERT INTO revocations (token_id, org_id, revoked_at)
					SELECT id, org_id, revoked_at FROM tokens WHERE id `+s.d.AnyID+` ORDER BY created_at, id`, s.d.IDs(ids))
				return err
			})
			if err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, "SELECT "+TokenColumns+" FROM tokens WHERE id "+s.d.AnyID+" ORDER BY created_at, id", s.d.IDs(ids))
		if toks, err = collect(rows, err, ScanToken); err != nil {
			return fmt.Errorf("read the member's tokens: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, s.errf("remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	return toks, nil
}
