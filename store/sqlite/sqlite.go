// Package sqlite implements [store.Store] on a SQLite file, through the
// pure-Go driver modernc.org/sqlite. It is caveat's embedded default.
//
// The store's rules are the ones PostgreSQL uses too, in
// store/internal/sqlrules; this package gives them its connections and
// dialect (dialect.go: INTEGER microsecond times, no lock clauses since
// writers are serialised, id lists as JSON arrays, SQLite's error codes),
// and keeps its migrations, bulk import and backups.
//
// # Connections
//
// The database runs in WAL mode with foreign keys enforced. A [DB] holds two
// pools on the one file: a single writer connection, through which every
// write goes, and a pool of read-only connections. A write of several
// statements opens its transaction with BEGIN IMMEDIATE; a write of one
// statement (a lease, a touch) runs alone on the connection, in SQLite's
// own transaction, which takes the write lock at its first step, so it
// needs none. Writers of one process therefore queue in Go,
// honouring their contexts, instead of failing with SQLITE_BUSY; a busy
// timeout covers other processes and checkpoints. Readers never wait for
// the writer.
//
// # Migrations
//
// The schema is the embedded migrations/*.sql, applied in name order at
// [Open], each in its own transaction together with its row in
// schema_migrations. A database that records a migration this binary does
// not know was written by a newer caveat, and Open refuses it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/internal/sqlrules"
)

var _ store.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for a lock held by another
// process before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// DB is a caveat store in one SQLite file. It is safe for concurrent use.
// The store's rules are the shared ones of package sqlrules; this package
// brings the connections, the migrations, the bulk import and backups.
type DB struct {
	*rules
	w *sql.DB // one connection; every write transaction
	r *sql.DB // read-only connections
}

type rules = sqlrules.Store

// Open opens, creating it if needed, the SQLite database at path and brings
// its schema up to date. The directory must exist. A new file is created
// with mode 0600, since it holds password hashes; SQLite gives its WAL
// files the same mode.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open: want a file path, got %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
	}
	w, err := sql.Open("sqlite", dsn(abs, append(pragmas, "journal_mode(WAL)", "synchronous(FULL)"), "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db := &DB{w: w}

	if err := db.checkWriter(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}

	// Readers open after the writer has put the file in WAL mode.
	r, err := sql.Open("sqlite", dsn(abs, pragmas, "_query_only=1"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.r = r
	db.rules = db.newRules()
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// dsn builds a file: URI, so that any path, even one holding '?' or '#',
// reaches SQLite intact, with the driver's parameters after it.
func dsn(abs string, pragmas []string, extra ...string) string {
	q := make([]string, 0, len(pragmas)+len(extra))
	for _, p := range pragmas {
		q = append(q, "_pragma="+url.QueryEscape(p))
	}
	q = append(q, extra...)
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	return u.String() + "?" + strings.Join(q, "&")
}

// checkWriter makes sure the pragmas took: a database that silently stayed
// out of WAL mode, or without foreign keys, would break the package's
// promises.
func (db *DB) checkWriter(ctx context.Context) error {
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open: journal mode is %q, want wal", mode)
	}
	var fk int
	if err := db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("sqlite: open: read foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("sqlite: open: foreign keys are not enforced")
	}
	return nil
}

// Ping implements [store.Store].
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping readers: %w", err)
	}
	return nil
}

// Close implements [store.Store].
func (db *DB) Close() error {
	var errs []error
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations that the database lacks.
func (db *DB) migrate(ctx context.Context) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT PRIMARY KEY,
		applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
	) STRICT`
	if _, err := db.w.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("sqlite: migrate: create schema_migrations: %w", err)
	}
	if err := sqlrules.Migrate(ctx, migrations, conn{db.w}, db.writeRules); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the writer
// connection) and commits it when fn succeeds.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rowsAffected returns how many rows an update changed.
func rowsAffected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}
