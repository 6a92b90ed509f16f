package sqlrules

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// Apps, named tokens, their revocation and the revocation feed.

// CreateApp implements [store.Apps].
func (s *Store) CreateApp(ctx context.Context, a store.NewApp) (store.App, error) {
	return create(ctx, s, "create app", a.Validate(), []ref{orgRef(a.OrgID)}, func(tx Conn) (store.App, error) {
		created := micro(a.CreatedAt)
		var id int64
		err := s.insert(ctx, tx, "app", "app name", &id, "INSERT INTO apps (org_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
			int64(a.OrgID), a.Name, s.ts(created))
		return store.App{ID: uint64(id), OrgID: a.OrgID, Name: a.Name, CreatedAt: created}, err
	}, "create app %q in organization %d", a.Name, a.OrgID)
}

const appColumns = "id, org_id, name, created_at"

func scanApp(row Row) (store.App, error) {
	var a store.App
	err := row.Scan(Num{&a.ID}, Num{&a.OrgID}, &a.Name, At{&a.CreatedAt})
	return a, err
}

// GetApp implements [store.Apps].
func (s *Store) GetApp(ctx context.Context, id uint64) (store.App, error) {
	dbid, ok := DBID(id)
	return get(ctx, s, ok, scanApp, "SELECT "+appColumns+" FROM apps WHERE id = ?", []any{dbid}, "get app %d", id)
}

// GetAppByName implements [store.Apps].
func (s *Store) GetAppByName(ctx context.Context, orgID uint64, name string) (store.App, error) {
	o, ok := DBID(orgID)
	return get(ctx, s, ok && storable(name), scanApp, "SELECT "+appColumns+" FROM apps WHERE org_id = ? AND name = ?",
		[]any{o, name}, "get app %q in organization %d", name, orgID)
}

var appListing = listing[string, store.App]{"list apps", "organization", store.CursorApps, store.ParseNameCursor,
	scanApp, store.AppCursor}

// ListApps implements [store.Apps].
func (s *Store) ListApps(ctx context.Context, orgID uint64, p store.Page) ([]store.App, string, error) {
	return appListing.read(ctx, s, orgID, p, func(q *page, o int64, after string, from bool) (bool, error) {
		q.add("SELECT "+appColumns+" FROM apps WHERE org_id = ?", o)
		if from {
			q.add(" AND name > ?", after)
		}
		q.add(" ORDER BY name")
		return !from || storable(after), nil
	})
}

// ListAppsByName implements [store.Apps].
func (s *Store) ListAppsByName(ctx context.Context, name string, userID uint64) ([]store.App, error) {
	u, ok := DBID(userID)
	return all(ctx, s, ok && storable(name), scanApp, "SELECT "+appColumns+` FROM apps
		WHERE name = ? AND org_id IN (SELECT org_id FROM memberships WHERE user_id = ?) ORDER BY org_id`, []any{name, u},
		"list apps named %q of user %d", name, userID)
}

// CreateToken implements [store.Tokens].
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	return change(ctx, s, "create token", t.Validate(), []ref{orgRef(t.OrgID), userRef("user", t.CreatedBy)}, func(tx Conn) error {
		if t.AppID != 0 {
			if err := requireAppOf(ctx, tx, t.AppID, t.OrgID); err != nil {
				return err
			}
		}
		err := s.insert(ctx, tx, "token", "token id", nil, `
			INSERT INTO tokens (id, name, profile, org_id, app_id, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Profile, int64(t.OrgID), NullID(t.AppID), int64(t.CreatedBy), s.ts(t.CreatedAt), s.nullTS(t.ExpiresAt))
		if s.d.IsForeignKey(err) {
			return fmt.Errorf("insert token: %w", store.ErrNotFound)
		}
		return err
	}, "create token %s", t.ID)
}

// requireAppOf fails with ErrNotFound unless the app exists, and with
// ErrInvalid unless it belongs to the organization.
func requireAppOf(ctx context.Context, tx Conn, appID, orgID uint64) error {
	a, ok := DBID(appID)
	if !ok {
		return fmt.Errorf("app %d: %w", appID, store.ErrNotFound)
	}
	org, err := one(ctx, tx, scanInt64, "SELECT org_id FROM apps WHERE id = ?", a)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("app %d: %w", appID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("look up app %d: %w", appID, err)
	case uint64(org) != orgID:
		return fmt.Errorf("app %d belongs to another organization: %w", appID, store.ErrInvalid)
	}
	return nil
}

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = "id, name, profile, org_id, app_id, created_by, created_at, expires_at, revoked_at, last_used_at, revoked_branches"

// scanToken reads a token selected with tokenColumns.
func scanToken(row Row) (store.Token, error) {
	var (
		t        store.Token
		branches uint64
	)
	err := row.Scan(&t.ID, &t.Name, &t.Profile, Num{&t.OrgID}, Num{&t.AppID}, Num{&t.CreatedBy}, At{&t.CreatedAt},
		At{&t.ExpiresAt}, At{&t.RevokedAt}, At{&t.LastUsedAt}, Num{&branches})
	t.RevokedBranches = int(branches)
	return t, err
}

// GetToken implements [store.Tokens].
func (s *Store) GetToken(ctx context.Context, id string) (store.Token, error) {
	if !store.ValidTokenID(id) {
		return store.Token{}, s.errf("get token: %w", store.ErrNotFound)
	}
	return get(ctx, s, true, scanToken, "SELECT "+tokenColumns+" FROM tokens WHERE id = ?", []any{id}, "get token %s", id)
}

var tokenListing = listing[store.CreatedKey, store.Token]{"list tokens", "organization", store.CursorTokens,
	store.ParseCreatedCursor, scanToken, store.TokenCursor}

// ListTokens implements [store.Tokens]. The page is read along the
// index of the organization's (or the app's) tokens by creation time and
// id, from the cursor on: its cost does not grow with the tokens before it.
func (s *Store) ListTokens(ctx context.Context, f store.TokenFilter, p store.Page) ([]store.Token, string, error) {
	return tokenListing.read(ctx, s, f.OrgID, p, func(q *page, o int64, after store.CreatedKey, from bool) (bool, error) {
		q.add("SELECT "+tokenColumns+" FROM tokens WHERE org_id = ?", o)
		if f.AppID != 0 {
			a, ok := DBID(f.AppID)
			if !ok {
				return false, nil
			}
			q.add(" AND app_id = ?", a)
		}
		if !f.LiveAt.IsZero() {
			q.add(" AND (expires_at IS NULL OR expires_at > ?)", s.ts(f.LiveAt))
		}
		s.createdAfter(q, "id", after, after.ID, from)
		return true, nil
	})
}

// RevokeToken implements [store.Tokens].
func (s *Store) RevokeToken(ctx context.Context, id string, when time.Time) (bool, error) {
	if err := store.CheckTime("revoked at", when); err != nil {
		return false, s.errf("revoke token: %w", err)
	}
	if !store.ValidTokenID(id) {
		return false, s.errf("revoke token: %w", store.ErrNotFound)
	}
	revoked, err := inTx(ctx, s, func(tx Conn) (bool, error) {
		// The row lock taken by the update makes a concurrent revocation
		// of the same token wait, then find it revoked.
		org, err := one(ctx, tx, scanInt64,
			"UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING org_id", s.ts(when), id)
		if errors.Is(err, store.ErrNotFound) {
			return false, s.mustExist(ctx, tx, "tokens", id)
		}
		if err != nil {
			return false, fmt.Errorf("mark revoked: %w", err)
		}
		// The feed's lock is taken last, so that it is held briefly and
		// after every other lock of this transaction: no deadlock can
		// form around it.
		err = s.feed(ctx, tx, func() error {
			_, err := tx.Exec(ctx, "INSERT INTO revocations (token_id, org_id, revoked_at) VALUES (?, ?, ?)", id, org, s.ts(when))
			return err
		})
		return err == nil, err
	})
	if err != nil {
		return false, s.errf("revoke token %s: %w", id, err)
	}
	return revoked, nil
}

// IsTokenRevoked implements [store.Tokens].
func (s *Store) IsTokenRevoked(ctx context.Context, id string) (bool, error) {
	if !store.ValidTokenID(id) {
		return false, s.errf("is token revoked: %w", store.ErrNotFound)
	}
	return get(ctx, s, true, func(row Row) (bool, error) {
		var revoked bool
		err := row.Scan(&revoked)
		return revoked, err
	}, "SELECT revoked_at IS NOT NULL FROM tokens WHERE id = ?", []any{id}, "is token %s revoked", id)
}

// TouchToken implements [store.Tokens].
func (s *Store) TouchToken(ctx context.Context, id string, when time.Time) error {
	if err := store.CheckTime("used at", when); err != nil {
		return s.errf("touch token: %w", err)
	}
	if !store.ValidTokenID(id) {
		return s.errf("touch token: %w", store.ErrNotFound)
	}
	// One statement: it matches the row whether or not it moves the time
	// forward, so the count tells whether the token exists.
	n, err := s.w.Exec(ctx, "UPDATE tokens SET last_used_at = "+s.d.Greatest+"(coalesce(last_used_at, ?1), ?1) WHERE id = ?2",
		s.ts(when), id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return s.errf("touch token %s: %w", id, err)
	}
	return nil
}

// RevocationsSince implements [store.Tokens].
func (s *Store) RevocationsSince(ctx context.Context, after uint64, limit int) ([]store.Revocation, error) {
	if limit < 1 {
		return nil, s.errf("revocations since %d: limit %d: %w", after, limit, store.ErrInvalid)
	}
	a, ok := DBID(after)
	if !ok && after != 0 {
		return []store.Revocation{}, nil // past any cursor the database can hand out
	}
	rows, err := s.r.Query(ctx,
		"SELECT seq, token_id, branch, org_id, revoked_at FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?", a, limit)
	revs, err := collect(rows, err, func(row Row) (store.Revocation, error) {
		var (
			r      store.Revocation
			branch []byte
		)
		if err := row.Scan(Num{&r.Cursor}, &r.TokenID, &branch, Num{&r.OrgID}, At{&r.RevokedAt}); err != nil {
			return store.Revocation{}, err
		}
		if branch != nil && copy(r.Branch[:], branch) != len(r.Branch) {
			return store.Revocation{}, fmt.Errorf("entry %d has a branch of %d bytes", r.Cursor, len(branch))
		}
		return r, nil
	})
	if err != nil {
		return nil, s.errf("revocations since %d: %w", after, err)
	}
	return revs, nil
}

// RevocationCursor implements [store.Tokens].
func (s *Store) RevocationCursor(ctx context.Context) (uint64, error) {
	var seq int64
	if err := s.r.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM revocations").Scan(&seq); err != nil {
		return 0, s.errf("revocation cursor: %w", err)
	}
	return uint64(seq), nil
}

// RevokeBranch implements [store.Tokens].
func (s *Store) RevokeBranch(ctx context.Context, b store.RevokedBranch) (bool, error) {
	if err := b.Validate(); err != nil {
		return false, s.errf("revoke branch: %w", err)
	}
	revoked, err := inTx(ctx, s, func(tx Conn) (bool, error) {
		// The token's row lock serialises the branch revocations of one
		// token, so that the count below stays exact until this commits.
		var org, n int64
		err := tx.QueryRow(ctx, "SELECT org_id, revoked_branches FROM tokens WHERE id = ?"+s.d.ForUpdate, b.TokenID).Scan(&org, &n)
		if errors.Is(err, sql.ErrNoRows) {
			return false, store.ErrNotFound
		}
		if err != nil {
			return false, fmt.Errorf("lock token: %w", err)
		}
		if b.RevokedBy != 0 {
			if err := require(ctx, tx, userRef("user", b.RevokedBy)); err != nil {
				return false, err
			}
		}
		have, err := exists(ctx, tx, "SELECT 1 FROM revoked_branches WHERE token_id = ? AND branch = ?", b.TokenID, b.Branch[:])
		if err != nil || have {
			return false, err
		}
		if n >= store.MaxRevokedBranches {
			return false, fmt.Errorf("the token has %d revoked branches, the most it may have: %w", n, store.ErrLimit)
		}
		_, err = tx.Exec(ctx,
			"INSERT INTO revoked_branches (token_id, branch, revoked_at, revoked_by) VALUES (?, ?, ?, ?)",
			b.TokenID, b.Branch[:], s.ts(b.RevokedAt), NullID(b.RevokedBy))
		if err != nil {
			return false, fmt.Errorf("insert revoked branch: %w", err)
		}
		if _, err := tx.Exec(ctx, "UPDATE tokens SET revoked_branches = revoked_branches + 1 WHERE id = ?", b.TokenID); err != nil {
			return false, fmt.Errorf("count the revoked branch: %w", err)
		}
		// The feed's lock is taken last, as RevokeToken does.
		err = s.feed(ctx, tx, func() error {
			_, err := tx.Exec(ctx, "INSERT INTO revocations (token_id, branch, org_id, revoked_at) VALUES (?, ?, ?, ?)",
				b.TokenID, b.Branch[:], org, s.ts(b.RevokedAt))
			return err
		})
		return err == nil, err
	})
	if err != nil {
		return false, s.errf("revoke branch %s of token %s: %w", b.Branch, b.TokenID, err)
	}
	return revoked, nil
}

// ListRevokedBranches implements [store.Tokens].
func (s *Store) ListRevokedBranches(ctx context.Context, tokenID string) ([]store.RevokedBranch, error) {
	if !store.ValidTokenID(tokenID) {
		return nil, s.errf("list revoked branches: %w", store.ErrNotFound)
	}
	// One statement, so one snapshot: no row means no token, and a row
	// without a branch a token with none.
	rows, err := s.r.Query(ctx, `
		SELECT b.branch, b.revoked_at, b.revoked_by FROM tokens t
		LEFT JOIN revoked_branches b ON b.token_id = t.id
		WHERE t.id = ? ORDER BY b.revoked_at, b.branch`, tokenID)
	found, err := collect(rows, err, func(row Row) (*store.RevokedBranch, error) {
		var (
			branch []byte
			b      = store.RevokedBranch{TokenID: tokenID}
		)
		if err := row.Scan(&branch, At{&b.RevokedAt}, Num{&b.RevokedBy}); err != nil || branch == nil {
			return nil, err // no branch: the token has none
		}
		if copy(b.Branch[:], branch) != len(b.Branch) {
			return nil, fmt.Errorf("a branch of %d bytes", len(branch))
		}
		return &b, nil
	})
	if err != nil {
		return nil, s.errf("list revoked branches of token %s: %w", tokenID, err)
	}
	if len(found) == 0 {
		return nil, s.errf("list revoked branches of token %s: %w", tokenID, store.ErrNotFound)
	}
	out := make([]store.RevokedBranch, 0, len(found))
	for _, b := range found {
		if b != nil {
			out = append(out, *b)
		}
	}
	return out, nil
}
