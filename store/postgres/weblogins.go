package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/internal/sqlrules"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

var _ store.WebLogins = (*DB)(nil)

// webLoginLock serialises the starts of browser logins, so that the count
// of live ones and the insertion are one step across replicas.
const webLoginLock int64 = 0x637674_00000005

// StartWebLogin implements [store.WebLogins].
func (db *DB) StartWebLogin(ctx context.Context, w store.WebLogin, max int, now time.Time) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("postgres: start web login: %w", err)
	}
	if max < 1 {
		return fmt.Errorf("postgres: start web login: bound %d: %w", max, store.ErrInvalid)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", webLoginLock); err != nil {
			return fmt.Errorf("take the web login lock: %w", err)
		}
		var (
			live  int
			first pgtype.Timestamptz
		)
		err := tx.QueryRow(ctx, "SELECT count(*), min(expires_at) FROM web_logins WHERE expires_at > $1", ts(now)).Scan(&live, &first)
		if err != nil {
			return fmt.Errorf("count live logins: %w", err)
		}
		if live >= max {
			return &store.FullError{What: "pending browser logins", Max: max, RetryAfter: first.Time.Sub(now)}
		}
		// The keys of an expired login are free.
		if _, err := tx.Exec(ctx, "DELETE FROM web_logins WHERE (poll_key = $1 OR user_key = $2) AND expires_at <= $3",
			w.PollKey[:], w.UserKey[:], ts(now)); err != nil {
			return fmt.Errorf("delete an expired login: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO web_logins (poll_key, user_key, addr, started_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			w.PollKey[:], w.UserKey[:], w.Addr, ts(w.StartedAt), ts(w.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("key: %w", store.ErrExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: start web login: %w", err)
	}
	return nil
}

const webLoginColumns = "poll_key, user_key, addr, started_at, expires_at, user_id"

// scanWebLogin reads a login selected with webLoginColumns, and then the
// columns after them into more.
func scanWebLogin(row pgx.Row, more ...any) (store.WebLogin, error) {
	var (
		w          store.WebLogin
		poll, user []byte
		uid        pgtype.Int8
	)
	if err := row.Scan(append([]any{&poll, &user, &w.Addr, &w.StartedAt, &w.ExpiresAt, &uid}, more...)...); err != nil {
		return store.WebLogin{}, err
	}
	copy(w.PollKey[:], poll)
	copy(w.UserKey[:], user)
	w.StartedAt, w.ExpiresAt = w.StartedAt.UTC(), w.ExpiresAt.UTC()
	if uid.Valid {
		w.UserID = uint64(uid.Int64)
	}
	return w, nil
}

// WebLoginByUserKey implements [store.WebLogins].
func (db *DB) WebLoginByUserKey(ctx context.Context, key store.FlowKey, now time.Time) (store.WebLogin, error) {
	w, err := scanWebLogin(db.pool.QueryRow(ctx,
		"SELECT "+webLoginColumns+" FROM web_logins WHERE user_key = $1 AND expires_at > $2", key[:], ts(now)))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.WebLogin{}, fmt.Errorf("postgres: web login: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.WebLogin{}, fmt.Errorf("postgres: web login: %w", err)
	}
	return w, nil
}

// CompleteWebLogin implements [store.WebLogins].
func (db *DB) CompleteWebLogin(ctx context.Context, key store.FlowKey, userID uint64, now time.Time) error {
	uid, ok := sqlrules.DBID(userID)
	if !ok {
		return fmt.Errorf("postgres: complete web login: user %d: %w", userID, store.ErrInvalid)
	}
	// The only change a row sees is from no user to a user, and then its
	// deletion: whoever sets the user wins, and the loser finds it set.
	tag, err := db.pool.Exec(ctx,
		"UPDATE web_logins SET user_id = $1 WHERE user_key = $2 AND expires_at > $3 AND user_id IS NULL", uid, key[:], ts(now))
	if err != nil {
		return fmt.Errorf("postgres: complete web login: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := db.WebLoginByUserKey(ctx, key, now); err != nil {
		return fmt.Errorf("postgres: complete web login: %w", err)
	}
	return fmt.Errorf("postgres: complete web login: already completed: %w", store.ErrConflict)
}

// CollectWebLogin implements [store.WebLogins]. One statement deletes a
// completed login and returns it, or returns a pending one: a completion
// that commits while it runs is waited for and deleted (the DELETE
// re-reads the row it waited on), and a concurrent collector that deleted
// first leaves it nothing.
func (db *DB) CollectWebLogin(ctx context.Context, key store.FlowKey, now time.Time) (store.WebLogin, error) {
	rows, err := db.pool.Query(ctx, `
		WITH collected AS (
			DELETE FROM web_logins WHERE poll_key = $1 AND expires_at > $2 AND user_id IS NOT NULL
			RETURNING `+webLoginColumns+`
		)
		SELECT `+webLoginColumns+`, 0 AS pref FROM collected
		UNION ALL
		SELECT `+webLoginColumns+`, 1 FROM web_logins WHERE poll_key = $1 AND expires_at > $2 AND user_id IS NULL
		ORDER BY pref`, key[:], ts(now))
	if err != nil {
		return store.WebLogin{}, fmt.Errorf("postgres: collect web login: %w", err)
	}
	logins, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.WebLogin, error) {
		var pref int
		return scanWebLogin(row, &pref)
	})
	if err != nil {
		return store.WebLogin{}, fmt.Errorf("postgres: collect web login: %w", err)
	}
	if len(logins) == 0 {
		return store.WebLogin{}, fmt.Errorf("postgres: collect web login: %w", store.ErrNotFound)
	}
	return logins[0], nil
}

// DeleteExpiredWebLogins implements [store.WebLogins].
func (db *DB) DeleteExpiredWebLogins(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM web_logins WHERE expires_at <= $1", ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired web logins: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
