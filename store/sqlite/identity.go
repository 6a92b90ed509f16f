package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// CreateUser implements [store.Users].
func (db *DB) CreateUser(ctx context.Context, u store.NewUser) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, fmt.Errorf("sqlite: create user: %w", err)
	}
	var user store.User
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		user, err = insertUser(ctx, tx, u)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: create user: %w", err)
	}
	return user, nil
}

// CreateUserWithOrganization implements [store.Users].
func (db *DB) CreateUserWithOrganization(ctx context.Context, s store.Signup) (store.User, store.Organization, error) {
	if err := s.Validate(); err != nil {
		return store.User{}, store.Organization{}, fmt.Errorf("sqlite: create user with organization: %w", err)
	}
	var (
		user store.User
		org  store.Organization
	)
	// The single writer makes the first-user test and the insertion one
	// step: no other write can come between them.
	err := db.write(ctx, func(tx *sql.Tx) error {
		if s.FirstUserOnly {
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM users LIMIT 1").Scan(&one)
			if err == nil {
				return store.ErrNotFirst
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("count users: %w", err)
			}
		}
		var err error
		if user, err = insertUser(ctx, tx, s.User); err != nil {
			return err
		}
		org, err = insertOrganization(ctx, tx, store.NewOrganization{
			Slug:      s.OrganizationSlug,
			Admin:     user.ID,
			CreatedAt: s.User.CreatedAt,
		})
		return err
	})
	if err != nil {
		return store.User{}, store.Organization{}, fmt.Errorf("sqlite: create user with organization: %w", err)
	}
	return user, org, nil
}

func insertUser(ctx context.Context, tx *sql.Tx, u store.NewUser) (store.User, error) {
	created := u.CreatedAt.UTC().Truncate(time.Microsecond)
	res, err := tx.ExecContext(ctx,
		"INSERT INTO users (email, email_key, password_hash, created_at) VALUES (?, ?, ?, ?)",
		u.Email, store.EmailKey(u.Email), u.PasswordHash, ts(created))
	if isUnique(err) {
		return store.User{}, fmt.Errorf("email: %w", store.ErrExists)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("insert user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return store.User{}, fmt.Errorf("insert user: %w", err)
	}
	return store.User{ID: uint64(id), Email: u.Email, PasswordHash: u.PasswordHash, CreatedAt: created}, nil
}

const userColumns = "id, email, password_hash, created_at"

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var (
		u       store.User
		id      int64
		created int64
	)
	if err := row.Scan(&id, &u.Email, &u.PasswordHash, &created); err != nil {
		return store.User{}, err
	}
	u.ID, u.CreatedAt = uint64(id), fromTS(created)
	return u, nil
}

// GetUser implements [store.Users].
func (db *DB) GetUser(ctx context.Context, id uint64) (store.User, error) {
	dbid, ok := dbID(id)
	if !ok {
		return store.User{}, fmt.Errorf("sqlite: get user %d: %w", id, store.ErrNotFound)
	}
	u, err := scanUser(db.r.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", dbid))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("sqlite: get user %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user %d: %w", id, err)
	}
	return u, nil
}

// GetUserByEmail implements [store.Users].
func (db *DB) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx,
		"SELECT "+userColumns+" FROM users WHERE email_key = ?", store.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("sqlite: get user by email: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user by email: %w", err)
	}
	return u, nil
}

// SetPasswordHash implements [store.Users].
func (db *DB) SetPasswordHash(ctx context.Context, id uint64, hash string) error {
	if err := store.CheckPasswordHash(hash); err != nil {
		return fmt.Errorf("sqlite: set password hash of user %d: %w", id, err)
	}
	dbid, ok := dbID(id)
	if !ok {
		return fmt.Errorf("sqlite: set password hash of user %d: %w", id, store.ErrNotFound)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, dbid)
		if err != nil {
			return err
		}
		n, err := rowsAffected(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set password hash of user %d: %w", id, err)
	}
	return nil
}

// CreateOrganization implements [store.Organizations].
func (db *DB) CreateOrganization(ctx context.Context, o store.NewOrganization) (store.Organization, error) {
	if err := o.Validate(); err != nil {
		return store.Organization{}, fmt.Errorf("sqlite: create organization: %w", err)
	}
	var org store.Organization
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		org, err = insertOrganization(ctx, tx, o)
		return err
	})
	if err != nil {
		return store.Organization{}, fmt.Errorf("sqlite: create organization %q: %w", o.Slug, err)
	}
	return org, nil
}

// insertOrganization inserts o and, when o.Admin is set, its admin
// membership.
func insertOrganization(ctx context.Context, tx *sql.Tx, o store.NewOrganization) (store.Organization, error) {
	created := o.CreatedAt.UTC().Truncate(time.Microsecond)
	if o.Admin != 0 {
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", o.Admin, "admin user"); err != nil {
			return store.Organization{}, err
		}
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO organizations (slug, created_at) VALUES (?, ?)", o.Slug, ts(created))
	if isUnique(err) {
		return store.Organization{}, fmt.Errorf("organization slug: %w", store.ErrExists)
	}
	if err != nil {
		return store.Organization{}, fmt.Errorf("insert organization: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return store.Organization{}, fmt.Errorf("insert organization: %w", err)
	}
	if o.Admin != 0 {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
			id, int64(o.Admin), string(store.RoleAdmin), ts(created))
		if err != nil {
			return store.Organization{}, fmt.Errorf("insert admin membership: %w", err)
		}
	}
	return store.Organization{ID: uint64(id), Slug: o.Slug, CreatedAt: created}, nil
}

// requireRow fails with ErrNotFound, naming what, unless query with id
// finds a row.
func requireRow(ctx context.Context, q queryer, query string, id uint64, what string) error {
	dbid, ok := dbID(id)
	if !ok {
		return fmt.Errorf("%s %d: %w", what, id, store.ErrNotFound)
	}
	var one int
	err := q.QueryRowContext(ctx, query, dbid).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %d: %w", what, id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("look up %s %d: %w", what, id, err)
	}
	return nil
}

const orgColumns = "id, slug, created_at"

func scanOrganization(row interface{ Scan(...any) error }) (store.Organization, error) {
	var (
		o       store.Organization
		id      int64
		created int64
	)
	if err := row.Scan(&id, &o.Slug, &created); err != nil {
		return store.Organization{}, err
	}
	o.ID, o.CreatedAt = uint64(id), fromTS(created)
	return o, nil
}

// GetOrganization implements [store.Organizations].
func (db *DB) GetOrganization(ctx context.Context, id uint64) (store.Organization, error) {
	dbid, ok := dbID(id)
	if !ok {
		return store.Organization{}, fmt.Errorf("sqlite: get organization %d: %w", id, store.ErrNotFound)
	}
	o, err := scanOrganization(db.r.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organizations WHERE id = ?", dbid))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Organization{}, fmt.Errorf("sqlite: get organization %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Organization{}, fmt.Errorf("sqlite: get organization %d: %w", id, err)
	}
	return o, nil
}

// GetOrganizationBySlug implements [store.Organizations].
func (db *DB) GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error) {
	o, err := scanOrganization(db.r.QueryRowContext(ctx, "SELECT "+orgColumns+" FROM organizations WHERE slug = ?", slug))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Organization{}, fmt.Errorf("sqlite: get organization %q: %w", slug, store.ErrNotFound)
	}
	if err != nil {
		return store.Organization{}, fmt.Errorf("sqlite: get organization %q: %w", slug, err)
	}
	return o, nil
}

// AddMember implements [store.Organizations].
func (db *DB) AddMember(ctx context.Context, m store.Membership) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("sqlite: add member: %w", err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = ?", m.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", m.UserID, "user"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
			int64(m.OrgID), int64(m.UserID), string(m.Role), ts(m.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("membership: %w", store.ErrExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: add user %d to organization %d: %w", m.UserID, m.OrgID, err)
	}
	return nil
}

// currentRole returns a member's role, or ErrNotFound.
func currentRole(ctx context.Context, tx *sql.Tx, orgID, userID uint64) (store.Role, error) {
	o, ok1 := dbID(orgID)
	u, ok2 := dbID(userID)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("membership: %w", store.ErrNotFound)
	}
	var role string
	err := tx.QueryRowContext(ctx, "SELECT role FROM memberships WHERE org_id = ? AND user_id = ?", o, u).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("membership: %w", store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read membership: %w", err)
	}
	return store.Role(role), nil
}

// requireOtherAdmin fails with ErrConflict unless the organization has an
// admin besides userID.
func requireOtherAdmin(ctx context.Context, tx *sql.Tx, orgID, userID uint64) error {
	var n int
	err := tx.QueryRowContext(ctx,
		"SELECT count(*) FROM memberships WHERE org_id = ? AND role = 'admin' AND user_id <> ?",
		int64(orgID), int64(userID)).Scan(&n)
	if err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("the organization's last admin: %w", store.ErrConflict)
	}
	return nil
}

// SetMemberRole implements [store.Organizations].
func (db *DB) SetMemberRole(ctx context.Context, orgID, userID uint64, role store.Role) error {
	if !role.Valid() {
		return fmt.Errorf("sqlite: set role of user %d in organization %d: role %q: %w", userID, orgID, role, store.ErrInvalid)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := currentRole(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if cur == role {
			return nil
		}
		if cur == store.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?",
			string(role), int64(orgID), int64(userID))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set role of user %d in organization %d: %w", userID, orgID, err)
	}
	return nil
}

// RemoveMember implements [store.Organizations].
func (db *DB) RemoveMember(ctx context.Context, orgID, userID uint64) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		cur, err := currentRole(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if cur == store.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM memberships WHERE org_id = ? AND user_id = ?", int64(orgID), int64(userID))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: remove user %d from organization %d: %w", userID, orgID, err)
	}
	return nil
}

// GetMembership implements [store.Organizations].
func (db *DB) GetMembership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	o, ok1 := dbID(orgID)
	u, ok2 := dbID(userID)
	if !ok1 || !ok2 {
		return store.Membership{}, fmt.Errorf("sqlite: get membership of user %d in organization %d: %w", userID, orgID, store.ErrNotFound)
	}
	var (
		role    string
		created int64
	)
	err := db.r.QueryRowContext(ctx,
		"SELECT role, created_at FROM memberships WHERE org_id = ? AND user_id = ?", o, u).Scan(&role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Membership{}, fmt.Errorf("sqlite: get membership of user %d in organization %d: %w", userID, orgID, store.ErrNotFound)
	}
	if err != nil {
		return store.Membership{}, fmt.Errorf("sqlite: get membership of user %d in organization %d: %w", userID, orgID, err)
	}
	return store.Membership{OrgID: orgID, UserID: userID, Role: store.Role(role), CreatedAt: fromTS(created)}, nil
}

// ListMembers implements [store.Organizations].
func (db *DB) ListMembers(ctx context.Context, orgID uint64) ([]store.Membership, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Membership{}, nil
	}
	rows, err := db.r.QueryContext(ctx,
		"SELECT user_id, role, created_at FROM memberships WHERE org_id = ? ORDER BY user_id", o)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list members of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	ms := []store.Membership{}
	for rows.Next() {
		var (
			user    int64
			role    string
			created int64
		)
		if err := rows.Scan(&user, &role, &created); err != nil {
			return nil, fmt.Errorf("sqlite: list members of organization %d: %w", orgID, err)
		}
		ms = append(ms, store.Membership{OrgID: orgID, UserID: uint64(user), Role: store.Role(role), CreatedAt: fromTS(created)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list members of organization %d: %w", orgID, err)
	}
	return ms, nil
}

// ListUserOrganizations implements [store.Organizations].
func (db *DB) ListUserOrganizations(ctx context.Context, userID uint64) ([]store.OrganizationRole, error) {
	u, ok := dbID(userID)
	if !ok {
		return []store.OrganizationRole{}, nil
	}
	rows, err := db.r.QueryContext(ctx, `
		SELECT o.id, o.slug, o.created_at, m.role
		FROM memberships m JOIN organizations o ON o.id = m.org_id
		WHERE m.user_id = ?
		ORDER BY o.id`, u)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list organizations of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := []store.OrganizationRole{}
	for rows.Next() {
		var (
			id      int64
			or      store.OrganizationRole
			created int64
			role    string
		)
		if err := rows.Scan(&id, &or.Slug, &created, &role); err != nil {
			return nil, fmt.Errorf("sqlite: list organizations of user %d: %w", userID, err)
		}
		or.ID, or.CreatedAt, or.Role = uint64(id), fromTS(created), store.Role(role)
		out = append(out, or)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list organizations of user %d: %w", userID, err)
	}
	return out, nil
}

// CreateSession implements [store.Sessions].
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", s.UserID, "user"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			"INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
			s.ID, int64(s.UserID), ts(s.CreatedAt), ts(s.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("session id: %w", store.ErrExists)
		}
		if err != nil {
			return err
		}
		// A session is a login: the member list shows the latest.
		_, err = tx.ExecContext(ctx, "UPDATE users SET last_login_at = max(coalesce(last_login_at, ?1), ?1) WHERE id = ?2",
			ts(s.CreatedAt), int64(s.UserID))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create session for user %d: %w", s.UserID, err)
	}
	return nil
}

// GetSession implements [store.Sessions].
func (db *DB) GetSession(ctx context.Context, id string) (store.Session, error) {
	var (
		s                store.Session
		user             int64
		created, expires int64
		revoked          sql.NullInt64
	)
	err := db.r.QueryRowContext(ctx,
		"SELECT user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?", id).
		Scan(&user, &created, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("sqlite: get session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: get session: %w", err)
	}
	s.ID, s.UserID = id, uint64(user)
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = fromTS(created), fromTS(expires), fromNullTS(revoked)
	return s, nil
}

// RevokeSession implements [store.Sessions].
func (db *DB) RevokeSession(ctx context.Context, id string, at time.Time) (bool, error) {
	if err := store.CheckTime("revoked at", at); err != nil {
		return false, fmt.Errorf("sqlite: revoke session: %w", err)
	}
	var revoked bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", ts(at), id)
		if err != nil {
			return err
		}
		n, err := rowsAffected(res)
		if err != nil {
			return err
		}
		if n == 1 {
			revoked = true
			return nil
		}
		var one int
		err = tx.QueryRowContext(ctx, "SELECT 1 FROM sessions WHERE id = ?", id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: revoke session: %w", err)
	}
	return revoked, nil
}

// RevokeUserSessions implements [store.Sessions].
func (db *DB) RevokeUserSessions(ctx context.Context, userID uint64, at time.Time) (int, error) {
	if err := store.CheckTime("revoked at", at); err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of user %d: %w", userID, err)
	}
	u, ok := dbID(userID)
	if !ok {
		return 0, nil
	}
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", ts(at), u)
		if err != nil {
			return err
		}
		n, err = rowsAffected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of user %d: %w", userID, err)
	}
	return int(n), nil
}

// DeleteExpiredSessions implements [store.Sessions].
func (db *DB) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	if err := store.CheckTime("before", before); err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at <= ?", ts(before))
		if err != nil {
			return err
		}
		n, err = rowsAffected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	return int(n), nil
}
