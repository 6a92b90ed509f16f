package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/internal/sqlrules"
)

// importTokens is the bulk write of [store.TokenImport]: one write
// transaction, one prepared insert.
func (db *DB) importTokens(ctx context.Context, toks []store.Token) error {
	return db.write(ctx, func(tx *sql.Tx) error {
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
			_, err := ins.ExecContext(ctx, t.ID, t.Name, t.Profile, int64(t.OrgID), sqlrules.NullID(t.AppID), int64(t.CreatedBy),
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
}
