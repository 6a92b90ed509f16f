package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
)

// AcquireLease implements [store.Housekeeping]. One upsert: it takes a free
// lease, renews the holder's, and leaves anyone else's alone; concurrent
// callers are serialised on the lease's row.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	if name == "" || holder == "" || !until.After(now) || !storable(name) || !storable(holder) {
		return false, fmt.Errorf("postgres: acquire lease %q: %w", name, store.ErrInvalid)
	}
	var got string
	err := db.pool.QueryRow(ctx, `
		INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE leases.expires_at <= $4 OR leases.holder = EXCLUDED.holder
		RETURNING holder`, name, holder, ts(until), ts(now)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: acquire lease %q: %w", name, err)
	}
	return got == holder, nil
}

// ReleaseLease implements [store.Housekeeping].
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return fmt.Errorf("postgres: release lease %q: %w", name, err)
	}
	return nil
}

// PurgeExpiredTokens implements [store.Housekeeping]. The tokens are
// locked first, so that a revocation racing the purge either commits
// before (and its feed entry goes too) or finds no token.
func (db *DB) PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("postgres: purge expired tokens: limit %d: %w", limit, store.ErrInvalid)
	}
	var n int
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// One-shot, for a plan made for these values (see query.oneShot).
		rows, err := tx.Query(ctx, "SELECT id FROM tokens WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2 FOR UPDATE",
			pgx.QueryExecModeExec, ts(before), limit)
		if err != nil {
			return fmt.Errorf("pick tokens: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("pick tokens: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, "DELETE FROM revocations WHERE token_id = ANY($1)", ids); err != nil {
			return fmt.Errorf("delete feed entries: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM revoked_branches WHERE token_id = ANY($1)", ids); err != nil {
			return fmt.Errorf("delete revoked branches: %w", err)
		}
		tag, err := tx.Exec(ctx, "DELETE FROM tokens WHERE id = ANY($1)", ids)
		if err != nil {
			return fmt.Errorf("delete tokens: %w", err)
		}
		n = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: purge expired tokens: %w", err)
	}
	return n, nil
}

// ImportTokens implements [store.TokenImport] with COPY: the tokens, then,
// under the feed lock, the feed entries of the revoked ones in order.
func (db *DB) ImportTokens(ctx context.Context, toks []store.Token) error {
	for _, t := range toks {
		if err := t.ValidateImport(); err != nil {
			return fmt.Errorf("postgres: import token %s: %w", t.ID, err)
		}
	}
	var revoked [][]any
	err := db.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"tokens"},
			[]string{"id", "name", "profile", "org_id", "app_id", "created_by", "created_at", "expires_at", "revoked_at"},
			pgx.CopyFromSlice(len(toks), func(i int) ([]any, error) {
				t := toks[i]
				if t.Revoked() {
					revoked = append(revoked, []any{t.ID, int64(t.OrgID), ts(t.RevokedAt)})
				}
				return []any{t.ID, t.Name, t.Profile, int64(t.OrgID), nullID(t.AppID), int64(t.CreatedBy),
					ts(t.CreatedAt), nullTS(t.ExpiresAt), nullTS(t.RevokedAt)}, nil
			}))
		switch {
		case isUnique(err):
			return fmt.Errorf("token id: %w", store.ErrExists)
		case isForeignKey(err):
			return fmt.Errorf("an organization, app or creator: %w", store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("copy tokens: %w", err)
		}
		if len(revoked) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", feedLock); err != nil {
			return fmt.Errorf("take the feed lock: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"revocations"}, []string{"token_id", "org_id", "revoked_at"},
			pgx.CopyFromRows(revoked)); err != nil {
			return fmt.Errorf("append to the revocation feed: %w", err)
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, '')", revocationChannel)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: import %d tokens: %w", len(toks), err)
	}
	return nil
}

// DeleteSpentInvitations implements [store.Housekeeping].
func (db *DB) DeleteSpentInvitations(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM invitations
		WHERE accepted_at <= $1 OR cancelled_at <= $1 OR expires_at <= $1`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete spent invitations: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
