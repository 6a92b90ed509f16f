// Package store defines the persistent state of a caveat server, the users,
// organizations, sessions, root keys, apps, named tokens and machines, as small
// interfaces whose contracts every backend keeps.
//
// # Backends
//
// Package [github.com/caveatdev/caveat/store/sqlite] keeps everything in one
// SQLite file (pure Go, no cgo) and is the embedded default. Package
// [github.com/caveatdev/caveat/store/postgres] keeps it in PostgreSQL, for
// several replicas sharing one database. Package
// [github.com/caveatdev/caveat/store/open] chooses one from a DSN, and
// package [github.com/caveatdev/caveat/store/storetest] is the conformance
// suite both are tested with. The two share one implementation of the
// rules (the last admin, leases, metadata, token paging and revocation,
// invitations…), in store/internal/sqlrules, written once over
// database/sql-style connections and a small dialect; each backend keeps
// only its driver, its SQL dialect, its migrations, its bulk import and
// what it alone does (SQLite's backups; PostgreSQL's revocation listener
// and the flows, throttles and web logins that replicas share).
//
// # Contracts common to every method
//
//   - Concurrency: every method is safe for concurrent use by many
//     goroutines and, for backends that support it, by many processes
//     sharing one database. Each method is atomic: it takes full effect or
//     none, and no caller observes a half-done change.
//   - Errors: a failure that a caller can act on wraps one of [ErrNotFound],
//     [ErrConflict] (and its refinements [ErrExists], [ErrNotFirst]) or
//     [ErrInvalid]; test with [errors.Is]. Anything else (I/O, a cancelled
//     context, a broken connection) is an internal failure. Error messages
//     name the failed step and never contain a password hash, a session id,
//     a sealed key or an email address.
//   - Time: the store never reads the clock. Every timestamp comes from the
//     caller, which takes it from an injected clock, so that expiry can be
//     tested without sleeping. Times are stored with microsecond precision
//     and returned in UTC. Where a timestamp is optional, the zero
//     [time.Time] means "none".
//   - Ids: user, organization and app ids are assigned by the store; they
//     are never 0, so 0 means "none" in optional id fields.
//   - Secrets: passwords arrive as argon2id hashes and root keys as sealed
//     bytes ([SealedKey]); the store never sees a plaintext secret.
package store

import "context"

// Store is everything a caveat server persists. Backends implement it; the
// services depend on the smaller interfaces it is made of.
type Store interface {
	Users
	Organizations
	Sessions
	RootKeys
	Apps
	Tokens
	TokenImport
	Machines
	Housekeeping
	Invitations
	Members

	// Ping checks that the database answers, for health checks.
	Ping(ctx context.Context) error
	// Close releases the store's connections. Calls made after Close fail.
	Close() error
}

// sentinel is an error constant that may refine a broader one.
type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.parent }

// The errors a caller can act on. Backends wrap them with context; test with
// errors.Is.
var (
	// ErrNotFound: the record asked for, or one it refers to (the user of a
	// new session, the organization of a new app…), does not exist.
	ErrNotFound error = &sentinel{msg: "not found"}

	// ErrConflict: the change contradicts the current state, for example
	// retiring the key that still mints, or demoting an organization's last
	// admin.
	ErrConflict error = &sentinel{msg: "conflict"}

	// ErrExists: a record with the same unique key already exists (an email,
	// a slug, an app name in its organization, a token or session id, a key
	// id). It is an [ErrConflict].
	ErrExists error = &sentinel{msg: "already exists", parent: ErrConflict}

	// ErrNotFirst: [Users.CreateUserWithOrganization] was asked to create
	// the first user of the store, and a user already exists. It is an
	// [ErrConflict].
	ErrNotFirst error = &sentinel{msg: "not the first user", parent: ErrConflict}

	// ErrLimit: the change would take a record past a documented bound
	// (a token's revoked branches, MaxRevokedBranches). It is an
	// [ErrConflict].
	ErrLimit error = &sentinel{msg: "limit reached", parent: ErrConflict}

	// ErrInvalid: an argument breaks the rules written on its type (an empty
	// required field, an unknown role, a zero timestamp, text that is too
	// long or not UTF-8…). Nothing was changed.
	ErrInvalid error = &sentinel{msg: "invalid argument"}
)
