package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// Invitations and the member operations of teams. Every write goes through
// the single writer, so each method's reads still hold when it commits.

const invitationColumns = "id, org_id, email, role, code_hash, invited_by, created_at, expires_at, accepted_at, accepted_by, cancelled_at"

func scanInvitation(row interface{ Scan(...any) error }) (store.Invitation, error) {
	var (
		i                          store.Invitation
		id, org, by                int64
		role                       string
		created, expires           int64
		accepted, acceptedBy, canc sql.NullInt64
	)
	if err := row.Scan(&id, &org, &i.Email, &role, &i.CodeHash, &by, &created, &expires, &accepted, &acceptedBy, &canc); err != nil {
		return store.Invitation{}, err
	}
	i.ID, i.OrgID, i.Role, i.InvitedBy = uint64(id), uint64(org), store.Role(role), uint64(by)
	i.CreatedAt, i.ExpiresAt = fromTS(created), fromTS(expires)
	i.AcceptedAt, i.CancelledAt = fromNullTS(accepted), fromNullTS(canc)
	if acceptedBy.Valid {
		i.AcceptedBy = uint64(acceptedBy.Int64)
	}
	return i, nil
}

// CreateInvitation implements [store.Invitations].
func (db *DB) CreateInvitation(ctx context.Context, n store.NewInvitation) (store.Invitation, error) {
	if err := n.Validate(); err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: create invitation: %w", err)
	}
	created := n.CreatedAt.UTC().Truncate(time.Microsecond)
	expires := n.ExpiresAt.UTC().Truncate(time.Microsecond)
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = ?", n.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", n.InvitedBy, "inviting user"); err != nil {
			return err
		}
		// An expired invitation for the same email gives way to the new one.
		_, err := tx.ExecContext(ctx, `UPDATE invitations SET cancelled_at = ?
			WHERE org_id = ? AND email_key = ? AND accepted_at IS NULL AND cancelled_at IS NULL AND expires_at <= ?`,
			ts(created), int64(n.OrgID), store.EmailKey(n.Email), ts(created))
		if err != nil {
			return fmt.Errorf("cancel expired invitations: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO invitations
			(org_id, email, email_key, role, code_hash, invited_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			int64(n.OrgID), n.Email, store.EmailKey(n.Email), string(n.Role), n.CodeHash, int64(n.InvitedBy), ts(created), ts(expires))
		if isUnique(err) {
			return fmt.Errorf("an open invitation for this email, or this code: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert invitation: %w", err)
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: create invitation to organization %d: %w", n.OrgID, err)
	}
	return store.Invitation{ID: uint64(id), OrgID: n.OrgID, Email: n.Email, Role: n.Role, CodeHash: n.CodeHash,
		InvitedBy: n.InvitedBy, CreatedAt: created, ExpiresAt: expires}, nil
}

// GetInvitation implements [store.Invitations].
func (db *DB) GetInvitation(ctx context.Context, codeHash string) (store.Invitation, error) {
	i, err := scanInvitation(db.r.QueryRowContext(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = ?", codeHash))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Invitation{}, fmt.Errorf("sqlite: get invitation: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: get invitation: %w", err)
	}
	return i, nil
}

// ListInvitations implements [store.Invitations].
func (db *DB) ListInvitations(ctx context.Context, orgID uint64) ([]store.Invitation, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Invitation{}, nil
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+invitationColumns+` FROM invitations
		WHERE org_id = ? AND accepted_at IS NULL AND cancelled_at IS NULL ORDER BY created_at, id`, o)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list invitations of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	out := []store.Invitation{}
	for rows.Next() {
		i, err := scanInvitation(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list invitations of organization %d: %w", orgID, err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list invitations of organization %d: %w", orgID, err)
	}
	return out, nil
}

// CancelInvitation implements [store.Invitations].
func (db *DB) CancelInvitation(ctx context.Context, orgID, id uint64, at time.Time) (store.Invitation, error) {
	if err := store.CheckTime("cancelled at", at); err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: cancel invitation %d: %w", id, err)
	}
	o, ok1 := dbID(orgID)
	i, ok2 := dbID(id)
	if !ok1 || !ok2 {
		return store.Invitation{}, fmt.Errorf("sqlite: cancel invitation %d of organization %d: %w", id, orgID, store.ErrNotFound)
	}
	var inv store.Invitation
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		inv, err = scanInvitation(tx.QueryRowContext(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE id = ? AND org_id = ?", i, o))
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
		inv.CancelledAt = at.UTC().Truncate(time.Microsecond)
		_, err = tx.ExecContext(ctx, "UPDATE invitations SET cancelled_at = ? WHERE id = ?", ts(at), i)
		return err
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: cancel invitation %d of organization %d: %w", id, orgID, err)
	}
	return inv, nil
}

// accept makes the user with emailKey a member through the invitation
// with codeHash, at at, in tx.
func accept(ctx context.Context, tx *sql.Tx, codeHash string, userID uint64, emailKey string, at time.Time) (store.Invitation, error) {
	inv, err := scanInvitation(tx.QueryRowContext(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = ?", codeHash))
	if errors.Is(err, sql.ErrNoRows) {
		return inv, fmt.Errorf("invitation: %w", store.ErrNotFound)
	}
	if err != nil {
		return inv, fmt.Errorf("read invitation: %w", err)
	}
	if err := inv.Acceptable(at); err != nil {
		return inv, fmt.Errorf("invitation %d: %w", inv.ID, err)
	}
	if emailKey != store.EmailKey(inv.Email) {
		return inv, fmt.Errorf("invitation %d: %w", inv.ID, store.ErrInvitationEmail)
	}
	at = at.UTC().Truncate(time.Microsecond)
	_, err = tx.ExecContext(ctx, "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
		int64(inv.OrgID), int64(userID), string(inv.Role), ts(at))
	if isUnique(err) {
		return inv, fmt.Errorf("membership: %w", store.ErrExists)
	}
	if err != nil {
		return inv, fmt.Errorf("insert membership: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE invitations SET accepted_at = ?, accepted_by = ? WHERE id = ?",
		ts(at), int64(userID), int64(inv.ID)); err != nil {
		return inv, fmt.Errorf("mark invitation accepted: %w", err)
	}
	inv.AcceptedAt, inv.AcceptedBy = at, userID
	return inv, nil
}

// AcceptInvitation implements [store.Invitations].
func (db *DB) AcceptInvitation(ctx context.Context, codeHash string, userID uint64, at time.Time) (store.Invitation, error) {
	if err := store.CheckTime("accepted at", at); err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: accept invitation: %w", err)
	}
	u, ok := dbID(userID)
	if !ok {
		return store.Invitation{}, fmt.Errorf("sqlite: accept invitation: user %d: %w", userID, store.ErrNotFound)
	}
	var inv store.Invitation
	err := db.write(ctx, func(tx *sql.Tx) error {
		var key string
		err := tx.QueryRowContext(ctx, "SELECT email_key FROM users WHERE id = ?", u).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %d: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read user %d: %w", userID, err)
		}
		inv, err = accept(ctx, tx, codeHash, userID, key, at)
		return err
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("sqlite: accept invitation for user %d: %w", userID, err)
	}
	return inv, nil
}

// SignupWithInvitation implements [store.Invitations].
func (db *DB) SignupWithInvitation(ctx context.Context, codeHash string, nu store.NewUser) (store.User, store.Invitation, error) {
	if err := nu.Validate(); err != nil {
		return store.User{}, store.Invitation{}, fmt.Errorf("sqlite: signup with invitation: %w", err)
	}
	var (
		user store.User
		inv  store.Invitation
	)
	err := db.write(ctx, func(tx *sql.Tx) error {
		// The invitation is checked before the user is inserted, so that a
		// wrong email is reported as such rather than as a taken one.
		cur, err := scanInvitation(tx.QueryRowContext(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = ?", codeHash))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("invitation: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read invitation: %w", err)
		}
		if err := cur.Acceptable(nu.CreatedAt); err != nil {
			return fmt.Errorf("invitation %d: %w", cur.ID, err)
		}
		if store.EmailKey(nu.Email) != store.EmailKey(cur.Email) {
			return fmt.Errorf("invitation %d: %w", cur.ID, store.ErrInvitationEmail)
		}
		if user, err = insertUser(ctx, tx, nu); err != nil {
			return err
		}
		inv, err = accept(ctx, tx, codeHash, user.ID, store.EmailKey(nu.Email), nu.CreatedAt)
		return err
	})
	if err != nil {
		return store.User{}, store.Invitation{}, fmt.Errorf("sqlite: signup with invitation: %w", err)
	}
	return user, inv, nil
}

// ListMemberDetails implements [store.Members].
func (db *DB) ListMemberDetails(ctx context.Context, orgID uint64) ([]store.Member, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Member{}, nil
	}
	rows, err := db.r.QueryContext(ctx, `
		SELECT m.user_id, m.role, m.created_at, u.email, u.last_login_at
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = ?
		ORDER BY m.user_id`, o)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list members of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	out := []store.Member{}
	for rows.Next() {
		var (
			m       = store.Member{Membership: store.Membership{OrgID: orgID}}
			user    int64
			role    string
			created int64
			login   sql.NullInt64
		)
		if err := rows.Scan(&user, &role, &created, &m.Email, &login); err != nil {
			return nil, fmt.Errorf("sqlite: list members of organization %d: %w", orgID, err)
		}
		m.UserID, m.Role, m.CreatedAt, m.LastLoginAt = uint64(user), store.Role(role), fromTS(created), fromNullTS(login)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list members of organization %d: %w", orgID, err)
	}
	return out, nil
}

// RemoveMemberWithTokens implements [store.Members].
func (db *DB) RemoveMemberWithTokens(ctx context.Context, r store.Removal) ([]store.Token, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite: remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	var toks []store.Token
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := currentRole(ctx, tx, r.OrgID, r.UserID)
		if err != nil {
			return err
		}
		if cur == store.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, r.OrgID, r.UserID); err != nil {
				return err
			}
		}
		if r.KeepTokensFor != 0 {
			if _, err := currentRole(ctx, tx, r.OrgID, r.KeepTokensFor); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("user %d, who would keep the tokens, is not a member: %w", r.KeepTokensFor, store.ErrInvalid)
			} else if err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM memberships WHERE org_id = ? AND user_id = ?", int64(r.OrgID), int64(r.UserID)); err != nil {
			return fmt.Errorf("delete membership: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM tokens
			WHERE org_id = ? AND created_by = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
			ORDER BY created_at, id`, int64(r.OrgID), int64(r.UserID), ts(r.At))
		if err != nil {
			return fmt.Errorf("find the member's tokens: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("find the member's tokens: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find the member's tokens: %w", err)
		}
		toks = make([]store.Token, 0, len(ids))
		for _, id := range ids {
			if r.KeepTokensFor != 0 {
				if _, err := tx.ExecContext(ctx, "UPDATE tokens SET created_by = ? WHERE id = ?", int64(r.KeepTokensFor), id); err != nil {
					return fmt.Errorf("reassign token %s: %w", id, err)
				}
			} else {
				if _, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = ? WHERE id = ?", ts(r.At), id); err != nil {
					return fmt.Errorf("revoke token %s: %w", id, err)
				}
				// The same feed entry as RevokeToken's, so that every
				// replica's cache forgets the token.
				if _, err := tx.ExecContext(ctx, "INSERT INTO revocations (token_id, org_id, revoked_at) VALUES (?, ?, ?)",
					id, int64(r.OrgID), ts(r.At)); err != nil {
					return fmt.Errorf("append token %s to the revocation feed: %w", id, err)
				}
			}
			t, err := scanToken(tx.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE id = ?", id))
			if err != nil {
				return fmt.Errorf("read token %s: %w", id, err)
			}
			toks = append(toks, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	return toks, nil
}
