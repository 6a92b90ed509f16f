package caveat

import "time"

// Access describes one attempted action, for clearing a verified caveat set
// (spec §5.5). Each caveat inspects the concrete access type it understands
// (for example *flyio.Access) and fails with ErrInvalidAccess for others.
type Access interface {
	// Now is the time of the attempt; ValidityWindow is checked against it.
	// Injected, so that expiry needs no sleeping to test.
	Now() time.Time
	// Validate checks the access's own structure before any caveat is
	// evaluated. An invalid access is refused whatever the caveats say.
	Validate() error
}
