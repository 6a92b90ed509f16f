// Package postgres implements [store.Store] on PostgreSQL through pgx, for
// several caveat replicas sharing one database.
//
// The store's rules are the ones SQLite uses too, in
// store/internal/sqlrules; this package gives them its pool and dialect
// (dialect.go: the lock clauses and feed hooks below, = ANY for id lists,
// $n placeholders, one-shot pages, PostgreSQL's error codes), and keeps its
// migrations, the COPY import, the revocation listener and the state the
// replicas share (third-party flows, throttles, web logins).
//
// # Migrations
//
// The schema is the embedded migrations/*.sql, applied in name order at
// [Open], each in its own transaction together with its row in
// schema_migrations. Open takes a session-level advisory lock for the whole
// run, so replicas starting at once apply each migration exactly once and
// none of them uses the schema before it is complete. A database that
// records a migration this binary does not know was written by a newer
// caveat, and Open refuses it.
//
// # Concurrency
//
// Transactions run at READ COMMITTED. Where a method reads before it
// writes and the read must still hold at commit, it first locks what it
// depends on: the organization's row (FOR NO KEY UPDATE, which leaves
// foreign-key checks of other writers alone) for key rotation and role
// changes, the users table for a first-user signup, and an advisory lock
// for appending to the revocation feed.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/internal/sqlrules"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ store.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys, in a range unlikely to meet another application's
// on a shared database ("cvt" in the high bytes).
const (
	migrationLock int64 = 0x637674_00000001
	// feedLock serialises appends to the revocation feed: a transaction
	// holds it from taking its sequence number until it commits, so rows
	// become visible in sequence order and a poller never skips one.
	feedLock int64 = 0x637674_00000002
)

// DB is a caveat store in a PostgreSQL database. It is safe for concurrent
// use.
//
// The store's rules are the shared ones of package sqlrules; this package
// brings the pool, the migrations, the bulk import (COPY), the revocation
// listener and the state that replicas share (flows, throttles, web
// logins).
type DB struct {
	*rules
	pool *pgxpool.Pool
}

type rules = sqlrules.Store

// Open connects to the database at url (a postgres:// or postgresql:// URL,
// or a key=value connection string; pool settings such as pool_max_conns
// are accepted) and brings its schema up to date.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{pool: pool}
	db.rules = db.newRules()
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Ping implements [store.Store].
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close implements [store.Store]. It waits for connections in use to be
// returned.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// migrate applies the embedded migrations that the database lacks, under
// the migration lock.
func (db *DB) migrate(ctx context.Context) (err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("postgres: migrate: take the migration lock: %w", err)
	}
	defer func() {
		// Unlock even if ctx is done; if that fails, closing the
		// connection ends the session and with it the lock.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", migrationLock); uerr != nil {
			conn.Conn().Close(uctx)
		}
	}()

	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`
	if _, err := conn.Exec(ctx, create); err != nil {
		return fmt.Errorf("postgres: migrate: create schema_migrations: %w", err)
	}
	err = sqlrules.Migrate(ctx, migrations, pgConn{conn}, func(ctx context.Context, fn func(tx sqlrules.Conn) error) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return fn(pgConn{tx}) })
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// tx runs fn in a transaction and commits it when fn succeeds.
func (db *DB) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
