package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RevokeBranch implements [store.Tokens].
func (db *DB) RevokeBranch(ctx context.Context, b store.RevokedBranch) (bool, error) {
	if err := b.Validate(); err != nil {
		return false, fmt.Errorf("postgres: revoke branch: %w", err)
	}
	var revoked bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// The token's row lock serialises the branch revocations of one
		// token, so that the count below stays exact until this commits.
		var org, n int64
		err := tx.QueryRow(ctx, "SELECT org_id, revoked_branches FROM tokens WHERE id = $1 FOR UPDATE", b.TokenID).Scan(&org, &n)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock token: %w", err)
		}
		if b.RevokedBy != 0 {
			if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = $1", b.RevokedBy, "user"); err != nil {
				return err
			}
		}
		var have bool
		err = tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM revoked_branches WHERE token_id = $1 AND branch = $2)",
			b.TokenID, b.Branch[:]).Scan(&have)
		if err != nil {
			return fmt.Errorf("look up the branch: %w", err)
		}
		if have {
			return nil
		}
		if n >= store.MaxRevokedBranches {
			return fmt.Errorf("the token has %d revoked branches, the most it may have: %w", n, store.ErrLimit)
		}
		_, err = tx.Exec(ctx,
			"INSERT INTO revoked_branches (token_id, branch, revoked_at, revoked_by) VALUES ($1, $2, $3, $4)",
			b.TokenID, b.Branch[:], ts(b.RevokedAt), nullID(b.RevokedBy))
		if err != nil {
			return fmt.Errorf("insert revoked branch: %w", err)
		}
		if _, err := tx.Exec(ctx, "UPDATE tokens SET revoked_branches = revoked_branches + 1 WHERE id = $1", b.TokenID); err != nil {
			return fmt.Errorf("count the revoked branch: %w", err)
		}
		// Taken last, as RevokeToken does: held briefly, after every
		// other lock of this transaction.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", feedLock); err != nil {
			return fmt.Errorf("take the feed lock: %w", err)
		}
		_, err = tx.Exec(ctx, "INSERT INTO revocations (token_id, branch, org_id, revoked_at) VALUES ($1, $2, $3, $4)",
			b.TokenID, b.Branch[:], org, ts(b.RevokedAt))
		if err != nil {
			return fmt.Errorf("append to the revocation feed: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", revocationChannel); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		revoked = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: revoke branch %s of token %s: %w", b.Branch, b.TokenID, err)
	}
	return revoked, nil
}

// ListRevokedBranches implements [store.Tokens].
func (db *DB) ListRevokedBranches(ctx context.Context, tokenID string) ([]store.RevokedBranch, error) {
	if !store.ValidTokenID(tokenID) {
		return nil, fmt.Errorf("postgres: list revoked branches: %w", store.ErrNotFound)
	}
	// One statement, so one snapshot: no row means no token, and a row
	// without a branch a token with none.
	rows, err := db.pool.Query(ctx, `
		SELECT b.branch, b.revoked_at, b.revoked_by FROM tokens t
		LEFT JOIN revoked_branches b ON b.token_id = t.id
		WHERE t.id = $1 ORDER BY b.revoked_at, b.branch`, tokenID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list revoked branches of token %s: %w", tokenID, err)
	}
	defer rows.Close()
	out := []store.RevokedBranch{}
	found := false
	for rows.Next() {
		found = true
		var (
			branch []byte
			at     pgtype.Timestamptz
			by     pgtype.Int8
		)
		if err := rows.Scan(&branch, &at, &by); err != nil {
			return nil, fmt.Errorf("postgres: list revoked branches of token %s: %w", tokenID, err)
		}
		if branch == nil {
			continue // the token has none
		}
		b := store.RevokedBranch{TokenID: tokenID, RevokedAt: fromNullTS(at), RevokedBy: uint64(by.Int64)}
		if copy(b.Branch[:], branch) != len(b.Branch) {
			return nil, fmt.Errorf("postgres: list revoked branches of token %s: a branch of %d bytes", tokenID, len(branch))
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list revoked branches of token %s: %w", tokenID, err)
	}
	if !found {
		return nil, fmt.Errorf("postgres: list revoked branches of token %s: %w", tokenID, store.ErrNotFound)
	}
	return out, nil
}
