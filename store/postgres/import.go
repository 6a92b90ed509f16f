package postgres

import (
	"context"
	"fmt"

	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/internal/sqlrules"
	"github.com/jackc/pgx/v5"
)

// importTokens is the bulk write of [store.TokenImport], with COPY: the
// tokens, then, under the feed lock, the feed entries of the revoked ones
// in order.
func (db *DB) importTokens(ctx context.Context, toks []store.Token) error {
	var revoked [][]any
	return db.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"tokens"},
			[]string{"id", "name", "profile", "org_id", "app_id", "created_by", "created_at", "expires_at", "revoked_at"},
			pgx.CopyFromSlice(len(toks), func(i int) ([]any, error) {
				t := toks[i]
				if t.Revoked() {
					revoked = append(revoked, []any{t.ID, int64(t.OrgID), ts(t.RevokedAt)})
				}
				return []any{t.ID, t.Name, t.Profile, int64(t.OrgID), sqlrules.NullID(t.AppID), int64(t.CreatedBy),
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
}
