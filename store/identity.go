package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// User is an account that logs in with an email and a password.
type User struct {
	ID uint64
	// Email is kept as given at signup. Uniqueness and lookups ignore case
	// (see [EmailKey]).
	Email string
	// PasswordHash is the encoded argon2id hash, opaque to the store.
	PasswordHash string
	CreatedAt    time.Time
}

// LogValue keeps the password hash and the email out of logs.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("id", u.ID))
}

// NewUser is what [Users.CreateUser] needs.
type NewUser struct {
	Email        string // 1 to MaxEmailLen bytes of UTF-8
	PasswordHash string // 1 to MaxPasswordHashLen bytes
	CreatedAt    time.Time
}

// LogValue keeps the password hash and the email out of logs.
func (u NewUser) LogValue() slog.Value { return slog.GroupValue() }

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (u NewUser) Validate() error {
	if err := checkText("email", u.Email, MaxEmailLen); err != nil {
		return err
	}
	if err := CheckPasswordHash(u.PasswordHash); err != nil {
		return err
	}
	return checkTime("created at", u.CreatedAt)
}

// CheckPasswordHash reports, wrapping [ErrInvalid], a password hash that is
// empty, longer than MaxPasswordHashLen or not UTF-8 text.
func CheckPasswordHash(hash string) error {
	return checkText("password hash", hash, MaxPasswordHashLen)
}

// EmailKey is the form in which emails are compared: two emails name the
// same account when their keys are equal. It folds case with Unicode simple
// lowercasing and changes nothing else, so callers that want to ignore
// surrounding spaces must trim before calling the store.
func EmailKey(email string) string { return strings.ToLower(email) }

// Signup is what [Users.CreateUserWithOrganization] needs.
type Signup struct {
	User NewUser
	// OrganizationSlug names the new organization; the user becomes its
	// admin. The organization and the membership are created at
	// User.CreatedAt.
	OrganizationSlug string
	// FirstUserOnly makes the call fail with [ErrNotFirst] unless the store
	// holds no user yet. The test and the insertion are one atomic step, so
	// of several concurrent first signups exactly one succeeds.
	FirstUserOnly bool
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (s Signup) Validate() error {
	if err := s.User.Validate(); err != nil {
		return err
	}
	return checkText("organization slug", s.OrganizationSlug, MaxNameLen)
}

// Users holds accounts.
type Users interface {
	// CreateUser adds a user and returns it with its new id. It fails with
	// ErrExists when another user's email has the same [EmailKey], and with
	// ErrInvalid when u does not validate.
	CreateUser(ctx context.Context, u NewUser) (User, error)

	// CreateUserWithOrganization adds a user, a new organization and the
	// user's admin membership of it, all or nothing. It fails with
	// ErrExists when the email or the slug is taken, with ErrNotFirst as
	// described on [Signup.FirstUserOnly], and with ErrInvalid when s does
	// not validate.
	CreateUserWithOrganization(ctx context.Context, s Signup) (User, Organization, error)

	// GetUser returns the user with this id, or ErrNotFound.
	GetUser(ctx context.Context, id uint64) (User, error)

	// GetUserByEmail returns the user whose email has the same [EmailKey]
	// as email, or ErrNotFound.
	GetUserByEmail(ctx context.Context, email string) (User, error)

	// SetPasswordHash replaces a user's password hash. It fails with
	// ErrNotFound for an unknown user and with ErrInvalid for an empty or
	// oversized hash. It does not end the user's sessions; see
	// [Sessions.RevokeUserSessions].
	SetPasswordHash(ctx context.Context, id uint64, hash string) error
}

// Organization owns apps, root keys and tokens.
type Organization struct {
	ID        uint64
	Slug      string
	CreatedAt time.Time
}

// NewOrganization is what [Organizations.CreateOrganization] needs.
type NewOrganization struct {
	// Slug is unique across the store, compared byte for byte: callers
	// normalise it (say, to lowercase) before calling.
	Slug string
	// Admin, when not 0, is a user made admin of the new organization in
	// the same step.
	Admin     uint64
	CreatedAt time.Time
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (o NewOrganization) Validate() error {
	if err := checkText("organization slug", o.Slug, MaxNameLen); err != nil {
		return err
	}
	return checkTime("created at", o.CreatedAt)
}

// Role is a user's role in an organization.
type Role string

// The roles. An admin may manage the organization's members, keys and
// tokens; a member may use it.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// Membership says that a user belongs to an organization, in a role.
type Membership struct {
	OrgID     uint64
	UserID    uint64
	Role      Role
	CreatedAt time.Time
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (m Membership) Validate() error {
	if !m.Role.Valid() {
		return fmt.Errorf("role %q: %w", m.Role, ErrInvalid)
	}
	return checkTime("created at", m.CreatedAt)
}

// OrganizationRole is an organization seen from one of its members.
type OrganizationRole struct {
	Organization
	Role Role
}

// Organizations holds organizations and their members.
type Organizations interface {
	// CreateOrganization adds an organization and, when o.Admin is not 0,
	// that user's admin membership, all or nothing. It fails with ErrExists
	// when the slug is taken, with ErrNotFound when o.Admin is not a user,
	// and with ErrInvalid when o does not validate.
	CreateOrganization(ctx context.Context, o NewOrganization) (Organization, error)

	// GetOrganization returns the organization with this id, or
	// ErrNotFound.
	GetOrganization(ctx context.Context, id uint64) (Organization, error)

	// GetOrganizationBySlug returns the organization with exactly this
	// slug, or ErrNotFound.
	GetOrganizationBySlug(ctx context.Context, slug string) (Organization, error)

	// AddMember adds a membership. It fails with ErrExists when the user is
	// already a member (whatever the role), with ErrNotFound when the user
	// or the organization does not exist, and with ErrInvalid when m does
	// not validate.
	AddMember(ctx context.Context, m Membership) error

	// SetMemberRole changes a member's role; setting the role it already
	// has succeeds and changes nothing. It fails with ErrNotFound when the
	// user is not a member, with ErrConflict when it would leave the
	// organization without an admin, and with ErrInvalid for an unknown
	// role.
	SetMemberRole(ctx context.Context, orgID, userID uint64, role Role) error

	// RemoveMember ends a membership. It fails with ErrNotFound when the
	// user is not a member and with ErrConflict when the user is the
	// organization's last admin.
	RemoveMember(ctx context.Context, orgID, userID uint64) error

	// GetMembership returns the user's membership of the organization, or
	// ErrNotFound when there is none.
	GetMembership(ctx context.Context, orgID, userID uint64) (Membership, error)

	// ListMembers returns the organization's memberships ordered by user
	// id; an organization without members, or an unknown one, gives an
	// empty list.
	ListMembers(ctx context.Context, orgID uint64) ([]Membership, error)

	// ListUserOrganizations returns the organizations the user belongs to,
	// with the user's role in each, ordered by organization id; a user
	// without memberships, or an unknown one, gives an empty list.
	ListUserOrganizations(ctx context.Context, userID uint64) ([]OrganizationRole, error)
}

// Session is a login. It is active from its creation until ExpiresAt or
// until it is revoked, whichever comes first.
type Session struct {
	// ID finds the session. The store keeps it as given: when the
	// identity service hands out a bearer secret, it stores a hash of it
	// here, not the secret.
	ID        string
	UserID    uint64
	CreatedAt time.Time
	ExpiresAt time.Time
	// RevokedAt is zero while the session has not been revoked.
	RevokedAt time.Time
}

// Active reports whether the session may be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// LogValue keeps the session id out of logs.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("user", s.UserID), slog.Time("expires_at", s.ExpiresAt))
}

// Validate reports, wrapping [ErrInvalid], a field that breaks the rules for
// a new session: an id of 1 to MaxNameLen bytes, a creation time, an expiry
// after it, and no revocation yet.
func (s Session) Validate() error {
	if err := checkText("session id", s.ID, MaxNameLen); err != nil {
		return err
	}
	if err := checkTime("created at", s.CreatedAt); err != nil {
		return err
	}
	if err := checkTime("expires at", s.ExpiresAt); err != nil {
		return err
	}
	if !s.ExpiresAt.After(s.CreatedAt) {
		return fmt.Errorf("session expires at or before its creation: %w", ErrInvalid)
	}
	if !s.RevokedAt.IsZero() {
		return fmt.Errorf("new session already revoked: %w", ErrInvalid)
	}
	return nil
}

// Sessions holds logins.
type Sessions interface {
	// CreateSession stores a new session. It fails with ErrExists when the
	// id is taken, with ErrNotFound when the user does not exist, and with
	// ErrInvalid when s does not validate.
	CreateSession(ctx context.Context, s Session) error

	// GetSession returns the session with this id, expired and revoked
	// ones included (see [Session.Active]), or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)

	// RevokeSession marks the session revoked at at. It is idempotent: it
	// reports whether this call revoked it, and a session revoked before
	// keeps its first RevokedAt. It fails with ErrNotFound for an unknown
	// id and ErrInvalid for a zero time.
	RevokeSession(ctx context.Context, id string, at time.Time) (bool, error)

	// RevokeUserSessions revokes every unrevoked session of the user at at
	// and returns how many it revoked; an unknown user has none.
	RevokeUserSessions(ctx context.Context, userID uint64, at time.Time) (int, error)

	// DeleteExpiredSessions deletes the sessions whose ExpiresAt is at or
	// before before, revoked or not, and returns how many it deleted.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)
}
