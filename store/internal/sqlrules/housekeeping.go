package sqlrules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// AcquireLease implements [store.Housekeeping]. One upsert: it takes a free
// lease, renews the holder's, and leaves anyone else's alone; concurrent
// callers are serialised on the lease's row.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	if name == "" || holder == "" || !until.After(now) || !storable(name) || !storable(holder) {
		return false, s.errf("acquire lease %q: %w", name, store.ErrInvalid)
	}
	got, err := one(ctx, s.w, scanString, `
		INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, s.ts(until), s.ts(now))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // held by another
	}
	if err != nil {
		return false, s.errf("acquire lease %q: %w", name, err)
	}
	return got == holder, nil
}

// ReleaseLease implements [store.Housekeeping].
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.Exec(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder); err != nil {
		return s.errf("release lease %q: %w", name, err)
	}
	return nil
}

// PurgeExpiredTokens implements [store.Housekeeping]. The first limit
// expired tokens by expiry and id are picked, and locked, so that a
// revocation racing the purge either commits before (and its feed entry
// goes too) or finds no token; then they go with their feed entries and
// revoked branches.
func (s *Store) PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, s.errf("purge expired tokens: limit %d: %w", limit, store.ErrInvalid)
	}
	n, err := inTx(ctx, s, func(tx Conn) (int64, error) {
		rows, err := tx.QueryPlanned(ctx, "SELECT id FROM tokens WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?"+s.d.ForUpdate,
			s.ts(before), limit)
		ids, err := collect(rows, err, scanString)
		if err != nil || len(ids) == 0 {
			return 0, err
		}
		for _, table := range []string{"revocations", "revoked_branches"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE token_id "+s.d.AnyID, s.d.IDs(ids)); err != nil {
				return 0, fmt.Errorf("delete from %s: %w", table, err)
			}
		}
		return tx.Exec(ctx, "DELETE FROM tokens WHERE id "+s.d.AnyID, s.d.IDs(ids))
	})
	if err != nil {
		return 0, s.errf("purge expired tokens: %w", err)
	}
	return int(n), nil
}

// ImportTokens implements [store.TokenImport]: every token is checked, then
// the backend writes them all in one transaction.
func (s *Store) ImportTokens(ctx context.Context, toks []store.Token) error {
	for _, t := range toks {
		if err := t.ValidateImport(); err != nil {
			return s.errf("import token %s: %w", t.ID, err)
		}
	}
	if err := s.bulk(ctx, toks); err != nil {
		return s.errf("import %d tokens: %w", len(toks), err)
	}
	return nil
}

// DeleteSpentInvitations implements [store.Housekeeping].
func (s *Store) DeleteSpentInvitations(ctx context.Context, before time.Time) (int, error) {
	b := s.ts(before)
	n, err := s.w.Exec(ctx, `DELETE FROM invitations
		WHERE accepted_at <= ? OR cancelled_at <= ? OR expires_at <= ?`, b, b, b)
	if err != nil {
		return 0, s.errf("delete spent invitations: %w", err)
	}
	return int(n), nil
}
