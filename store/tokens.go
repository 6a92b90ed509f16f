package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// App belongs to one organization; tokens may be confined to it.
type App struct {
	ID        uint64
	OrgID     uint64
	Name      string
	CreatedAt time.Time
}

// NewApp is what [Apps.CreateApp] needs.
type NewApp struct {
	OrgID uint64
	// Name is unique within the organization, compared byte for byte.
	Name      string
	CreatedAt time.Time
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (a NewApp) Validate() error {
	if err := checkText("app name", a.Name, MaxNameLen); err != nil {
		return err
	}
	return checkTime("created at", a.CreatedAt)
}

// Apps holds the organizations' apps.
type Apps interface {
	// CreateApp adds an app and returns it with its new id. It fails with
	// ErrExists when the organization has an app of that name, with
	// ErrNotFound when the organization does not exist, and with
	// ErrInvalid when a does not validate.
	CreateApp(ctx context.Context, a NewApp) (App, error)

	// GetApp returns the app with this id, or ErrNotFound.
	GetApp(ctx context.Context, id uint64) (App, error)

	// GetAppByName returns the organization's app with exactly this name,
	// or ErrNotFound.
	GetAppByName(ctx context.Context, orgID uint64, name string) (App, error)

	// ListApps returns a page of the organization's apps ordered by name
	// (byte order), and the cursor of the next page, "" after the last; an
	// unknown organization gives an empty page. It fails with ErrInvalid
	// for a bad page or cursor.
	ListApps(ctx context.Context, orgID uint64, p Page) ([]App, string, error)

	// ListAppsByName returns the apps with exactly this name in the
	// organizations the user is a member of, one per organization at
	// most, ordered by organization id; a name none of them has gives an
	// empty list. It resolves a name for a session, which then picks the
	// apps it may see. Apps of other organizations are not even read:
	// anyone may create organizations and name apps as they like, and the
	// cost of a user's lookup must not grow with them.
	ListAppsByName(ctx context.Context, name string, userID uint64) ([]App, error)
}

// Token is the registry record of a named token. The store never holds the
// token itself, only what is needed to list it and revoke it.
type Token struct {
	// ID is the token's nonce UUID in canonical form (lowercase,
	// hyphenated, 36 characters).
	ID      string
	Name    string // 1 to MaxNameLen bytes; not unique
	Profile string // the mint profile, 1 to MaxNameLen bytes
	OrgID   uint64
	// AppID is the app the token is confined to, or 0 for none. The app
	// belongs to OrgID.
	AppID uint64
	// CreatedBy is the user who minted the token.
	CreatedBy uint64
	CreatedAt time.Time
	// ExpiresAt is zero for a token without an expiry.
	ExpiresAt time.Time
	// RevokedAt is zero while the token has not been revoked.
	RevokedAt time.Time
	// LastUsedAt is zero until the token is first used; see
	// [Tokens.TouchToken].
	LastUsedAt time.Time
	// RevokedBranches counts the token's revoked branches (see
	// [Tokens.RevokeBranch]), at most [MaxRevokedBranches]. A verifier
	// that reads 0 here needs no second read for the branches themselves.
	RevokedBranches int
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Validate reports, wrapping [ErrInvalid], a field that breaks the rules for
// a new record: a canonical UUID id, a name and a profile, an organization
// and a creator, a creation time, an expiry (if any) after it, and neither
// a revocation nor a use yet.
func (t Token) Validate() error {
	if !ValidTokenID(t.ID) {
		return fmt.Errorf("token id is not a canonical UUID: %w", ErrInvalid)
	}
	if err := checkText("token name", t.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkText("token profile", t.Profile, MaxNameLen); err != nil {
		return err
	}
	if t.OrgID == 0 {
		return fmt.Errorf("token without organization: %w", ErrInvalid)
	}
	if t.CreatedBy == 0 {
		return fmt.Errorf("token without creator: %w", ErrInvalid)
	}
	if err := checkTime("created at", t.CreatedAt); err != nil {
		return err
	}
	if !t.ExpiresAt.IsZero() {
		if err := checkTime("expires at", t.ExpiresAt); err != nil {
			return err
		}
		if !t.ExpiresAt.After(t.CreatedAt) {
			return fmt.Errorf("token expires at or before its creation: %w", ErrInvalid)
		}
	}
	if !t.RevokedAt.IsZero() || !t.LastUsedAt.IsZero() || t.RevokedBranches != 0 {
		return fmt.Errorf("new token record already revoked or used: %w", ErrInvalid)
	}
	return nil
}

// ValidTokenID reports whether id is a UUID in canonical form, the only
// form in which token ids are stored.
func ValidTokenID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// BranchID names one branch of a token: the binding id of one of its
// tails (the first 16 bytes of its SHA-256), as the token library computes
// it (caveat.BranchID). Every attenuation step of a token has its own
// tail, so a branch is the token as it was at that step together with
// everything attenuated from it since; its ancestors, whose tails come
// earlier in the chain, are other branches.
type BranchID [16]byte

// String is the branch id in lowercase hex, the form the API shows.
func (b BranchID) String() string { return hex.EncodeToString(b[:]) }

// IsZero reports whether b is the zero id, which names no branch.
func (b BranchID) IsZero() bool { return b == BranchID{} }

// MaxRevokedBranches bounds the revoked branches of one token. A verifier
// holds a token's whole set and looks every tail up in it, so the set must
// stay small; a token with this many revoked branches is better revoked
// whole (by id), which [Tokens.RevokeToken] always allows.
const MaxRevokedBranches = 1000

// RevokedBranch is one revoked branch of a named token.
type RevokedBranch struct {
	TokenID string
	Branch  BranchID
	// RevokedBy is the user who revoked the branch by presenting it (an
	// admin of the token's organization or its creator), or 0 when the
	// branch revoked itself: it was presented as the credential of its
	// own revocation.
	RevokedBy uint64
	RevokedAt time.Time
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules: a
// canonical token id, a non-zero branch and a revocation time.
func (b RevokedBranch) Validate() error {
	if !ValidTokenID(b.TokenID) {
		return fmt.Errorf("token id is not a canonical UUID: %w", ErrInvalid)
	}
	if b.Branch.IsZero() {
		return fmt.Errorf("branch id is zero: %w", ErrInvalid)
	}
	return checkTime("revoked at", b.RevokedAt)
}

// TokenFilter says which tokens [Tokens.ListTokens] lists.
type TokenFilter struct {
	// OrgID is the organization whose tokens are listed.
	OrgID uint64
	// AppID, when not 0, keeps only the tokens confined to this app.
	AppID uint64
	// LiveAt, when not zero, leaves out the tokens that have expired at
	// that instant (ExpiresAt at or before it).
	LiveAt time.Time
}

// TokenCursor is the cursor after t in a token list.
func TokenCursor(t Token) string {
	return CreatedCursor(CursorTokens, CreatedKey{CreatedAt: t.CreatedAt, ID: t.ID})
}

// Revocation is one entry of the revocation feed: a token, or one branch
// of a token, that was revoked.
type Revocation struct {
	// Cursor orders the feed; see [Tokens.RevocationsSince].
	Cursor  uint64
	TokenID string
	// Branch is the revoked branch, or zero when the whole token was
	// revoked. Either way a cache evicts every verification of TokenID.
	Branch    BranchID
	OrgID     uint64
	RevokedAt time.Time
}

// Tokens is the registry of named tokens.
type Tokens interface {
	// CreateToken records a newly minted token. It fails with ErrExists
	// when the id is taken, with ErrNotFound when the organization, the
	// app or the creating user does not exist, and with ErrInvalid when t
	// does not validate or its app belongs to another organization.
	CreateToken(ctx context.Context, t Token) error

	// GetToken returns the token with this id, or ErrNotFound (also for an
	// id that is not a canonical UUID, which no token can have).
	GetToken(ctx context.Context, id string) (Token, error)

	// ListTokens returns a page of the tokens f selects, revoked ones
	// included, oldest first (ordered by creation time, then id in byte
	// order), and the cursor of the next page, "" after the last (see
	// [Page]). An unknown organization or app gives an empty page. It
	// fails with ErrInvalid for a page that does not validate or a cursor
	// that is not one of a token list.
	ListTokens(ctx context.Context, f TokenFilter, p Page) ([]Token, string, error)

	// RevokeToken marks the token revoked at at and, when this call
	// revoked it, appends it to the revocation feed in the same atomic
	// step. It is idempotent: it reports whether this call revoked the
	// token, and a token revoked before keeps its first RevokedAt and
	// gets no second feed entry. It fails with ErrNotFound for an unknown
	// id and with ErrInvalid for a zero time.
	RevokeToken(ctx context.Context, id string, at time.Time) (bool, error)

	// RevokeBranch records that a branch of a token is revoked and, when
	// this call revoked it, appends it to the revocation feed in the same
	// atomic step. It is idempotent: it reports whether this call revoked
	// the branch, and a branch revoked before keeps its first record and
	// gets no second feed entry. It fails with ErrNotFound for an unknown
	// token (or an unknown RevokedBy user), with ErrInvalid when b does
	// not validate, and with ErrLimit when the token already has
	// MaxRevokedBranches revoked branches and b is not one of them. The
	// store does not check that the branch belongs to the token: only the
	// caller, which holds the key, can; it must never pass a branch id it
	// did not compute from a verified token. A revoked token's branches can
	// still be revoked.
	RevokeBranch(ctx context.Context, b RevokedBranch) (bool, error)

	// ListRevokedBranches returns the token's revoked branches, oldest
	// first (by revocation time, then branch id in byte order); at most
	// MaxRevokedBranches. An unknown token gives ErrNotFound.
	ListRevokedBranches(ctx context.Context, tokenID string) ([]RevokedBranch, error)

	// IsTokenRevoked reports whether the token has been revoked, with one
	// indexed lookup; it is on the path of every verification. An unknown
	// id gives ErrNotFound, so that the caller decides (and can refuse)
	// rather than taking an unknown token for an unrevoked one.
	IsTokenRevoked(ctx context.Context, id string) (bool, error)

	// TouchToken records that the token was used at at. LastUsedAt only
	// moves forward: an earlier at than the recorded one changes nothing.
	// Revoked tokens can be touched. It fails with ErrNotFound for an
	// unknown id and with ErrInvalid for a zero time. It writes on every
	// call, so callers on a hot path should throttle it.
	TouchToken(ctx context.Context, id string, at time.Time) error

	// RevocationsSince returns up to limit revocations (of tokens and of
	// branches, in one feed) whose cursor is greater than after, in
	// cursor order. Cursors grow with every revocation, and a revocation
	// becomes visible only once every revocation with a smaller cursor
	// is, so a poller that passes the last cursor it saw misses nothing.
	// Pass 0 to read from the start, or [Tokens.RevocationCursor] to read
	// only what comes next. limit must be at least 1 (ErrInvalid
	// otherwise).
	RevocationsSince(ctx context.Context, after uint64, limit int) ([]Revocation, error)

	// RevocationCursor returns the cursor of the latest revocation, or 0
	// when there is none.
	RevocationCursor(ctx context.Context) (uint64, error)
}

// RevocationListener is implemented by stores that can say when a
// revocation (of a token or a branch) has been committed, by any process,
// so that caches need not wait for their next poll of
// [Tokens.RevocationsSince] (PostgreSQL, with LISTEN/NOTIFY).
// Notifications carry nothing: the feed says what changed.
type RevocationListener interface {
	// ListenRevocations calls notify after revocations are committed,
	// possibly once for several, until ctx is done (then it returns nil)
	// or listening fails (then it returns the error, and the caller may
	// call it again).
	ListenRevocations(ctx context.Context, notify func()) error
}
