package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// AcquireLease implements [store.Housekeeping]. One upsert: it takes a free
// lease, renews the holder's, and leaves anyone else's alone.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	if name == "" || holder == "" || !until.After(now) {
		return false, fmt.Errorf("sqlite: acquire lease %q: %w", name, store.ErrInvalid)
	}
	var got string
	err := db.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `
			INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
			RETURNING holder`, name, holder, ts(until), ts(now)).Scan(&got)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %q: %w", name, err)
	}
	return got == holder, nil
}

// ReleaseLease implements [store.Housekeeping].
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release lease %q: %w", name, err)
	}
	return nil
}

// PurgeExpiredTokens implements [store.Housekeeping]. Both deletions pick
// the same tokens: the first limit by expiry and id, in one transaction.
func (db *DB) PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("sqlite: purge expired tokens: limit %d: %w", limit, store.ErrInvalid)
	}
	const doomed = "SELECT id FROM tokens WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?"
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM revocations WHERE token_id IN ("+doomed+")", ts(before), limit); err != nil {
			return fmt.Errorf("delete feed entries: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM revoked_branches WHERE token_id IN ("+doomed+")", ts(before), limit); err != nil {
			return fmt.Errorf("delete revoked branches: %w", err)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM tokens WHERE id IN ("+doomed+")", ts(before), limit)
		if err != nil {
			return fmt.Errorf("delete tokens: %w", err)
		}
		n, err = rowsAffected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge expired tokens: %w", err)
	}
	return int(n), nil
}

// ImportTokens implements [store.TokenImport]: one write transaction, one
// prepared insert.
func (db *DB) ImportTokens(ctx context.Context, toks []store.Token) error {
	for _, t := range toks {
		if err := t.ValidateImport(); err != nil {
			return fmt.Errorf("sqlite: import token %s: %w", t.ID, err)
		}
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `
			INSERT INTO tokens (id, name, profile, org_id, app_id, created_by, created_at, expires_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		feed, err := tx.PrepareContext(ctx, "INSERT INTO revocations (token_id, org_id, revoked_at) VALUES (?, ?, ?)")
		if err != nil {
			return err
		}
		defer feed.Close()
		for _, t := range toks {
			_, err := ins.ExecContext(ctx, t.ID, t.Name, t.Profile, int64(t.OrgID), nullID(t.AppID), int64(t.CreatedBy),
				ts(t.CreatedAt), nullTS(t.ExpiresAt), nullTS(t.RevokedAt))
			switch {
			case isUnique(err):
				return fmt.Errorf("token %s: %w", t.ID, store.ErrExists)
			case isForeignKey(err):
				return fmt.Errorf("token %s: its organization, app or creator: %w", t.ID, store.ErrNotFound)
			case err != nil:
				return fmt.Errorf("insert token %s: %w", t.ID, err)
			}
			if t.Revoked() {
				if _, err := feed.ExecContext(ctx, t.ID, int64(t.OrgID), ts(t.RevokedAt)); err != nil {
					return fmt.Errorf("append token %s to the revocation feed: %w", t.ID, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: import %d tokens: %w", len(toks), err)
	}
	return nil
}

// DeleteSpentInvitations implements [store.Housekeeping].
func (db *DB) DeleteSpentInvitations(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM invitations
			WHERE accepted_at <= ? OR cancelled_at <= ? OR expires_at <= ?`, ts(before), ts(before), ts(before))
		if err != nil {
			return err
		}
		n, err = rowsAffected(res)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete spent invitations: %w", err)
	}
	return int(n), nil
}
