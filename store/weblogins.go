package store

// Browser logins and login throttles live minutes, not years, but replicas
// behind one load balancer must share them: a client polls whichever
// replica the balancer picks, and a password guess must cost the same
// bucket wherever it lands. A backend that several processes share
// (PostgreSQL) implements [WebLogins] and [Throttles]; a server that runs
// alone keeps them in memory (package store/memory), which honours the
// same contracts for one process.

import (
	"context"
	"fmt"
	"time"
)

// FlowKey is the SHA-256 of one of a flow's secrets under a label. A store
// keeps keys, never secrets, so a dump of it lets nobody poll or complete
// a flow.
type FlowKey [32]byte

// IsZero reports whether k is the zero key (no key).
func (k FlowKey) IsZero() bool { return k == FlowKey{} }

// WebLogin is a pending browser login of `caveat auth login --web`: the
// CLI polls with one secret, the user logs in on the page of the other.
type WebLogin struct {
	// PollKey finds the login for the poll; UserKey for the page. They
	// differ, and neither is zero.
	PollKey FlowKey
	UserKey FlowKey
	// Addr is the client address that started it, shown on the page: 1 to
	// MaxNameLen bytes.
	Addr      string
	StartedAt time.Time
	// ExpiresAt is when the login is forgotten, completed or not; after
	// StartedAt.
	ExpiresAt time.Time
	// UserID is 0 until the user has logged in on the page.
	UserID uint64
}

// Validate reports, wrapping [ErrInvalid], a field that breaks the rules
// for a new login: two distinct non-zero keys, an address, a start, an
// expiry after it, and no user yet.
func (w WebLogin) Validate() error {
	if w.PollKey.IsZero() || w.UserKey.IsZero() || w.PollKey == w.UserKey {
		return fmt.Errorf("web login needs two distinct non-zero keys: %w", ErrInvalid)
	}
	if err := checkText("client address", w.Addr, MaxNameLen); err != nil {
		return err
	}
	if err := checkTime("started at", w.StartedAt); err != nil {
		return err
	}
	if err := checkTime("expires at", w.ExpiresAt); err != nil {
		return err
	}
	if !w.ExpiresAt.After(w.StartedAt) {
		return fmt.Errorf("web login expires at or before its start: %w", ErrInvalid)
	}
	if w.UserID != 0 {
		return fmt.Errorf("new web login already completed: %w", ErrInvalid)
	}
	return nil
}

// ErrFull: a bounded store holds as many live records of a kind as it may,
// and refuses another rather than forget a live one. It is an
// [ErrConflict]; a *FullError says when to try again.
var ErrFull error = &sentinel{msg: "no room", parent: ErrConflict}

// FullError is a refusal for want of room. It wraps [ErrFull].
type FullError struct {
	// What names the records, for the message ("pending browser logins").
	What string
	// Max is the bound reached.
	Max int
	// RetryAfter is how long until the first of the live records expires,
	// and makes room.
	RetryAfter time.Duration
}

// Error says which bound was reached.
func (e *FullError) Error() string {
	return fmt.Sprintf("the server holds its maximum of %d %s", e.Max, e.What)
}

// Unwrap makes errors.Is(err, ErrFull) true.
func (e *FullError) Unwrap() error { return ErrFull }

// WebLogins holds pending browser logins. A login is live from its start
// until its ExpiresAt: at and after that instant (the caller's now) every
// method treats it as gone.
type WebLogins interface {
	// StartWebLogin stores a new login. When max live logins are held, it
	// stores nothing and fails with a *FullError whose RetryAfter is the
	// time from now until the first of them expires: a full store refuses
	// newcomers and never drops a live login to make room. The count and
	// the insertion are one atomic step, across processes. It fails with
	// ErrExists when a live or expired login has either key, and with
	// ErrInvalid when w does not validate or max < 1.
	StartWebLogin(ctx context.Context, w WebLogin, max int, now time.Time) error

	// WebLoginByUserKey returns the live login with this user key, or
	// ErrNotFound.
	WebLoginByUserKey(ctx context.Context, key FlowKey, now time.Time) (WebLogin, error)

	// CompleteWebLogin records that the user of the live login with this
	// user key logged in as userID. It fails with ErrNotFound when there is
	// no such live login, with ErrConflict when it was completed before
	// (of concurrent calls exactly one succeeds), and with ErrInvalid for
	// a userID of 0.
	CompleteWebLogin(ctx context.Context, key FlowKey, userID uint64, now time.Time) error

	// CollectWebLogin returns the live login with this poll key, or
	// ErrNotFound. A completed login is deleted as it is returned, so
	// that its user is handed out once: of concurrent calls exactly one
	// gets it, and the others ErrNotFound. A pending one (UserID 0) stays.
	CollectWebLogin(ctx context.Context, key FlowKey, now time.Time) (WebLogin, error)

	// DeleteExpiredWebLogins deletes the logins whose ExpiresAt is at or
	// before before, and returns how many it deleted.
	DeleteExpiredWebLogins(ctx context.Context, before time.Time) (int, error)
}
