package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caveatdev/caveat/store/internal/sqlrules"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// dialect is PostgreSQL's side of the shared rules. Transactions run at
// READ COMMITTED, so what a method reads and must still hold at commit is
// locked: rows with FOR UPDATE, the organization with FOR NO KEY UPDATE
// (which leaves foreign-key checks of other writers alone), the users
// table for a first-user signup, and the feed lock for appending to the
// revocation feed.
var dialect = sqlrules.Dialect{
	Name:           "postgres",
	Time:           func(t time.Time) any { return ts(t) },
	IDs:            func(ids []string) any { return ids },
	AnyID:          "= ANY(?)",
	Greatest:       "GREATEST",
	ForUpdate:      " FOR UPDATE",
	ForNoKeyUpdate: " FOR NO KEY UPDATE",
	LockUsers:      "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE",
	IsUnique:       isUnique,
	IsForeignKey:   isForeignKey,
	BeforeFeed:     lockFeed,
	AfterFeed:      notifyFeed,
}

// lockFeed takes the feed lock until the transaction ends. It is taken
// last, so that it is held briefly and after every other lock of the
// transaction: no deadlock can form around it.
func lockFeed(ctx context.Context, tx sqlrules.Conn) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(?)", feedLock); err != nil {
		return fmt.Errorf("take the feed lock: %w", err)
	}
	return nil
}

// notifyFeed tells the listeners of the feed, when the transaction
// commits.
func notifyFeed(ctx context.Context, tx sqlrules.Conn) error {
	if _, err := tx.Exec(ctx, "SELECT pg_notify(?, '')", revocationChannel); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// pgConn is the pool, a connection or a transaction as a [sqlrules.Conn].
type pgConn struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (c pgConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, numbered(query, len(args)), args...)
	return tag.RowsAffected(), err
}

func (c pgConn) QueryRow(ctx context.Context, query string, args ...any) sqlrules.Row {
	return pgRow{c.q.QueryRow(ctx, numbered(query, len(args)), args...)}
}

func (c pgConn) Query(ctx context.Context, query string, args ...any) (sqlrules.Rows, error) {
	rows, err := c.q.Query(ctx, numbered(query, len(args)), args...)
	return pgRows{rows}, err
}

// QueryPlanned sends the query as a one-shot statement
// (QueryExecModeExec: the unnamed statement, planned for these values).
// A list's page must not be read through a cached prepared statement:
// after a few executions PostgreSQL may switch it to a generic plan, and
// for a page after a cursor its generic plan bitmap-scans the whole
// organization (100 ms at 10^5 tokens, against 2 ms for the plan made for
// the values), as the scale harness found.
func (c pgConn) QueryPlanned(ctx context.Context, query string, args ...any) (sqlrules.Rows, error) {
	rows, err := c.q.Query(ctx, numbered(query, len(args)), append([]any{pgx.QueryExecModeExec}, args...)...)
	return pgRows{rows}, err
}

// pgRow and pgRows scan the rules' times and ids with pgx's own scanners
// (pgAt, pgNum): through database/sql's Scanner, pgx would box every value
// it hands over, an allocation a column.
type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error { return r.Row.Scan(native(dest)...) }

type pgRows struct{ pgx.Rows }

func (r pgRows) Scan(dest ...any) error { return r.Rows.Scan(native(dest)...) }

// native replaces, in place, the rules' scanners in dest by pgx's.
func native(dest []any) []any {
	for i, d := range dest {
		switch d := d.(type) {
		case sqlrules.At:
			dest[i] = pgAt(d)
		case sqlrules.Num:
			dest[i] = pgNum(d)
		}
	}
	return dest
}

// pgAt is sqlrules.At as a [pgtype.TimestamptzScanner].
type pgAt sqlrules.At

func (d pgAt) ScanTimestamptz(v pgtype.Timestamptz) error {
	*d.T = time.Time{}
	if v.Valid {
		*d.T = v.Time.UTC()
	}
	return nil
}

// pgNum is sqlrules.Num as a [pgtype.Int64Scanner].
type pgNum sqlrules.Num

func (d pgNum) ScanInt64(v pgtype.Int8) error {
	*d.P = uint64(v.Int64) // 0 when NULL
	return nil
}

// numberedCache holds the statements numbered so far: the rules have a
// bounded set of statements, and numbering each once spares an
// allocation a query.
var numberedCache sync.Map

// numbered turns the placeholders of the rules into $1, $2…: "?" in
// order, and "?N" into $N; a statement without arguments (a migration,
// say) has none. The rules' statements hold no "?" other than
// placeholders.
func numbered(query string, args int) string {
	if args == 0 || !strings.Contains(query, "?") {
		return query
	}
	if v, ok := numberedCache.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		b.WriteByte('$')
		if i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
			continue // ?N: its digits follow
		}
		n++
		b.WriteString(strconv.Itoa(n))
	}
	numberedCache.Store(query, b.String())
	return b.String()
}

// newRules are the shared rules over the pool.
func (db *DB) newRules() *sqlrules.Store {
	return sqlrules.New(dialect, sqlrules.Backend{
		Read:  pgConn{db.pool},
		Write: pgConn{db.pool},
		Tx: func(ctx context.Context, fn func(tx sqlrules.Conn) error) error {
			return db.tx(ctx, func(tx pgx.Tx) error { return fn(pgConn{tx}) })
		},
		Import: db.importTokens,
	})
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUnique reports whether err is a unique_violation.
func isUnique(err error) bool { return pgCode(err) == "23505" }

// isForeignKey reports whether err is a foreign_key_violation.
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

// ts is a time as stored: UTC, microseconds.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTS is an optional time as a query argument: the zero time is NULL.
func nullTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}
