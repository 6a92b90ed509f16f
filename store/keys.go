package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// SealedKey is an organization root key sealed under the server's master
// key. The store keeps and returns these bytes; only the authority, which
// holds the master key, can open them, so a dump of the database holds no
// usable key.
type SealedKey []byte

// LogValue keeps sealed key bytes out of logs.
func (SealedKey) LogValue() slog.Value { return slog.StringValue("[sealed key]") }

// KeyState is where a root key is in its life: active, then rotated, then
// retired. It never goes back.
type KeyState string

// The key states.
const (
	// KeyActive: the key mints new tokens and verifies tokens. An
	// organization has at most one active key.
	KeyActive KeyState = "active"
	// KeyRotated: a newer key mints; this one still verifies the tokens it
	// minted, until it is retired.
	KeyRotated KeyState = "rotated"
	// KeyRetired: the key neither mints nor verifies. It is kept so that
	// its id is never reused and so that refusals can say why.
	KeyRetired KeyState = "retired"
)

// Mints reports whether a key in this state may mint tokens.
func (s KeyState) Mints() bool { return s == KeyActive }

// Verifies reports whether a key in this state may verify tokens.
func (s KeyState) Verifies() bool { return s == KeyActive || s == KeyRotated }

// Valid reports whether s is one of the states.
func (s KeyState) Valid() bool { return s == KeyActive || s == KeyRotated || s == KeyRetired }

// RootKey is an organization's root signing key, sealed.
type RootKey struct {
	// KID is the key id that tokens carry in their nonce. Key ids are
	// unique across the whole store, not only within an organization.
	KID       []byte
	OrgID     uint64
	Sealed    SealedKey
	State     KeyState
	CreatedAt time.Time
	// RotatedAt is when a newer key replaced this one for minting; zero
	// while the key is active.
	RotatedAt time.Time
	// RetiredAt is when the key stopped verifying; zero until retired.
	RetiredAt time.Time
}

// LogValue keeps the sealed bytes out of logs.
func (k RootKey) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kid", fmt.Sprintf("%x", k.KID)),
		slog.Uint64("org", k.OrgID),
		slog.String("state", string(k.State)),
	)
}

// NewRootKey is what [RootKeys.RotateRootKey] needs.
type NewRootKey struct {
	OrgID     uint64
	KID       []byte    // 1 to MaxKIDLen bytes, unique across the store
	Sealed    SealedKey // 1 to MaxSealedKeyLen bytes
	CreatedAt time.Time
}

// Validate reports, wrapping [ErrInvalid], a field that breaks its rules.
func (k NewRootKey) Validate() error {
	if len(k.KID) == 0 || len(k.KID) > MaxKIDLen {
		return fmt.Errorf("key id of %d bytes, want 1 to %d: %w", len(k.KID), MaxKIDLen, ErrInvalid)
	}
	if len(k.Sealed) == 0 || len(k.Sealed) > MaxSealedKeyLen {
		return fmt.Errorf("sealed key of %d bytes, want 1 to %d: %w", len(k.Sealed), MaxSealedKeyLen, ErrInvalid)
	}
	return checkTime("created at", k.CreatedAt)
}

// RootKeys holds the organizations' sealed root keys.
type RootKeys interface {
	// RotateRootKey installs k as its organization's active key. The key
	// that was active, if any, becomes KeyRotated with RotatedAt set to
	// k.CreatedAt, in the same atomic step; so this also installs an
	// organization's first key. Concurrent rotations of one organization
	// are serialised: afterwards exactly one key is active. It fails with
	// ErrExists when the key id is taken, with ErrNotFound when the
	// organization does not exist, and with ErrInvalid when k does not
	// validate.
	RotateRootKey(ctx context.Context, k NewRootKey) (RootKey, error)

	// ActiveRootKey returns the organization's active key, or ErrNotFound
	// when it has none.
	ActiveRootKey(ctx context.Context, orgID uint64) (RootKey, error)

	// GetRootKey returns the key with this id in whatever state it is, or
	// ErrNotFound. Callers check [KeyState.Verifies] before trusting it.
	GetRootKey(ctx context.Context, kid []byte) (RootKey, error)

	// ListRootKeys returns a page of the organization's keys, oldest
	// first (ordered by creation time, then key id), and the cursor of the
	// next page, "" after the last; an unknown organization gives an empty
	// page. It fails with ErrInvalid for a bad page or cursor.
	ListRootKeys(ctx context.Context, orgID uint64, p Page) ([]RootKey, string, error)

	// RetireRootKey retires a rotated key at at, so that it no longer
	// verifies. It is idempotent: it reports whether this call retired it,
	// and a key retired before keeps its first RetiredAt. It fails with
	// ErrConflict for the active key (rotate first), with ErrNotFound for
	// an unknown id, and with ErrInvalid for a zero time.
	RetireRootKey(ctx context.Context, kid []byte, at time.Time) (bool, error)
}
