// Package sqlrules is the one implementation of the store's rules over SQL,
// shared by the SQLite and PostgreSQL backends: the last admin, leases,
// metadata, token listing, paging and revocation, invitations, branches,
// the identity accounts and housekeeping are written here once, and a
// backend brings only what differs, its driver and a [Dialect].
//
// Queries are written with "?" placeholders, or "?1", "?2"… where an
// argument is used twice (never both in one statement), in the SQL both
// databases speak (RETURNING, ON CONFLICT, row values); a backend's [Conn]
// numbers the placeholders if its database wants $1, $2…. Where PostgreSQL must
// lock what a transaction read (several writers) and SQLite need not (one
// writer at a time), the Dialect gives the lock clause, empty for SQLite.
package sqlrules

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caveatdev/caveat/store"
)

// Row is one result row, or the error of its query.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a query's result rows; Close may be called more than once.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Conn runs statements, on a pool or inside a transaction. A query that
// finds no row for QueryRow fails, at Scan, with an error that is
// [sql.ErrNoRows].
type Conn interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryPlanned is Query for the pages of lists: the statement is
	// planned for these very values (PostgreSQL's generic plan of a page
	// after a cursor scans the whole organization).
	QueryPlanned(ctx context.Context, query string, args ...any) (Rows, error)
}

// Dialect is what differs between the databases, besides their drivers.
type Dialect struct {
	// Name starts every error message: "sqlite", "postgres".
	Name string
	// Time is a time as a query argument, in the column type of the
	// schema (UTC and microseconds either way).
	Time func(time.Time) any
	// IDs is a list of token ids as the one argument of AnyID.
	IDs func(ids []string) any
	// AnyID is the condition "the column is one of the ids" with one
	// placeholder, completing "id " or "token_id ".
	AnyID string
	// Greatest is the name of the two-argument maximum function.
	Greatest string
	// ForUpdate and ForNoKeyUpdate end a SELECT whose rows must stay as
	// read until commit; empty where writers are serialised anyway.
	ForUpdate, ForNoKeyUpdate string
	// LockUsers, if not empty, is run before the first-user test of a
	// signup, so that the test still holds at commit.
	LockUsers string
	// IsUnique and IsForeignKey classify a failed statement.
	IsUnique, IsForeignKey func(error) bool
	// BeforeFeed, if set, runs in a transaction just before it appends
	// to the revocation feed, and AfterFeed just after.
	BeforeFeed, AfterFeed func(ctx context.Context, tx Conn) error
}

// Backend is a database's connections, as the rules use them.
type Backend struct {
	// Read is where reads outside a transaction go; Write where
	// single-statement writes go.
	Read, Write Conn
	// Tx runs fn in a write transaction that commits when fn succeeds.
	Tx func(ctx context.Context, fn func(tx Conn) error) error
	// Import writes tokens, already checked, and the feed entries of the
	// revoked ones, in one transaction, as fast as the database can.
	Import func(ctx context.Context, toks []store.Token) error
}

// Store implements the store's interfaces that the backends share. A
// backend embeds it and adds the rest (opening, migrations, the
// database's own extras).
type Store struct {
	d Dialect
	// r reads outside a transaction; w runs single-statement writes.
	r, w Conn
	tx   func(ctx context.Context, fn func(tx Conn) error) error
	bulk func(ctx context.Context, toks []store.Token) error
}

// New returns the rules of dialect d over a backend.
func New(d Dialect, b Backend) *Store {
	return &Store{d: d, r: b.Read, w: b.Write, tx: b.Tx, bulk: b.Import}
}

// errf is fmt.Errorf with the backend's name in front.
func (s *Store) errf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name+": "+format, args...)
}

// ts is a time as a query argument.
func (s *Store) ts(t time.Time) any { return s.d.Time(t) }

// nullTS is an optional time as a query argument: the zero time is NULL.
func (s *Store) nullTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.Time(t)
}

// feed runs fn, which appends to the revocation feed, between the
// dialect's hooks.
func (s *Store) feed(ctx context.Context, tx Conn, fn func() error) error {
	if s.d.BeforeFeed != nil {
		if err := s.d.BeforeFeed(ctx, tx); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		return fmt.Errorf("append to the revocation feed: %w", err)
	}
	if s.d.AfterFeed != nil {
		return s.d.AfterFeed(ctx, tx)
	}
	return nil
}

// micro is a time as the store keeps it: UTC, microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// At scans a stored time into *T: microseconds since the epoch (SQLite's
// INTEGER) or a timestamp; NULL is the zero time. A driver that has a
// faster way may replace it by its own scanner into T.
type At struct{ T *time.Time }

// Scan implements [sql.Scanner].
func (d At) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.T = time.Time{}
	case int64:
		*d.T = time.UnixMicro(v).UTC()
	case time.Time:
		*d.T = v.UTC()
	default:
		return fmt.Errorf("scan a time from %T", v)
	}
	return nil
}

// Num scans a stored BIGINT into *P; NULL is 0, no id. A driver that has
// a faster way may replace it by its own scanner into P.
type Num struct{ P *uint64 }

// Scan implements [sql.Scanner].
func (d Num) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*d.P = 0
	case int64:
		*d.P = uint64(v)
	default:
		return fmt.Errorf("scan a number from %T", v)
	}
	return nil
}

// DBID converts a store id to a BIGINT; ok is false for an id that no row
// can have.
func DBID(id uint64) (int64, bool) {
	if id == 0 || id > math.MaxInt64 {
		return 0, false
	}
	return int64(id), true
}

// NullID is an optional id as a query argument: 0 is NULL.
func NullID(id uint64) any {
	if id == 0 {
		return nil
	}
	return int64(id)
}

// storable reports whether s can be a text parameter. PostgreSQL refuses
// NUL and invalid UTF-8 with an error; since the store never stores such
// text, lookups of it answer ErrNotFound without asking.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// one reads the row that query finds, with scan; no row is ErrNotFound.
func one[T any](ctx context.Context, c Conn, scan func(Row) (T, error), query string, args ...any) (T, error) {
	v, err := scan(c.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, store.ErrNotFound
	}
	return v, err
}

// collect reads every row of rows with scan, and closes rows.
func collect[T any](rows Rows, err error, scan func(Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanString and scanInt64 scan a row of one column.
func scanString(row Row) (string, error) {
	var v string
	err := row.Scan(&v)
	return v, err
}

func scanInt64(row Row) (int64, error) {
	var v int64
	err := row.Scan(&v)
	return v, err
}

// requireRow fails with ErrNotFound, naming what, unless query with id
// finds a row.
func requireRow(ctx context.Context, c Conn, query string, id uint64, what string) error {
	dbid, ok := DBID(id)
	if ok {
		_, err := one(ctx, c, scanInt64, query, dbid)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("look up %s %d: %w", what, id, err)
		}
	}
	return fmt.Errorf("%s %d: %w", what, id, store.ErrNotFound)
}

// A ref is a row that a change refers to, which must exist: what names
// it in errors; lock, a clause of the Dialect, locks it until the
// transaction ends.
type ref struct {
	what, table string
	id          uint64
	lock        string
}

func orgRef(id uint64) ref               { return ref{"organization", "organizations", id, ""} }
func userRef(what string, id uint64) ref { return ref{what, "users", id, ""} }

// lockedOrg is the organization, locked with lock.
func lockedOrg(id uint64, lock string) ref { return ref{"organization", "organizations", id, lock} }

// require fails with ErrNotFound, naming the first of refs that does not
// exist, and takes their locks.
func require(ctx context.Context, tx Conn, refs ...ref) error {
	for _, r := range refs {
		if err := requireRow(ctx, tx, "SELECT 1 FROM "+r.table+" WHERE id = ?"+r.lock, r.id, r.what); err != nil {
			return err
		}
	}
	return nil
}

// inTx runs fn in a write transaction, committed when fn succeeds, and
// returns what fn returns, even with its error.
func inTx[T any](ctx context.Context, s *Store, fn func(tx Conn) (T, error)) (T, error) {
	var v T
	err := s.tx(ctx, func(tx Conn) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}

// create checks a new record (check is what its Validate returned), then
// runs fn in a write transaction once the rows it refers to are found (and
// locked as they ask); a failure names what (a format, with whatArgs).
// A refused record is named by verb alone, unless verb is "" (what then
// holds nothing but ids): its fields, unchecked, may hold NUL, invalid
// UTF-8 or a secret, which must not reach the message.
func create[T any](ctx context.Context, s *Store, verb string, check error, refs []ref, fn func(tx Conn) (T, error),
	what string, whatArgs ...any) (T, error) {
	var zero T
	if check != nil {
		if verb == "" {
			verb = fmt.Sprintf(what, whatArgs...)
		}
		return zero, s.errf("%s: %w", verb, check)
	}
	v, err := inTx(ctx, s, func(tx Conn) (T, error) {
		if err := require(ctx, tx, refs...); err != nil {
			return zero, err
		}
		return fn(tx)
	})
	if err != nil {
		return zero, s.errf("%s: %w", fmt.Sprintf(what, whatArgs...), err)
	}
	return v, nil
}

// change is create for a change that returns nothing.
func change(ctx context.Context, s *Store, verb string, check error, refs []ref, fn func(tx Conn) error,
	what string, whatArgs ...any) error {
	_, err := create(ctx, s, verb, check, refs, func(tx Conn) (struct{}, error) { return struct{}{}, fn(tx) }, what, whatArgs...)
	return err
}

// insert runs an INSERT, scanning the id it returns into id unless id is
// nil. A unique violation is ErrExists naming conflict; another failure
// names what.
func (s *Store) insert(ctx context.Context, tx Conn, what, conflict string, id *int64, query string, args ...any) error {
	var err error
	if id != nil {
		err = tx.QueryRow(ctx, query, args...).Scan(id)
	} else {
		_, err = tx.Exec(ctx, query, args...)
	}
	switch {
	case s.d.IsUnique(err):
		return fmt.Errorf("%s: %w", conflict, store.ErrExists)
	case err != nil:
		return fmt.Errorf("insert %s: %w", what, err)
	}
	return nil
}

// exists reports whether query finds a row.
func exists(ctx context.Context, c Conn, query string, args ...any) (bool, error) {
	var yes bool
	err := c.QueryRow(ctx, "SELECT EXISTS ("+query+")", args...).Scan(&yes)
	return yes, err
}

// get reads the one row that query finds with args, with scan, and fails
// naming what (a format, with whatArgs) otherwise: with ErrNotFound when
// there is no row, or when ok is false (a key that no row can have).
func get[T any](ctx context.Context, s *Store, ok bool, scan func(Row) (T, error), query string, args []any,
	what string, whatArgs ...any) (T, error) {
	var (
		v   T
		err error = store.ErrNotFound
	)
	if ok {
		v, err = one(ctx, s.r, scan, query, args...)
	}
	if err != nil {
		return v, s.errf("%s: %w", fmt.Sprintf(what, whatArgs...), err)
	}
	return v, nil
}

// all reads every row that query finds with args, with scan, and fails
// naming what (a format, with whatArgs) otherwise; when ok is false (a
// key that no row can have) it finds none without asking.
func all[T any](ctx context.Context, s *Store, ok bool, scan func(Row) (T, error), query string, args []any,
	what string, whatArgs ...any) ([]T, error) {
	if !ok {
		return []T{}, nil
	}
	rows, err := s.r.Query(ctx, query, args...)
	out, err := collect(rows, err, scan)
	if err != nil {
		return nil, s.errf("%s: %w", fmt.Sprintf(what, whatArgs...), err)
	}
	return out, nil
}

// page is a list's query, built as its filters apply.
type page struct {
	sql  strings.Builder
	args []any
}

func (q *page) add(fragment string, args ...any) {
	q.sql.WriteString(fragment)
	q.args = append(q.args, args...)
}

// A listing is one of the store's paged lists: what names it in errors,
// owner what its owner id is ("organization", "app"); parse reads the
// cursors of kind; scan reads a row, and cursor makes the cursor after it.
type listing[C, T any] struct {
	what, owner string
	kind        string
	parse       func(kind, c string) (C, bool, error)
	scan        func(Row) (T, error)
	cursor      func(T) string
}

// read reads page p of the list of ownerID. build writes the statement
// for the owner's row id and the cursor's key (after, when from); it
// answers false for an empty page (a cursor no row can follow). The
// statement is sent with limit+1, so that the store can tell whether a
// next page exists, and planned for its values.
func (l listing[C, T]) read(ctx context.Context, s *Store, ownerID uint64, p store.Page,
	build func(q *page, owner int64, after C, from bool) (bool, error)) ([]T, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", s.errf("%s: %w", l.what, err)
	}
	after, from, err := l.parse(l.kind, p.After)
	if err != nil {
		return nil, "", s.errf("%s: %w", l.what, err)
	}
	var q page
	owner, ok := DBID(ownerID)
	if ok {
		ok, err = build(&q, owner, after, from)
	}
	if err != nil {
		return nil, "", s.errf("%s: %w", l.what, err)
	}
	if !ok {
		return []T{}, "", nil
	}
	q.add(" LIMIT ?", p.Limit+1)
	rows, err := s.r.QueryPlanned(ctx, q.sql.String(), q.args...)
	out, err := collect(rows, err, l.scan)
	if err != nil {
		return nil, "", s.errf("%s of %s %d: %w", l.what, l.owner, ownerID, err)
	}
	out, next := store.PageOf(out, p, l.cursor)
	return out, next, nil
}

// createdAfter ends a list ordered by creation time and then by the
// column idColumn: after the cursor's key (its time, and id in the
// column's type) when from.
func (s *Store) createdAfter(q *page, idColumn string, after store.CreatedKey, id any, from bool) {
	if from {
		q.add(" AND (created_at, "+idColumn+") > (?, ?)", s.ts(after.CreatedAt), id)
	}
	q.add(" ORDER BY created_at, " + idColumn)
}
