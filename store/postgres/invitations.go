package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Invitations and the member operations of teams. An invitation being
// accepted is locked (FOR UPDATE) so that two acceptances of one code
// serialise; a removal locks the organization's row FOR UPDATE, which also
// makes concurrent inserts of tokens of the organization (whose foreign key
// check takes FOR KEY SHARE on that row) wait for it, so that a token is
// either created before the removal, and revoked by it, or after it.

const invitationColumns = "id, org_id, email, role, code_hash, invited_by, created_at, expires_at, accepted_at, accepted_by, cancelled_at"

func scanInvitation(row pgx.Row) (store.Invitation, error) {
	var (
		i                store.Invitation
		id, org, by      int64
		role             string
		accepted, cancel pgtype.Timestamptz
		acceptedBy       pgtype.Int8
	)
	if err := row.Scan(&id, &org, &i.Email, &role, &i.CodeHash, &by, &i.CreatedAt, &i.ExpiresAt, &accepted, &acceptedBy, &cancel); err != nil {
		return store.Invitation{}, err
	}
	i.ID, i.OrgID, i.Role, i.InvitedBy = uint64(id), uint64(org), store.Role(role), uint64(by)
	i.CreatedAt, i.ExpiresAt = i.CreatedAt.UTC(), i.ExpiresAt.UTC()
	i.AcceptedAt, i.CancelledAt = fromNullTS(accepted), fromNullTS(cancel)
	if acceptedBy.Valid {
		i.AcceptedBy = uint64(acceptedBy.Int64)
	}
	return i, nil
}

// CreateInvitation implements [store.Invitations].
func (db *DB) CreateInvitation(ctx context.Context, n store.NewInvitation) (store.Invitation, error) {
	if err := n.Validate(); err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: create invitation: %w", err)
	}
	created, expires := ts(n.CreatedAt), ts(n.ExpiresAt)
	var id int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = $1", n.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = $1", n.InvitedBy, "inviting user"); err != nil {
			return err
		}
		// An expired invitation for the same email gives way to the new one.
		_, err := tx.Exec(ctx, `UPDATE invitations SET cancelled_at = $1
			WHERE org_id = $2 AND email_key = $3 AND accepted_at IS NULL AND cancelled_at IS NULL AND expires_at <= $1`,
			created, int64(n.OrgID), store.EmailKey(n.Email))
		if err != nil {
			return fmt.Errorf("cancel expired invitations: %w", err)
		}
		err = tx.QueryRow(ctx, `INSERT INTO invitations
			(org_id, email, email_key, role, code_hash, invited_by, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			int64(n.OrgID), n.Email, store.EmailKey(n.Email), string(n.Role), n.CodeHash, int64(n.InvitedBy), created, expires).Scan(&id)
		if isUnique(err) {
			return fmt.Errorf("an open invitation for this email, or this code: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert invitation: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: create invitation to organization %d: %w", n.OrgID, err)
	}
	return store.Invitation{ID: uint64(id), OrgID: n.OrgID, Email: n.Email, Role: n.Role, CodeHash: n.CodeHash,
		InvitedBy: n.InvitedBy, CreatedAt: created, ExpiresAt: expires}, nil
}

// GetInvitation implements [store.Invitations].
func (db *DB) GetInvitation(ctx context.Context, codeHash string) (store.Invitation, error) {
	if !storable(codeHash) {
		return store.Invitation{}, fmt.Errorf("postgres: get invitation: %w", store.ErrNotFound)
	}
	i, err := scanInvitation(db.pool.QueryRow(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = $1", codeHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Invitation{}, fmt.Errorf("postgres: get invitation: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: get invitation: %w", err)
	}
	return i, nil
}

// ListInvitations implements [store.Invitations].
func (db *DB) ListInvitations(ctx context.Context, orgID uint64) ([]store.Invitation, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Invitation{}, nil
	}
	rows, err := db.pool.Query(ctx, "SELECT "+invitationColumns+` FROM invitations
		WHERE org_id = $1 AND accepted_at IS NULL AND cancelled_at IS NULL ORDER BY created_at, id`, o)
	if err != nil {
		return nil, fmt.Errorf("postgres: list invitations of organization %d: %w", orgID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Invitation, error) { return scanInvitation(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list invitations of organization %d: %w", orgID, err)
	}
	return nonNil(out), nil
}

// CancelInvitation implements [store.Invitations].
func (db *DB) CancelInvitation(ctx context.Context, orgID, id uint64, at time.Time) (store.Invitation, error) {
	if err := store.CheckTime("cancelled at", at); err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: cancel invitation %d: %w", id, err)
	}
	o, ok1 := dbID(orgID)
	i, ok2 := dbID(id)
	if !ok1 || !ok2 {
		return store.Invitation{}, fmt.Errorf("postgres: cancel invitation %d of organization %d: %w", id, orgID, store.ErrNotFound)
	}
	var inv store.Invitation
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		inv, err = scanInvitation(tx.QueryRow(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE id = $1 AND org_id = $2 FOR UPDATE", i, o))
		if errors.Is(err, pgx.ErrNoRows) {
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
		inv.CancelledAt = ts(at)
		_, err = tx.Exec(ctx, "UPDATE invitations SET cancelled_at = $1 WHERE id = $2", ts(at), i)
		return err
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: cancel invitation %d of organization %d: %w", id, orgID, err)
	}
	return inv, nil
}

// lockInvitation reads the invitation with codeHash and locks it until the
// transaction ends, and checks that it may be accepted at at by a user
// with emailKey.
func lockInvitation(ctx context.Context, tx pgx.Tx, codeHash, emailKey string, at time.Time) (store.Invitation, error) {
	if !storable(codeHash) {
		return store.Invitation{}, fmt.Errorf("invitation: %w", store.ErrNotFound)
	}
	inv, err := scanInvitation(tx.QueryRow(ctx, "SELECT "+invitationColumns+" FROM invitations WHERE code_hash = $1 FOR UPDATE", codeHash))
	if errors.Is(err, pgx.ErrNoRows) {
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
	return inv, nil
}

// accept makes the user a member through the locked invitation inv.
func accept(ctx context.Context, tx pgx.Tx, inv store.Invitation, userID uint64, at time.Time) (store.Invitation, error) {
	at = ts(at)
	_, err := tx.Exec(ctx, "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
		int64(inv.OrgID), int64(userID), string(inv.Role), at)
	if isUnique(err) {
		return inv, fmt.Errorf("membership: %w", store.ErrExists)
	}
	if err != nil {
		return inv, fmt.Errorf("insert membership: %w", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE invitations SET accepted_at = $1, accepted_by = $2 WHERE id = $3",
		at, int64(userID), int64(inv.ID)); err != nil {
		return inv, fmt.Errorf("mark invitation accepted: %w", err)
	}
	inv.AcceptedAt, inv.AcceptedBy = at, userID
	return inv, nil
}

// AcceptInvitation implements [store.Invitations].
func (db *DB) AcceptInvitation(ctx context.Context, codeHash string, userID uint64, at time.Time) (store.Invitation, error) {
	if err := store.CheckTime("accepted at", at); err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: accept invitation: %w", err)
	}
	u, ok := dbID(userID)
	if !ok {
		return store.Invitation{}, fmt.Errorf("postgres: accept invitation: user %d: %w", userID, store.ErrNotFound)
	}
	var inv store.Invitation
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var key string
		err := tx.QueryRow(ctx, "SELECT email_key FROM users WHERE id = $1", u).Scan(&key)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %d: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read user %d: %w", userID, err)
		}
		if inv, err = lockInvitation(ctx, tx, codeHash, key, at); err != nil {
			return err
		}
		inv, err = accept(ctx, tx, inv, userID, at)
		return err
	})
	if err != nil {
		return store.Invitation{}, fmt.Errorf("postgres: accept invitation for user %d: %w", userID, err)
	}
	return inv, nil
}

// SignupWithInvitation implements [store.Invitations].
func (db *DB) SignupWithInvitation(ctx context.Context, codeHash string, nu store.NewUser) (store.User, store.Invitation, error) {
	if err := nu.Validate(); err != nil {
		return store.User{}, store.Invitation{}, fmt.Errorf("postgres: signup with invitation: %w", err)
	}
	var (
		user store.User
		inv  store.Invitation
	)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// The invitation is checked before the user is inserted, so that a
		// wrong email is reported as such rather than as a taken one.
		var err error
		if inv, err = lockInvitation(ctx, tx, codeHash, store.EmailKey(nu.Email), nu.CreatedAt); err != nil {
			return err
		}
		if user, err = insertUser(ctx, tx, nu); err != nil {
			return err
		}
		inv, err = accept(ctx, tx, inv, user.ID, nu.CreatedAt)
		return err
	})
	if err != nil {
		return store.User{}, store.Invitation{}, fmt.Errorf("postgres: signup with invitation: %w", err)
	}
	return user, inv, nil
}

// ListMemberDetails implements [store.Members].
func (db *DB) ListMemberDetails(ctx context.Context, orgID uint64) ([]store.Member, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Member{}, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT m.user_id, m.role, m.created_at, u.email, u.last_login_at
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1
		ORDER BY m.user_id`, o)
	if err != nil {
		return nil, fmt.Errorf("postgres: list members of organization %d: %w", orgID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Member, error) {
		var (
			m     = store.Member{Membership: store.Membership{OrgID: orgID}}
			user  int64
			role  string
			login pgtype.Timestamptz
		)
		if err := row.Scan(&user, &role, &m.CreatedAt, &m.Email, &login); err != nil {
			return store.Member{}, err
		}
		m.UserID, m.Role, m.CreatedAt, m.LastLoginAt = uint64(user), store.Role(role), m.CreatedAt.UTC(), fromNullTS(login)
		return m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list members of organization %d: %w", orgID, err)
	}
	return nonNil(out), nil
}

// RemoveMemberWithTokens implements [store.Members].
func (db *DB) RemoveMemberWithTokens(ctx context.Context, r store.Removal) ([]store.Token, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	var toks []store.Token
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE, not the FOR NO KEY UPDATE of role changes: see the
		// top of this file.
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE", r.OrgID, "organization"); err != nil {
			return err
		}
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
		if _, err := tx.Exec(ctx, "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", int64(r.OrgID), int64(r.UserID)); err != nil {
			return fmt.Errorf("delete membership: %w", err)
		}
		const mine = "org_id = $2 AND created_by = $3 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4)"
		var rows pgx.Rows
		if r.KeepTokensFor != 0 {
			rows, err = tx.Query(ctx, "UPDATE tokens SET created_by = $1 WHERE "+mine+" RETURNING id",
				int64(r.KeepTokensFor), int64(r.OrgID), int64(r.UserID), ts(r.At))
		} else {
			rows, err = tx.Query(ctx, "UPDATE tokens SET revoked_at = $1 WHERE "+mine+" RETURNING id",
				ts(r.At), int64(r.OrgID), int64(r.UserID), ts(r.At))
		}
		if err != nil {
			return fmt.Errorf("update the member's tokens: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
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
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", feedLock); err != nil {
				return fmt.Errorf("take the feed lock: %w", err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO revocations (token_id, org_id, revoked_at)
				SELECT id, org_id, revoked_at FROM tokens WHERE id = ANY($1) ORDER BY created_at, id`, ids)
			if err != nil {
				return fmt.Errorf("append to the revocation feed: %w", err)
			}
			if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", revocationChannel); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
		}
		rows, err = tx.Query(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE id = ANY($1) ORDER BY created_at, id", ids)
		if err != nil {
			return fmt.Errorf("read the member's tokens: %w", err)
		}
		toks, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Token, error) { return scanToken(row) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: remove user %d from organization %d: %w", r.UserID, r.OrgID, err)
	}
	return toks, nil
}
