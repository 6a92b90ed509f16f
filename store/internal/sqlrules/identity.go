package sqlrules

import (
	"context"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// The identity accounts: users, organizations, memberships and sessions.

// CreateUser implements [store.Users].
func (s *Store) CreateUser(ctx context.Context, u store.NewUser) (store.User, error) {
	return create(ctx, s, "", u.Validate(), nil, func(tx Conn) (store.User, error) { return s.insertUser(ctx, tx, u) }, "create user")
}

// CreateUserWithOrganization implements [store.Users].
func (s *Store) CreateUserWithOrganization(ctx context.Context, su store.Signup) (store.User, store.Organization, error) {
	if err := su.Validate(); err != nil {
		return store.User{}, store.Organization{}, s.errf("create user with organization: %w", err)
	}
	var user store.User
	org, err := inTx(ctx, s, func(tx Conn) (store.Organization, error) {
		if su.FirstUserOnly {
			if err := s.requireNoUser(ctx, tx); err != nil {
				return store.Organization{}, err
			}
		}
		var err error
		if user, err = s.insertUser(ctx, tx, su.User); err != nil {
			return store.Organization{}, err
		}
		return s.insertOrganization(ctx, tx, store.NewOrganization{
			Slug:      su.OrganizationSlug,
			Admin:     user.ID,
			CreatedAt: su.User.CreatedAt,
		})
	})
	if err != nil {
		return store.User{}, store.Organization{}, s.errf("create user with organization: %w", err)
	}
	return user, org, nil
}

// requireNoUser fails with ErrNotFirst if the store has a user. The lock
// (PostgreSQL) or the single writer (SQLite) keeps the answer true until
// the transaction commits.
func (s *Store) requireNoUser(ctx context.Context, tx Conn) error {
	if s.d.LockUsers != "" {
		if _, err := tx.Exec(ctx, s.d.LockUsers); err != nil {
			return fmt.Errorf("lock users: %w", err)
		}
	}
	some, err := exists(ctx, tx, "SELECT 1 FROM users")
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if some {
		return store.ErrNotFirst
	}
	return nil
}

func (s *Store) insertUser(ctx context.Context, tx Conn, u store.NewUser) (store.User, error) {
	created := micro(u.CreatedAt)
	var id int64
	err := s.insert(ctx, tx, "user", "email", &id,
		"INSERT INTO users (email, email_key, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
		u.Email, store.EmailKey(u.Email), u.PasswordHash, s.ts(created))
	return store.User{ID: uint64(id), Email: u.Email, PasswordHash: u.PasswordHash, CreatedAt: created}, err
}

const userColumns = "id, email, password_hash, created_at"

func scanUser(row Row) (store.User, error) {
	var u store.User
	err := row.Scan(Num{&u.ID}, &u.Email, &u.PasswordHash, At{&u.CreatedAt})
	return u, err
}

// GetUser implements [store.Users].
func (s *Store) GetUser(ctx context.Context, id uint64) (store.User, error) {
	dbid, ok := DBID(id)
	return get(ctx, s, ok, scanUser, "SELECT "+userColumns+" FROM users WHERE id = ?", []any{dbid}, "get user %d", id)
}

// GetUserByEmail implements [store.Users].
func (s *Store) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	return get(ctx, s, storable(email), scanUser, "SELECT "+userColumns+" FROM users WHERE email_key = ?",
		[]any{store.EmailKey(email)}, "get user by email")
}

// SetPasswordHash implements [store.Users].
func (s *Store) SetPasswordHash(ctx context.Context, id uint64, hash string) error {
	if err := store.CheckPasswordHash(hash); err != nil {
		return s.errf("set password hash of user %d: %w", id, err)
	}
	dbid, ok := DBID(id)
	if !ok {
		return s.errf("set password hash of user %d: %w", id, store.ErrNotFound)
	}
	n, err := s.w.Exec(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, dbid)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return s.errf("set password hash of user %d: %w", id, err)
	}
	return nil
}

// CreateOrganization implements [store.Organizations].
func (s *Store) CreateOrganization(ctx context.Context, o store.NewOrganization) (store.Organization, error) {
	return create(ctx, s, "create organization", o.Validate(), nil, func(tx Conn) (store.Organization, error) { return s.insertOrganization(ctx, tx, o) },
		"create organization %q", o.Slug)
}

// insertOrganization inserts o and, when o.Admin is set, its admin
// membership.
func (s *Store) insertOrganization(ctx context.Context, tx Conn, o store.NewOrganization) (store.Organization, error) {
	created := micro(o.CreatedAt)
	if o.Admin != 0 {
		if err := require(ctx, tx, userRef("admin user", o.Admin)); err != nil {
			return store.Organization{}, err
		}
	}
	var id int64
	err := s.insert(ctx, tx, "organization", "organization slug", &id,
		"INSERT INTO organizations (slug, created_at) VALUES (?, ?) RETURNING id", o.Slug, s.ts(created))
	if err == nil && o.Admin != 0 {
		err = s.insertMember(ctx, tx, store.Membership{OrgID: uint64(id), UserID: o.Admin, Role: store.RoleAdmin, CreatedAt: created})
	}
	return store.Organization{ID: uint64(id), Slug: o.Slug, CreatedAt: created}, err
}

// insertMember inserts the membership m.
func (s *Store) insertMember(ctx context.Context, tx Conn, m store.Membership) error {
	return s.insert(ctx, tx, "membership", "membership", nil,
		"INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
		int64(m.OrgID), int64(m.UserID), string(m.Role), s.ts(m.CreatedAt))
}

const orgColumns = "id, slug, created_at"

func scanOrganization(row Row) (store.Organization, error) {
	var o store.Organization
	err := row.Scan(Num{&o.ID}, &o.Slug, At{&o.CreatedAt})
	return o, err
}

// GetOrganization implements [store.Organizations].
func (s *Store) GetOrganization(ctx context.Context, id uint64) (store.Organization, error) {
	dbid, ok := DBID(id)
	return get(ctx, s, ok, scanOrganization, "SELECT "+orgColumns+" FROM organizations WHERE id = ?", []any{dbid},
		"get organization %d", id)
}

// GetOrganizationBySlug implements [store.Organizations].
func (s *Store) GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error) {
	return get(ctx, s, storable(slug), scanOrganization, "SELECT "+orgColumns+" FROM organizations WHERE slug = ?", []any{slug},
		"get organization %q", slug)
}

// AddMember implements [store.Organizations].
func (s *Store) AddMember(ctx context.Context, m store.Membership) error {
	return change(ctx, s, "add member", m.Validate(), []ref{orgRef(m.OrgID), userRef("user", m.UserID)}, func(tx Conn) error {
		return s.insertMember(ctx, tx, m)
	}, "add user %d to organization %d", m.UserID, m.OrgID)
}

// lockOrganization fails with ErrNotFound unless the organization exists,
// and locks its row (with lock, a clause of the Dialect) until the
// transaction ends.
func lockOrganization(ctx context.Context, tx Conn, orgID uint64, lock string) error {
	return require(ctx, tx, lockedOrg(orgID, lock))
}

// currentRole locks the organization and returns the member's role, or
// ErrNotFound.
func (s *Store) currentRole(ctx context.Context, tx Conn, orgID, userID uint64) (store.Role, error) {
	o, ok1 := DBID(orgID)
	u, ok2 := DBID(userID)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("membership: %w", store.ErrNotFound)
	}
	// Serialise the organization's role changes, so that two admins
	// stepping down at once cannot both see the other one staying.
	if err := lockOrganization(ctx, tx, orgID, s.d.ForNoKeyUpdate); err != nil {
		return "", err
	}
	role, err := one(ctx, tx, scanString, "SELECT role FROM memberships WHERE org_id = ? AND user_id = ?", o, u)
	if err != nil {
		return "", fmt.Errorf("membership: %w", err)
	}
	return store.Role(role), nil
}

// requireOtherAdmin fails with ErrConflict unless the organization has an
// admin besides userID.
func requireOtherAdmin(ctx context.Context, tx Conn, orgID, userID uint64) error {
	var n int
	err := tx.QueryRow(ctx,
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

// leaveRole reads the member's role, with the organization locked, and
// fails with ErrConflict if the member is its last admin.
func (s *Store) leaveRole(ctx context.Context, tx Conn, orgID, userID uint64) (store.Role, error) {
	cur, err := s.currentRole(ctx, tx, orgID, userID)
	if err != nil {
		return "", err
	}
	if cur == store.RoleAdmin {
		if err := requireOtherAdmin(ctx, tx, orgID, userID); err != nil {
			return "", err
		}
	}
	return cur, nil
}

// SetMemberRole implements [store.Organizations].
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID uint64, role store.Role) error {
	if !role.Valid() {
		return s.errf("set role of user %d in organization %d: role %q: %w", userID, orgID, role, store.ErrInvalid)
	}
	err := s.tx(ctx, func(tx Conn) error {
		cur, err := s.currentRole(ctx, tx, orgID, userID)
		if err != nil || cur == role {
			return err
		}
		if cur == store.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, "UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?",
			string(role), int64(orgID), int64(userID))
		return err
	})
	if err != nil {
		return s.errf("set role of user %d in organization %d: %w", userID, orgID, err)
	}
	return nil
}

// RemoveMember implements [store.Organizations].
func (s *Store) RemoveMember(ctx context.Context, orgID, userID uint64) error {
	err := s.tx(ctx, func(tx Conn) error {
		if _, err := s.leaveRole(ctx, tx, orgID, userID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM memberships WHERE org_id = ? AND user_id = ?", int64(orgID), int64(userID))
		return err
	})
	if err != nil {
		return s.errf("remove user %d from organization %d: %w", userID, orgID, err)
	}
	return nil
}

// GetMembership implements [store.Organizations].
func (s *Store) GetMembership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	o, ok1 := DBID(orgID)
	u, ok2 := DBID(userID)
	return get(ctx, s, ok1 && ok2, func(row Row) (store.Membership, error) {
		m := store.Membership{OrgID: orgID, UserID: userID}
		err := row.Scan((*string)(&m.Role), At{&m.CreatedAt})
		return m, err
	}, "SELECT role, created_at FROM memberships WHERE org_id = ? AND user_id = ?", []any{o, u},
		"get membership of user %d in organization %d", userID, orgID)
}

// ListMembers implements [store.Organizations].
func (s *Store) ListMembers(ctx context.Context, orgID uint64) ([]store.Membership, error) {
	o, ok := DBID(orgID)
	return all(ctx, s, ok, func(row Row) (store.Membership, error) {
		m := store.Membership{OrgID: orgID}
		err := row.Scan(Num{&m.UserID}, (*string)(&m.Role), At{&m.CreatedAt})
		return m, err
	}, "SELECT user_id, role, created_at FROM memberships WHERE org_id = ? ORDER BY user_id", []any{o},
		"list members of organization %d", orgID)
}

// ListUserOrganizations implements [store.Organizations].
func (s *Store) ListUserOrganizations(ctx context.Context, userID uint64) ([]store.OrganizationRole, error) {
	u, ok := DBID(userID)
	return all(ctx, s, ok, func(row Row) (store.OrganizationRole, error) {
		var or store.OrganizationRole
		err := row.Scan(Num{&or.ID}, &or.Slug, At{&or.CreatedAt}, (*string)(&or.Role))
		return or, err
	}, `SELECT o.id, o.slug, o.created_at, m.role
		FROM memberships m JOIN organizations o ON o.id = m.org_id
		WHERE m.user_id = ?
		ORDER BY o.id`, []any{u}, "list organizations of user %d", userID)
}

// CreateSession implements [store.Sessions].
func (s *Store) CreateSession(ctx context.Context, se store.Session) error {
	return change(ctx, s, "create session", se.Validate(), []ref{userRef("user", se.UserID)}, func(tx Conn) error {
		err := s.insert(ctx, tx, "session", "session id", nil,
			"INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
			se.ID, int64(se.UserID), s.ts(se.CreatedAt), s.ts(se.ExpiresAt))
		if err != nil {
			return err
		}
		// A session is a login: the member list shows the latest.
		_, err = tx.Exec(ctx, "UPDATE users SET last_login_at = "+s.d.Greatest+"(coalesce(last_login_at, ?1), ?1) WHERE id = ?2",
			s.ts(se.CreatedAt), int64(se.UserID))
		return err
	}, "create session for user %d", se.UserID)
}

// GetSession implements [store.Sessions].
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return get(ctx, s, storable(id), func(row Row) (store.Session, error) {
		se := store.Session{ID: id}
		err := row.Scan(Num{&se.UserID}, At{&se.CreatedAt}, At{&se.ExpiresAt}, At{&se.RevokedAt})
		return se, err
	}, "SELECT user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?", []any{id}, "get session")
}

// RevokeSession implements [store.Sessions].
func (s *Store) RevokeSession(ctx context.Context, id string, when time.Time) (bool, error) {
	if err := store.CheckTime("revoked at", when); err != nil {
		return false, s.errf("revoke session: %w", err)
	}
	if !storable(id) {
		return false, s.errf("revoke session: %w", store.ErrNotFound)
	}
	revoked, err := inTx(ctx, s, func(tx Conn) (bool, error) {
		n, err := tx.Exec(ctx, "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", s.ts(when), id)
		if err != nil || n == 1 {
			return n == 1, err
		}
		return false, s.mustExist(ctx, tx, "sessions", id)
	})
	if err != nil {
		return false, s.errf("revoke session: %w", err)
	}
	return revoked, nil
}

// mustExist fails with ErrNotFound unless the table has a row with id.
func (s *Store) mustExist(ctx context.Context, tx Conn, table, id string) error {
	found, err := exists(ctx, tx, "SELECT 1 FROM "+table+" WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("look up %s: %w", table, err)
	}
	if !found {
		return store.ErrNotFound
	}
	return nil
}

// RevokeUserSessions implements [store.Sessions].
func (s *Store) RevokeUserSessions(ctx context.Context, userID uint64, when time.Time) (int, error) {
	if err := store.CheckTime("revoked at", when); err != nil {
		return 0, s.errf("revoke sessions of user %d: %w", userID, err)
	}
	u, ok := DBID(userID)
	if !ok {
		return 0, nil
	}
	n, err := s.w.Exec(ctx, "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", s.ts(when), u)
	if err != nil {
		return 0, s.errf("revoke sessions of user %d: %w", userID, err)
	}
	return int(n), nil
}

// DeleteExpiredSessions implements [store.Sessions].
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	if err := store.CheckTime("before", before); err != nil {
		return 0, s.errf("delete expired sessions: %w", err)
	}
	n, err := s.w.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= ?", s.ts(before))
	if err != nil {
		return 0, s.errf("delete expired sessions: %w", err)
	}
	return int(n), nil
}
