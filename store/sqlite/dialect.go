package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/caveatdev/caveat/store/internal/sqlrules"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is SQLite's side of the shared rules. Writers are serialised by
// the single writer connection, so no lock clause is needed; times are
// INTEGER microseconds; a list of ids is one JSON array argument.
var dialect = sqlrules.Dialect{
	Name:         "sqlite",
	Time:         func(t time.Time) any { return ts(t) },
	IDs:          jsonIDs,
	AnyID:        "IN (SELECT value FROM json_each(?))",
	Greatest:     "max",
	IsUnique:     isUnique,
	IsForeignKey: isForeignKey,
}

// jsonIDs is ids as a JSON array, for json_each.
func jsonIDs(ids []string) any {
	b, _ := json.Marshal(ids) // a []string always marshals
	return string(b)
}

// queryer is what reads need: the reader pool, or a write transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn is a pool or a transaction of database/sql as a [sqlrules.Conn].
type conn struct {
	q interface {
		queryer
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
}

func (c conn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return rowsAffected(res)
}

func (c conn) QueryRow(ctx context.Context, query string, args ...any) sqlrules.Row {
	return c.q.QueryRowContext(ctx, query, args...)
}

func (c conn) Query(ctx context.Context, query string, args ...any) (sqlrules.Rows, error) {
	rows, err := c.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// QueryPlanned is Query: SQLite plans every statement for its values.
func (c conn) QueryPlanned(ctx context.Context, query string, args ...any) (sqlrules.Rows, error) {
	return c.Query(ctx, query, args...)
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// writeRules is write for the rules: fn gets the transaction as a Conn.
func (db *DB) writeRules(ctx context.Context, fn func(tx sqlrules.Conn) error) error {
	return db.write(ctx, func(tx *sql.Tx) error { return fn(conn{tx}) })
}

// rules are the shared rules over this database: reads from the reader
// pool, writes through the writer.
func (db *DB) newRules() *sqlrules.Store {
	return sqlrules.New(dialect, sqlrules.Backend{
		Read:   conn{db.r},
		Write:  conn{db.w},
		Tx:     db.writeRules,
		Import: db.importTokens,
	})
}

// errCode returns SQLite's extended result code of err, or 0.
func errCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	c := errCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports whether err is a FOREIGN KEY violation.
func isForeignKey(err error) bool {
	return errCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// ts is a time as stored: microseconds since the epoch.
func ts(t time.Time) int64 { return t.UnixMicro() }

// nullTS is an optional time as a query argument: the zero time is NULL.
func nullTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}
