package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// CreateApp implements [store.Apps].
func (db *DB) CreateApp(ctx context.Context, a store.NewApp) (store.App, error) {
	if err := a.Validate(); err != nil {
		return store.App{}, fmt.Errorf("sqlite: create app: %w", err)
	}
	created := a.CreatedAt.UTC().Truncate(time.Microsecond)
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = ?", a.OrgID, "organization"); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO apps (org_id, name, created_at) VALUES (?, ?, ?)",
			int64(a.OrgID), a.Name, ts(created))
		if isUnique(err) {
			return fmt.Errorf("app name: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert app: %w", err)
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return store.App{}, fmt.Errorf("sqlite: create app %q in organization %d: %w", a.Name, a.OrgID, err)
	}
	return store.App{ID: uint64(id), OrgID: a.OrgID, Name: a.Name, CreatedAt: created}, nil
}

const appColumns = "id, org_id, name, created_at"

func scanApp(row interface{ Scan(...any) error }) (store.App, error) {
	var (
		a            store.App
		id, org, cat int64
	)
	if err := row.Scan(&id, &org, &a.Name, &cat); err != nil {
		return store.App{}, err
	}
	a.ID, a.OrgID, a.CreatedAt = uint64(id), uint64(org), fromTS(cat)
	return a, nil
}

// GetApp implements [store.Apps].
func (db *DB) GetApp(ctx context.Context, id uint64) (store.App, error) {
	dbid, ok := dbID(id)
	if !ok {
		return store.App{}, fmt.Errorf("sqlite: get app %d: %w", id, store.ErrNotFound)
	}
	a, err := scanApp(db.r.QueryRowContext(ctx, "SELECT "+appColumns+" FROM apps WHERE id = ?", dbid))
	if errors.Is(err, sql.ErrNoRows) {
		return store.App{}, fmt.Errorf("sqlite: get app %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.App{}, fmt.Errorf("sqlite: get app %d: %w", id, err)
	}
	return a, nil
}

// GetAppByName implements [store.Apps].
func (db *DB) GetAppByName(ctx context.Context, orgID uint64, name string) (store.App, error) {
	o, ok := dbID(orgID)
	if !ok {
		return store.App{}, fmt.Errorf("sqlite: get app %q in organization %d: %w", name, orgID, store.ErrNotFound)
	}
	a, err := scanApp(db.r.QueryRowContext(ctx,
		"SELECT "+appColumns+" FROM apps WHERE org_id = ? AND name = ?", o, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.App{}, fmt.Errorf("sqlite: get app %q in organization %d: %w", name, orgID, store.ErrNotFound)
	}
	if err != nil {
		return store.App{}, fmt.Errorf("sqlite: get app %q in organization %d: %w", name, orgID, err)
	}
	return a, nil
}

// ListApps implements [store.Apps].
func (db *DB) ListApps(ctx context.Context, orgID uint64) ([]store.App, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.App{}, nil
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+appColumns+" FROM apps WHERE org_id = ? ORDER BY name", o)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list apps of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	apps := []store.App{}
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list apps of organization %d: %w", orgID, err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list apps of organization %d: %w", orgID, err)
	}
	return apps, nil
}

// CreateToken implements [store.Tokens].
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = ?", t.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", t.CreatedBy, "user"); err != nil {
			return err
		}
		if t.AppID != 0 {
			a, ok := dbID(t.AppID)
			if !ok {
				return fmt.Errorf("app %d: %w", t.AppID, store.ErrNotFound)
			}
			var org int64
			err := tx.QueryRowContext(ctx, "SELECT org_id FROM apps WHERE id = ?", a).Scan(&org)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("app %d: %w", t.AppID, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("look up app %d: %w", t.AppID, err)
			}
			if uint64(org) != t.OrgID {
				return fmt.Errorf("app %d belongs to another organization: %w", t.AppID, store.ErrInvalid)
			}
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO tokens (id, name, profile, org_id, app_id, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Profile, int64(t.OrgID), nullID(t.AppID), int64(t.CreatedBy), ts(t.CreatedAt), nullTS(t.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("token id: %w", store.ErrExists)
		}
		if isForeignKey(err) {
			return fmt.Errorf("insert token: %w", store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create token %s: %w", t.ID, err)
	}
	return nil
}

const tokenColumns = "id, name, profile, org_id, app_id, created_by, created_at, expires_at, revoked_at, last_used_at, revoked_branches"

func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var (
		t                       store.Token
		org, by, created        int64
		app                     sql.NullInt64
		expires, revoked, lastU sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Profile, &org, &app, &by, &created, &expires, &revoked, &lastU, &t.RevokedBranches); err != nil {
		return store.Token{}, err
	}
	t.OrgID, t.CreatedBy, t.CreatedAt = uint64(org), uint64(by), fromTS(created)
	if app.Valid {
		t.AppID = uint64(app.Int64)
	}
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromNullTS(expires), fromNullTS(revoked), fromNullTS(lastU)
	return t, nil
}

// GetToken implements [store.Tokens].
func (db *DB) GetToken(ctx context.Context, id string) (store.Token, error) {
	if !store.ValidTokenID(id) {
		return store.Token{}, fmt.Errorf("sqlite: get token: %w", store.ErrNotFound)
	}
	t, err := scanToken(db.r.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, fmt.Errorf("sqlite: get token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("sqlite: get token %s: %w", id, err)
	}
	return t, nil
}

// ListTokensByOrganization implements [store.Tokens].
func (db *DB) ListTokensByOrganization(ctx context.Context, orgID uint64) ([]store.Token, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Token{}, nil
	}
	toks, err := db.listTokens(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE org_id = ? ORDER BY created_at, id", o)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens of organization %d: %w", orgID, err)
	}
	return toks, nil
}

// ListTokensByApp implements [store.Tokens].
func (db *DB) ListTokensByApp(ctx context.Context, appID uint64) ([]store.Token, error) {
	a, ok := dbID(appID)
	if !ok {
		return []store.Token{}, nil
	}
	toks, err := db.listTokens(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE app_id = ? ORDER BY created_at, id", a)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens of app %d: %w", appID, err)
	}
	return toks, nil
}

func (db *DB) listTokens(ctx context.Context, query string, arg int64) ([]store.Token, error) {
	rows, err := db.r.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	toks := []store.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
	}
	return toks, rows.Err()
}

// RevokeToken implements [store.Tokens].
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) (bool, error) {
	if err := store.CheckTime("revoked at", at); err != nil {
		return false, fmt.Errorf("sqlite: revoke token: %w", err)
	}
	if !store.ValidTokenID(id) {
		return false, fmt.Errorf("sqlite: revoke token: %w", store.ErrNotFound)
	}
	var revoked bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		var (
			org int64
			cur sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, "SELECT org_id, revoked_at FROM tokens WHERE id = ?", id).Scan(&org, &cur)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		if cur.Valid {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "UPDATE tokens SET revoked_at = ? WHERE id = ?", ts(at), id); err != nil {
			return fmt.Errorf("mark revoked: %w", err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO revocations (token_id, org_id, revoked_at) VALUES (?, ?, ?)", id, org, ts(at))
		if err != nil {
			return fmt.Errorf("append to the revocation feed: %w", err)
		}
		revoked = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: revoke token %s: %w", id, err)
	}
	return revoked, nil
}

// IsTokenRevoked implements [store.Tokens].
func (db *DB) IsTokenRevoked(ctx context.Context, id string) (bool, error) {
	if !store.ValidTokenID(id) {
		return false, fmt.Errorf("sqlite: is token revoked: %w", store.ErrNotFound)
	}
	var revoked bool
	err := db.r.QueryRowContext(ctx, "SELECT revoked_at IS NOT NULL FROM tokens WHERE id = ?", id).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("sqlite: is token %s revoked: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: is token %s revoked: %w", id, err)
	}
	return revoked, nil
}

// TouchToken implements [store.Tokens].
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	if err := store.CheckTime("used at", at); err != nil {
		return fmt.Errorf("sqlite: touch token: %w", err)
	}
	if !store.ValidTokenID(id) {
		return fmt.Errorf("sqlite: touch token: %w", store.ErrNotFound)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		// One statement: it matches the row whether or not it moves the
		// time forward, so the count tells whether the token exists.
		res, err := tx.ExecContext(ctx,
			"UPDATE tokens SET last_used_at = max(coalesce(last_used_at, ?1), ?1) WHERE id = ?2", ts(at), id)
		if err != nil {
			return err
		}
		n, err := rowsAffected(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: touch token %s: %w", id, err)
	}
	return nil
}

// RevocationsSince implements [store.Tokens].
func (db *DB) RevocationsSince(ctx context.Context, after uint64, limit int) ([]store.Revocation, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: revocations since %d: limit %d: %w", after, limit, store.ErrInvalid)
	}
	revs := []store.Revocation{}
	a, ok := dbID(after)
	if !ok {
		if after != 0 {
			return revs, nil // past any cursor SQLite can hand out
		}
		a = 0
	}
	rows, err := db.r.QueryContext(ctx,
		"SELECT seq, token_id, branch, org_id, revoked_at FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?", a, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations since %d: %w", after, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r        store.Revocation
			seq, org int64
			at       int64
			branch   []byte
		)
		if err := rows.Scan(&seq, &r.TokenID, &branch, &org, &at); err != nil {
			return nil, fmt.Errorf("sqlite: revocations since %d: %w", after, err)
		}
		if branch != nil && copy(r.Branch[:], branch) != len(r.Branch) {
			return nil, fmt.Errorf("sqlite: revocations since %d: entry %d has a branch of %d bytes", after, seq, len(branch))
		}
		r.Cursor, r.OrgID, r.RevokedAt = uint64(seq), uint64(org), fromTS(at)
		revs = append(revs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revocations since %d: %w", after, err)
	}
	return revs, nil
}

// RevocationCursor implements [store.Tokens].
func (db *DB) RevocationCursor(ctx context.Context) (uint64, error) {
	var seq int64
	if err := db.r.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM revocations").Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: revocation cursor: %w", err)
	}
	return uint64(seq), nil
}
