package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat/store"
)

// RevokeBranch implements [store.Tokens].
func (db *DB) RevokeBranch(ctx context.Context, b store.RevokedBranch) (bool, error) {
	if err := b.Validate(); err != nil {
		return false, fmt.Errorf("sqlite: revoke branch: %w", err)
	}
	var revoked bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		var org, n int64
		err := tx.QueryRowContext(ctx, "SELECT org_id, revoked_branches FROM tokens WHERE id = ?", b.TokenID).Scan(&org, &n)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		if b.RevokedBy != 0 {
			if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", b.RevokedBy, "user"); err != nil {
				return err
			}
		}
		// One writer at a time: the count cannot change before the insert.
		var have int
		err = tx.QueryRowContext(ctx, "SELECT count(*) FROM revoked_branches WHERE token_id = ? AND branch = ?",
			b.TokenID, b.Branch[:]).Scan(&have)
		if err != nil {
			return fmt.Errorf("look up the branch: %w", err)
		}
		if have > 0 {
			return nil
		}
		if n >= store.MaxRevokedBranches {
			return fmt.Errorf("the token has %d revoked branches, the most it may have: %w", n, store.ErrLimit)
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO revoked_branches (token_id, branch, revoked_at, revoked_by) VALUES (?, ?, ?, ?)",
			b.TokenID, b.Branch[:], ts(b.RevokedAt), nullID(b.RevokedBy))
		if err != nil {
			return fmt.Errorf("insert revoked branch: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_branches = revoked_branches + 1 WHERE id = ?", b.TokenID); err != nil {
			return fmt.Errorf("count the revoked branch: %w", err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO revocations (token_id, branch, org_id, revoked_at) VALUES (?, ?, ?, ?)",
			b.TokenID, b.Branch[:], org, ts(b.RevokedAt))
		if err != nil {
			return fmt.Errorf("append to the revocation feed: %w", err)
		}
		revoked = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: revoke branch %s of token %s: %w", b.Branch, b.TokenID, err)
	}
	return revoked, nil
}

// ListRevokedBranches implements [store.Tokens].
func (db *DB) ListRevokedBranches(ctx context.Context, tokenID string) ([]store.RevokedBranch, error) {
	if !store.ValidTokenID(tokenID) {
		return nil, fmt.Errorf("sqlite: list revoked branches: %w", store.ErrNotFound)
	}
	// One statement, so one snapshot: no row means no token, and a row
	// without a branch a token with none.
	rows, err := db.r.QueryContext(ctx, `
		SELECT b.branch, b.revoked_at, b.revoked_by FROM tokens t
		LEFT JOIN revoked_branches b ON b.token_id = t.id
		WHERE t.id = ? ORDER BY b.revoked_at, b.branch`, tokenID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list revoked branches of token %s: %w", tokenID, err)
	}
	defer rows.Close()
	out := []store.RevokedBranch{}
	found := false
	for rows.Next() {
		found = true
		var (
			branch []byte
			at, by sql.NullInt64
		)
		if err := rows.Scan(&branch, &at, &by); err != nil {
			return nil, fmt.Errorf("sqlite: list revoked branches of token %s: %w", tokenID, err)
		}
		if branch == nil {
			continue // the token has none
		}
		b := store.RevokedBranch{TokenID: tokenID, RevokedAt: fromNullTS(at), RevokedBy: uint64(by.Int64)}
		if copy(b.Branch[:], branch) != len(b.Branch) {
			return nil, fmt.Errorf("sqlite: list revoked branches of token %s: a branch of %d bytes", tokenID, len(branch))
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list revoked branches of token %s: %w", tokenID, err)
	}
	if !found {
		return nil, fmt.Errorf("sqlite: list revoked branches of token %s: %w", tokenID, store.ErrNotFound)
	}
	return out, nil
}
