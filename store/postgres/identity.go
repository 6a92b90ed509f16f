package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// CreateUser implements [store.Users].
func (db *DB) CreateUser(ctx context.Context, u store.NewUser) (store.User, error) {
	if err := u.Validate(); err != nil {
		return store.User{}, fmt.Errorf("postgres: create user: %w", err)
	}
	var user store.User
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		user, err = insertUser(ctx, tx, u)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: create user: %w", err)
	}
	return user, nil
}

// CreateUserWithOrganization implements [store.Users].
func (db *DB) CreateUserWithOrganization(ctx context.Context, s store.Signup) (store.User, store.Organization, error) {
	if err := s.Validate(); err != nil {
		return store.User{}, store.Organization{}, fmt.Errorf("postgres: create user with organization: %w", err)
	}
	var (
		user store.User
		org  store.Organization
	)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if s.FirstUserOnly {
			// The lock conflicts with inserts into users (and with
			// itself) until commit, so the test below still holds
			// when the insertion commits.
			if _, err := tx.Exec(ctx, "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("lock users: %w", err)
			}
			var any bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users)").Scan(&any); err != nil {
				return fmt.Errorf("count users: %w", err)
			}
			if any {
				return store.ErrNotFirst
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
		return store.User{}, store.Organization{}, fmt.Errorf("postgres: create user with organization: %w", err)
	}
	return user, org, nil
}

func insertUser(ctx context.Context, tx pgx.Tx, u store.NewUser) (store.User, error) {
	created := ts(u.CreatedAt)
	var id int64
	err := tx.QueryRow(ctx,
		"INSERT INTO users (email, email_key, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
		u.Email, store.EmailKey(u.Email), u.PasswordHash, created).Scan(&id)
	if isUnique(err) {
		return store.User{}, fmt.Errorf("email: %w", store.ErrExists)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("insert user: %w", err)
	}
	return store.User{ID: uint64(id), Email: u.Email, PasswordHash: u.PasswordHash, CreatedAt: created}, nil
}

const userColumns = "id, email, password_hash, created_at"

func scanUser(row pgx.Row) (store.User, error) {
	var (
		u  store.User
		id int64
	)
	if err := row.Scan(&id, &u.Email, &u.PasswordHash, &u.CreatedAt); err != nil {
		return store.User{}, err
	}
	u.ID, u.CreatedAt = uint64(id), u.CreatedAt.UTC()
	return u, nil
}

// GetUser implements [store.Users].
func (db *DB) GetUser(ctx context.Context, id uint64) (store.User, error) {
	dbid, ok := dbID(id)
	if !ok {
		return store.User{}, fmt.Errorf("postgres: get user %d: %w", id, store.ErrNotFound)
	}
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", dbid))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, fmt.Errorf("postgres: get user %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: get user %d: %w", id, err)
	}
	return u, nil
}

// GetUserByEmail implements [store.Users].
func (db *DB) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	if !storable(email) {
		return store.User{}, fmt.Errorf("postgres: get user by email: %w", store.ErrNotFound)
	}
	u, err := scanUser(db.pool.QueryRow(ctx,
		"SELECT "+userColumns+" FROM users WHERE email_key = $1", store.EmailKey(email)))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, fmt.Errorf("postgres: get user by email: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: get user by email: %w", err)
	}
	return u, nil
}

// SetPasswordHash implements [store.Users].
func (db *DB) SetPasswordHash(ctx context.Context, id uint64, hash string) error {
	if err := store.CheckPasswordHash(hash); err != nil {
		return fmt.Errorf("postgres: set password hash of user %d: %w", id, err)
	}
	dbid, ok := dbID(id)
	if !ok {
		return fmt.Errorf("postgres: set password hash of user %d: %w", id, store.ErrNotFound)
	}
	tag, err := db.pool.Exec(ctx, "UPDATE users SET password_hash = $1 WHERE id = $2", hash, dbid)
	if err != nil {
		return fmt.Errorf("postgres: set password hash of user %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: set password hash of user %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// CreateOrganization implements [store.Organizations].
func (db *DB) CreateOrganization(ctx context.Context, o store.NewOrganization) (store.Organization, error) {
	if err := o.Validate(); err != nil {
		return store.Organization{}, fmt.Errorf("postgres: create organization: %w", err)
	}
	var org store.Organization
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		org, err = insertOrganization(ctx, tx, o)
		return err
	})
	if err != nil {
		return store.Organization{}, fmt.Errorf("postgres: create organization %q: %w", o.Slug, err)
	}
	return org, nil
}

// insertOrganization inserts o and, when o.Admin is set, its admin
// membership.
func insertOrganization(ctx context.Context, tx pgx.Tx, o store.NewOrganization) (store.Organization, error) {
	created := ts(o.CreatedAt)
	if o.Admin != 0 {
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = $1", o.Admin, "admin user"); err != nil {
			return store.Organization{}, err
		}
	}
	var id int64
	err := tx.QueryRow(ctx, "INSERT INTO organizations (slug, created_at) VALUES ($1, $2) RETURNING id", o.Slug, created).Scan(&id)
	if isUnique(err) {
		return store.Organization{}, fmt.Errorf("organization slug: %w", store.ErrExists)
	}
	if err != nil {
		return store.Organization{}, fmt.Errorf("insert organization: %w", err)
	}
	if o.Admin != 0 {
		_, err := tx.Exec(ctx,
			"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
			id, int64(o.Admin), string(store.RoleAdmin), created)
		if err != nil {
			return store.Organization{}, fmt.Errorf("insert admin membership: %w", err)
		}
	}
	return store.Organization{ID: uint64(id), Slug: o.Slug, CreatedAt: created}, nil
}

const orgColumns = "id, slug, created_at"

func scanOrganization(row pgx.Row) (store.Organization, error) {
	var (
		o  store.Organization
		id int64
	)
	if err := row.Scan(&id, &o.Slug, &o.CreatedAt); err != nil {
		return store.Organization{}, err
	}
	o.ID, o.CreatedAt = uint64(id), o.CreatedAt.UTC()
	return o, nil
}

// GetOrganization implements [store.Organizations].
func (db *DB) GetOrganization(ctx context.Context, id uint64) (store.Organization, error) {
	dbid, ok := dbID(id)
	if !ok {
		return store.Organization{}, fmt.Errorf("postgres: get organization %d: %w", id, store.ErrNotFound)
	}
	o, err := scanOrganization(db.pool.QueryRow(ctx, "SELECT "+orgColumns+" FROM organizations WHERE id = $1", dbid))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Organization{}, fmt.Errorf("postgres: get organization %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Organization{}, fmt.Errorf("postgres: get organization %d: %w", id, err)
	}
	return o, nil
}

// GetOrganizationBySlug implements [store.Organizations].
func (db *DB) GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error) {
	if !storable(slug) {
		return store.Organization{}, fmt.Errorf("postgres: get organization %q: %w", slug, store.ErrNotFound)
	}
	o, err := scanOrganization(db.pool.QueryRow(ctx, "SELECT "+orgColumns+" FROM organizations WHERE slug = $1", slug))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Organization{}, fmt.Errorf("postgres: get organization %q: %w", slug, store.ErrNotFound)
	}
	if err != nil {
		return store.Organization{}, fmt.Errorf("postgres: get organization %q: %w", slug, err)
	}
	return o, nil
}

// AddMember implements [store.Organizations].
func (db *DB) AddMember(ctx context.Context, m store.Membership) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("postgres: add member: %w", err)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = $1", m.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = $1", m.UserID, "user"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
			int64(m.OrgID), int64(m.UserID), string(m.Role), ts(m.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("membership: %w", store.ErrExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: add user %d to organization %d: %w", m.UserID, m.OrgID, err)
	}
	return nil
}

// currentRole locks the organization and returns the member's role, or
// ErrNotFound.
func currentRole(ctx context.Context, tx pgx.Tx, orgID, userID uint64) (store.Role, error) {
	o, ok1 := dbID(orgID)
	u, ok2 := dbID(userID)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("membership: %w", store.ErrNotFound)
	}
	// Serialise the organization's role changes, so that two admins
	// stepping down at once cannot both see the other one staying.
	if err := lockOrganization(ctx, tx, orgID); err != nil {
		return "", err
	}
	var role string
	err := tx.QueryRow(ctx, "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2", o, u).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("membership: %w", store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read membership: %w", err)
	}
	return store.Role(role), nil
}

// requireOtherAdmin fails with ErrConflict unless the organization has an
// admin besides userID.
func requireOtherAdmin(ctx context.Context, tx pgx.Tx, orgID, userID uint64) error {
	var n int
	err := tx.QueryRow(ctx,
		"SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'admin' AND user_id <> $2",
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
		return fmt.Errorf("postgres: set role of user %d in organization %d: role %q: %w", userID, orgID, role, store.ErrInvalid)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
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
		_, err = tx.Exec(ctx, "UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3",
			string(role), int64(orgID), int64(userID))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set role of user %d in organization %d: %w", userID, orgID, err)
	}
	return nil
}

// RemoveMember implements [store.Organizations].
func (db *DB) RemoveMember(ctx context.Context, orgID, userID uint64) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		cur, err := currentRole(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if cur == store.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", int64(orgID), int64(userID))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: remove user %d from organization %d: %w", userID, orgID, err)
	}
	return nil
}

// GetMembership implements [store.Organizations].
func (db *DB) GetMembership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	o, ok1 := dbID(orgID)
	u, ok2 := dbID(userID)
	if !ok1 || !ok2 {
		return store.Membership{}, fmt.Errorf("postgres: get membership of user %d in organization %d: %w", userID, orgID, store.ErrNotFound)
	}
	m := store.Membership{OrgID: orgID, UserID: userID}
	var role string
	err := db.pool.QueryRow(ctx,
		"SELECT role, created_at FROM memberships WHERE org_id = $1 AND user_id = $2", o, u).Scan(&role, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Membership{}, fmt.Errorf("postgres: get membership of user %d in organization %d: %w", userID, orgID, store.ErrNotFound)
	}
	if err != nil {
		return store.Membership{}, fmt.Errorf("postgres: get membership of user %d in organization %d: %w", userID, orgID, err)
	}
	m.Role, m.CreatedAt = store.Role(role), m.CreatedAt.UTC()
	return m, nil
}

// ListMembers implements [store.Organizations].
func (db *DB) ListMembers(ctx context.Context, orgID uint64) ([]store.Membership, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Membership{}, nil
	}
	rows, err := db.pool.Query(ctx,
		"SELECT user_id, role, created_at FROM memberships WHERE org_id = $1 ORDER BY user_id", o)
	if err != nil {
		return nil, fmt.Errorf("postgres: list members of organization %d: %w", orgID, err)
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Membership, error) {
		var (
			m    = store.Membership{OrgID: orgID}
			user int64
			role string
		)
		if err := row.Scan(&user, &role, &m.CreatedAt); err != nil {
			return store.Membership{}, err
		}
		m.UserID, m.Role, m.CreatedAt = uint64(user), store.Role(role), m.CreatedAt.UTC()
		return m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list members of organization %d: %w", orgID, err)
	}
	return nonNil(ms), nil
}

// ListUserOrganizations implements [store.Organizations].
func (db *DB) ListUserOrganizations(ctx context.Context, userID uint64) ([]store.OrganizationRole, error) {
	u, ok := dbID(userID)
	if !ok {
		return []store.OrganizationRole{}, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT o.id, o.slug, o.created_at, m.role
		FROM memberships m JOIN organizations o ON o.id = m.org_id
		WHERE m.user_id = $1
		ORDER BY o.id`, u)
	if err != nil {
		return nil, fmt.Errorf("postgres: list organizations of user %d: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.OrganizationRole, error) {
		var (
			or   store.OrganizationRole
			id   int64
			role string
		)
		if err := row.Scan(&id, &or.Slug, &or.CreatedAt, &role); err != nil {
			return store.OrganizationRole{}, err
		}
		or.ID, or.CreatedAt, or.Role = uint64(id), or.CreatedAt.UTC(), store.Role(role)
		return or, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list organizations of user %d: %w", userID, err)
	}
	return nonNil(out), nil
}

// CreateSession implements [store.Sessions].
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = $1", s.UserID, "user"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			"INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
			s.ID, int64(s.UserID), ts(s.CreatedAt), ts(s.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("session id: %w", store.ErrExists)
		}
		if err != nil {
			return err
		}
		// A session is a login: the member list shows the latest.
		_, err = tx.Exec(ctx, "UPDATE users SET last_login_at = GREATEST(last_login_at, $1) WHERE id = $2",
			ts(s.CreatedAt), int64(s.UserID))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create session for user %d: %w", s.UserID, err)
	}
	return nil
}

// GetSession implements [store.Sessions].
func (db *DB) GetSession(ctx context.Context, id string) (store.Session, error) {
	if !storable(id) {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", store.ErrNotFound)
	}
	var (
		s       = store.Session{ID: id}
		user    int64
		revoked pgtype.Timestamptz
	)
	err := db.pool.QueryRow(ctx,
		"SELECT user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1", id).
		Scan(&user, &s.CreatedAt, &s.ExpiresAt, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", err)
	}
	s.UserID = uint64(user)
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC(), fromNullTS(revoked)
	return s, nil
}

// RevokeSession implements [store.Sessions].
func (db *DB) RevokeSession(ctx context.Context, id string, at time.Time) (bool, error) {
	if err := store.CheckTime("revoked at", at); err != nil {
		return false, fmt.Errorf("postgres: revoke session: %w", err)
	}
	if !storable(id) {
		return false, fmt.Errorf("postgres: revoke session: %w", store.ErrNotFound)
	}
	var revoked bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", ts(at), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			revoked = true
			return nil
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1)", id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: revoke session: %w", err)
	}
	return revoked, nil
}

// RevokeUserSessions implements [store.Sessions].
func (db *DB) RevokeUserSessions(ctx context.Context, userID uint64, at time.Time) (int, error) {
	if err := store.CheckTime("revoked at", at); err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of user %d: %w", userID, err)
	}
	u, ok := dbID(userID)
	if !ok {
		return 0, nil
	}
	tag, err := db.pool.Exec(ctx, "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL", ts(at), u)
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of user %d: %w", userID, err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteExpiredSessions implements [store.Sessions].
func (db *DB) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	if err := store.CheckTime("before", before); err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	tag, err := db.pool.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= $1", ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// storable reports whether s can be a text parameter. PostgreSQL refuses
// NUL and invalid UTF-8 with an error; since the store never stores such
// text, lookups of it answer ErrNotFound without asking.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// nonNil turns a nil result into an empty list.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
