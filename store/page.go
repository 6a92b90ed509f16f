package store

// Lists are read a page at a time, so that no answer grows with the data:
// an organization may hold a million tokens. A page is at most Limit
// records after a cursor; the store fetches one more to know whether
// another page follows, and then returns the cursor of the page's last
// record as next. Cursors are opaque to callers, but every backend writes
// them alike (the helpers below), so that a cursor from one replica works
// on another, whatever its database.

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds of a page.
const (
	// DefaultPageLimit is the limit of a page when the caller names none.
	DefaultPageLimit = 100
	// MaxPageLimit bounds the records of one page.
	MaxPageLimit = 1000
)

// Page asks for one page of a list.
type Page struct {
	// After is the cursor a previous page returned as next, or "" for the
	// first page.
	After string
	// Limit is the most records the page holds: 1 to MaxPageLimit.
	Limit int
}

// Validate reports, wrapping [ErrInvalid], a limit out of bounds.
func (p Page) Validate() error {
	if p.Limit < 1 || p.Limit > MaxPageLimit {
		return fmt.Errorf("page limit %d is not between 1 and %d: %w", p.Limit, MaxPageLimit, ErrInvalid)
	}
	return nil
}

// cursor is the text form of a sort key: its kind and its parts, joined by
// NUL (which no stored text holds), in unpadded URL-safe base64.
func cursor(kind string, parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "\x00" + strings.Join(parts, "\x00")))
}

// parseCursor returns the n parts of a cursor of kind, or an error
// wrapping ErrInvalid.
func parseCursor(kind, c string, n int) ([]string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, fmt.Errorf("cursor %q is not one this server hands out: %w", c, ErrInvalid)
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != n+1 || parts[0] != kind {
		return nil, fmt.Errorf("cursor %q is not a cursor of %s: %w", c, kind, ErrInvalid)
	}
	return parts[1:], nil
}

// timeKey writes a stored time exactly: microseconds since the epoch.
func timeKey(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

func parseTimeKey(kind, c, s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("cursor %q is not a cursor of %s: %w", c, kind, ErrInvalid)
	}
	return time.UnixMicro(n).UTC(), nil
}

func parseIDKey(kind, c, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cursor %q is not a cursor of %s: %w", c, kind, ErrInvalid)
	}
	return n, nil
}

// CreatedKey is the sort key of the lists ordered by creation time, then
// by an id in byte order: tokens, machines, invitations and root keys.
type CreatedKey struct {
	CreatedAt time.Time
	ID        string
}

// CreatedCursor is the cursor after a record of kind with key k.
func CreatedCursor(kind string, k CreatedKey) string {
	return cursor(kind, timeKey(k.CreatedAt), k.ID)
}

// ParseCreatedCursor reads a cursor of CreatedCursor; "" gives the zero
// key and ok false (from the start).
func ParseCreatedCursor(kind, c string) (k CreatedKey, ok bool, err error) {
	if c == "" {
		return CreatedKey{}, false, nil
	}
	parts, err := parseCursor(kind, c, 2)
	if err != nil {
		return CreatedKey{}, false, err
	}
	at, err := parseTimeKey(kind, c, parts[0])
	if err != nil {
		return CreatedKey{}, false, err
	}
	return CreatedKey{CreatedAt: at, ID: parts[1]}, true, nil
}

// NameCursor is the cursor after a record of kind ordered by a name in
// byte order (apps).
func NameCursor(kind, name string) string { return cursor(kind, name) }

// ParseNameCursor reads a cursor of NameCursor; "" gives ok false.
func ParseNameCursor(kind, c string) (name string, ok bool, err error) {
	if c == "" {
		return "", false, nil
	}
	parts, err := parseCursor(kind, c, 1)
	if err != nil {
		return "", false, err
	}
	return parts[0], true, nil
}

// IDCursor is the cursor after a record of kind ordered by a numeric id
// (members, by user id).
func IDCursor(kind string, id uint64) string { return cursor(kind, strconv.FormatUint(id, 10)) }

// ParseIDCursor reads a cursor of IDCursor; "" gives ok false.
func ParseIDCursor(kind, c string) (id uint64, ok bool, err error) {
	if c == "" {
		return 0, false, nil
	}
	parts, err := parseCursor(kind, c, 1)
	if err != nil {
		return 0, false, err
	}
	id, err = parseIDKey(kind, c, parts[0])
	return id, err == nil, err
}

// The kinds of cursors, one per list.
const (
	CursorTokens      = "tokens"
	CursorApps        = "apps"
	CursorMachines    = "machines"
	CursorMembers     = "members"
	CursorInvitations = "invitations"
	CursorKeys        = "keys"
)

// PageOf cuts the rows a store read for p (up to p.Limit+1 of them) to
// the page, and returns the cursor of its last row as next when a row
// beyond it was read, "" otherwise.
func PageOf[T any](rows []T, p Page, cursorOf func(T) string) ([]T, string) {
	if len(rows) <= p.Limit {
		return rows, ""
	}
	rows = rows[:p.Limit]
	return rows, cursorOf(rows[len(rows)-1])
}

// InvitationCursor is the cursor after i in an invitation list.
func InvitationCursor(i Invitation) string {
	return CreatedCursor(CursorInvitations, CreatedKey{CreatedAt: i.CreatedAt, ID: strconv.FormatUint(i.ID, 10)})
}

// MemberCursor is the cursor after m in a member list.
func MemberCursor(m Member) string { return IDCursor(CursorMembers, m.UserID) }

// KeyCursor is the cursor after k in a list of root keys.
func KeyCursor(k RootKey) string {
	return CreatedCursor(CursorKeys, CreatedKey{CreatedAt: k.CreatedAt, ID: hex.EncodeToString(k.KID)})
}

// MachineCursor is the cursor after m in a machine list.
func MachineCursor(m Machine) string {
	return CreatedCursor(CursorMachines, CreatedKey{CreatedAt: m.CreatedAt, ID: m.ID})
}

// AppCursor is the cursor after a in an app list.
func AppCursor(a App) string { return NameCursor(CursorApps, a.Name) }
