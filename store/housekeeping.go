package store

import (
	"context"
	"time"
)

// Housekeeping is what the scheduled purge of a server needs of its store:
// a lease, so that of several replicas one purges at a time, and the
// deletion of tokens and invitations nobody can use any more. (Expired
// sessions go with [Sessions.DeleteExpiredSessions].)
type Housekeeping interface {
	// AcquireLease gives the lease called name to holder until until, when
	// it is free at now: never taken, expired (its until at or before
	// now), or already holder's (which renews it). It reports whether
	// holder holds it now. Of concurrent callers, across processes, at
	// most one holds a lease at any instant of their clocks, which must
	// agree to within much less than the lease. It fails with ErrInvalid
	// for an empty name or holder, or until not after now.
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)

	// ReleaseLease ends holder's lease called name, so that another may
	// take it at once. A lease that is not holder's is left alone.
	ReleaseLease(ctx context.Context, name, holder string) error

	// PurgeExpiredTokens deletes up to limit tokens whose ExpiresAt is at
	// or before before, revoked or not, with everything recorded of them
	// (their entries in the revocation feed included), and returns how
	// many it deleted. Tokens without an expiry are never purged: a
	// revoked one keeps its revocation for as long as it could be used.
	// Each call is one atomic step; callers loop until it returns fewer
	// than limit. limit must be at least 1 (ErrInvalid otherwise).
	PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error)

	// DeleteSpentInvitations deletes the invitations that were accepted,
	// cancelled, or expired at or before before, and returns how many.
	// Open invitations that have not expired by then are kept.
	DeleteSpentInvitations(ctx context.Context, before time.Time) (int, error)
}
