package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// CreateApp implements [store.Apps].
func (db *DB) CreateApp(ctx context.Context, a store.NewApp) (store.App, error) {
	if err := a.Validate(); err != nil {
		return store.App{}, fmt.Errorf("postgres: create app: %w", err)
	}
	created := ts(a.CreatedAt)
	var id int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = $1", a.OrgID, "organization"); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, "INSERT INTO apps (org_id, name, created_at) VALUES ($1, $2, $3) RETURNING id",
			int64(a.OrgID), a.Name, created).Scan(&id)
		if isUnique(err) {
			return fmt.Errorf("app name: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert app: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.App{}, fmt.Errorf("postgres: create app %q in organization %d: %w", a.Name, a.OrgID, err)
	}
	return store.App{ID: uint64(id), OrgID: a.OrgID, Name: a.Name, CreatedAt: created}, nil
}

const appColumns = "id, org_id, name, created_at"

func scanApp(row pgx.Row) (store.App, error) {
	var (
		a       store.App
		id, org int64
	)
	if err := row.Scan(&id, &org, &a.Name, &a.CreatedAt); err != nil {
		return store.App{}, err
	}
	a.ID, a.OrgID, a.CreatedAt = uint64(id), uint64(org), a.CreatedAt.UTC()
	return a, nil
}

// GetApp implements [store.Apps].
func (db *DB) GetApp(ctx context.Context, id uint64) (store.App, error) {
	dbid, ok := dbID(id)
	if !ok {
		return store.App{}, fmt.Errorf("postgres: get app %d: %w", id, store.ErrNotFound)
	}
	a, err := scanApp(db.pool.QueryRow(ctx, "SELECT "+appColumns+" FROM apps WHERE id = $1", dbid))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.App{}, fmt.Errorf("postgres: get app %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.App{}, fmt.Errorf("postgres: get app %d: %w", id, err)
	}
	return a, nil
}

// GetAppByName implements [store.Apps].
func (db *DB) GetAppByName(ctx context.Context, orgID uint64, name string) (store.App, error) {
	o, ok := dbID(orgID)
	if !ok || !storable(name) {
		return store.App{}, fmt.Errorf("postgres: get app %q in organization %d: %w", name, orgID, store.ErrNotFound)
	}
	a, err := scanApp(db.pool.QueryRow(ctx,
		"SELECT "+appColumns+" FROM apps WHERE org_id = $1 AND name = $2", o, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.App{}, fmt.Errorf("postgres: get app %q in organization %d: %w", name, orgID, store.ErrNotFound)
	}
	if err != nil {
		return store.App{}, fmt.Errorf("postgres: get app %q in organization %d: %w", name, orgID, err)
	}
	return a, nil
}

// ListApps implements [store.Apps].
func (db *DB) ListApps(ctx context.Context, orgID uint64) ([]store.App, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.App{}, nil
	}
	rows, err := db.pool.Query(ctx, "SELECT "+appColumns+" FROM apps WHERE org_id = $1 ORDER BY name", o)
	if err != nil {
		return nil, fmt.Errorf("postgres: list apps of organization %d: %w", orgID, err)
	}
	apps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.App, error) { return scanApp(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list apps of organization %d: %w", orgID, err)
	}
	return nonNil(apps), nil
}

// CreateToken implements [store.Tokens].
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("postgres: create token: %w", err)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = $1", t.OrgID, "organization"); err != nil {
			return err
		}
		if err := requireRow(ctx, tx, "SELECT 1 FROM users WHERE id = $1", t.CreatedBy, "user"); err != nil {
			return err
		}
		if t.AppID != 0 {
			a, ok := dbID(t.AppID)
			if !ok {
				return fmt.Errorf("app %d: %w", t.AppID, store.ErrNotFound)
			}
			var org int64
			err := tx.QueryRow(ctx, "SELECT org_id FROM apps WHERE id = $1", a).Scan(&org)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("app %d: %w", t.AppID, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("look up app %d: %w", t.AppID, err)
			}
			if uint64(org) != t.OrgID {
				return fmt.Errorf("app %d belongs to another organization: %w", t.AppID, store.ErrInvalid)
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO tokens (id, name, profile, org_id, app_id, created_by, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
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
		return fmt.Errorf("postgres: create token %s: %w", t.ID, err)
	}
	return nil
}

const tokenColumns = "id, name, profile, org_id, app_id, created_by, created_at, expires_at, revoked_at, last_used_at, revoked_branches"

func scanToken(row pgx.Row) (store.Token, error) {
	var (
		t                       store.Token
		org, by                 int64
		app                     pgtype.Int8
		expires, revoked, lastU pgtype.Timestamptz
		branches                int64
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Profile, &org, &app, &by, &t.CreatedAt, &expires, &revoked, &lastU, &branches); err != nil {
		return store.Token{}, err
	}
	t.RevokedBranches = int(branches)
	t.OrgID, t.CreatedBy, t.CreatedAt = uint64(org), uint64(by), t.CreatedAt.UTC()
	if app.Valid {
		t.AppID = uint64(app.Int64)
	}
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromNullTS(expires), fromNullTS(revoked), fromNullTS(lastU)
	return t, nil
}

// GetToken implements [store.Tokens].
func (db *DB) GetToken(ctx context.Context, id string) (store.Token, error) {
	if !store.ValidTokenID(id) {
		return store.Token{}, fmt.Errorf("postgres: get token: %w", store.ErrNotFound)
	}
	t, err := scanToken(db.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Token{}, fmt.Errorf("postgres: get token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("postgres: get token %s: %w", id, err)
	}
	return t, nil
}

// ListTokensByOrganization implements [store.Tokens].
func (db *DB) ListTokensByOrganization(ctx context.Context, orgID uint64) ([]store.Token, error) {
	o, ok := dbID(orgID)
	if !ok {
		return []store.Token{}, nil
	}
	toks, err := db.listTokens(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE org_id = $1 ORDER BY created_at, id", o)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens of organization %d: %w", orgID, err)
	}
	return toks, nil
}

// ListTokensByApp implements [store.Tokens].
func (db *DB) ListTokensByApp(ctx context.Context, appID uint64) ([]store.Token, error) {
	a, ok := dbID(appID)
	if !ok {
		return []store.Token{}, nil
	}
	toks, err := db.listTokens(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE app_id = $1 ORDER BY created_at, id", a)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens of app %d: %w", appID, err)
	}
	return toks, nil
}

func (db *DB) listTokens(ctx context.Context, query string, arg int64) ([]store.Token, error) {
	rows, err := db.pool.Query(ctx, query, arg)
	if err != nil {
		return nil, err
	}
	toks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Token, error) { return scanToken(row) })
	if err != nil {
		return nil, err
	}
	return nonNil(toks), nil
}

// RevokeToken implements [store.Tokens].
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) (bool, error) {
	if err := store.CheckTime("revoked at", at); err != nil {
		return false, fmt.Errorf("postgres: revoke token: %w", err)
	}
	if !store.ValidTokenID(id) {
		return false, fmt.Errorf("postgres: revoke token: %w", store.ErrNotFound)
	}
	var revoked bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// The row lock taken by the update makes a concurrent revocation
		// of the same token wait, then find it revoked.
		var org int64
		err := tx.QueryRow(ctx,
			"UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING org_id", ts(at), id).Scan(&org)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1)", id).Scan(&exists); err != nil {
				return fmt.Errorf("read token: %w", err)
			}
			if !exists {
				return store.ErrNotFound
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("mark revoked: %w", err)
		}
		// Taken last, so that it is held briefly and after every other
		// lock of this transaction: no deadlock can form around it.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", feedLock); err != nil {
			return fmt.Errorf("take the feed lock: %w", err)
		}
		_, err = tx.Exec(ctx, "INSERT INTO revocations (token_id, org_id, revoked_at) VALUES ($1, $2, $3)", id, org, ts(at))
		if err != nil {
			return fmt.Errorf("append to the revocation feed: %w", err)
		}
		// Delivered to listeners when the transaction commits.
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", revocationChannel); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		revoked = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: revoke token %s: %w", id, err)
	}
	return revoked, nil
}

// IsTokenRevoked implements [store.Tokens].
func (db *DB) IsTokenRevoked(ctx context.Context, id string) (bool, error) {
	if !store.ValidTokenID(id) {
		return false, fmt.Errorf("postgres: is token revoked: %w", store.ErrNotFound)
	}
	var revoked bool
	err := db.pool.QueryRow(ctx, "SELECT revoked_at IS NOT NULL FROM tokens WHERE id = $1", id).Scan(&revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("postgres: is token %s revoked: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("postgres: is token %s revoked: %w", id, err)
	}
	return revoked, nil
}

// TouchToken implements [store.Tokens].
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	if err := store.CheckTime("used at", at); err != nil {
		return fmt.Errorf("postgres: touch token: %w", err)
	}
	if !store.ValidTokenID(id) {
		return fmt.Errorf("postgres: touch token: %w", store.ErrNotFound)
	}
	// One statement: it matches the row whether or not it moves the time
	// forward (GREATEST ignores NULL), so the count tells whether the
	// token exists.
	tag, err := db.pool.Exec(ctx, "UPDATE tokens SET last_used_at = GREATEST(last_used_at, $1) WHERE id = $2", ts(at), id)
	if err != nil {
		return fmt.Errorf("postgres: touch token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: touch token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// RevocationsSince implements [store.Tokens].
func (db *DB) RevocationsSince(ctx context.Context, after uint64, limit int) ([]store.Revocation, error) {
	if limit < 1 {
		return nil, fmt.Errorf("postgres: revocations since %d: limit %d: %w", after, limit, store.ErrInvalid)
	}
	a, ok := dbID(after)
	if !ok {
		if after != 0 {
			return []store.Revocation{}, nil // past any cursor PostgreSQL can hand out
		}
		a = 0
	}
	rows, err := db.pool.Query(ctx,
		"SELECT seq, token_id, branch, org_id, revoked_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2", a, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations since %d: %w", after, err)
	}
	revs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Revocation, error) {
		var (
			r        store.Revocation
			seq, org int64
			branch   []byte
		)
		if err := row.Scan(&seq, &r.TokenID, &branch, &org, &r.RevokedAt); err != nil {
			return store.Revocation{}, err
		}
		if branch != nil && copy(r.Branch[:], branch) != len(r.Branch) {
			return store.Revocation{}, fmt.Errorf("entry %d has a branch of %d bytes", seq, len(branch))
		}
		r.Cursor, r.OrgID, r.RevokedAt = uint64(seq), uint64(org), r.RevokedAt.UTC()
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations since %d: %w", after, err)
	}
	return nonNil(revs), nil
}

// RevocationCursor implements [store.Tokens].
func (db *DB) RevocationCursor(ctx context.Context) (uint64, error) {
	var seq int64
	if err := db.pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM revocations").Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: revocation cursor: %w", err)
	}
	return uint64(seq), nil
}

// revocationChannel is the LISTEN/NOTIFY channel of the revocation feed.
const revocationChannel = "caveat_revocations"

// ListenRevocations implements [store.RevocationListener] with LISTEN/NOTIFY:
// it holds one connection of the pool, and calls notify after every
// committed revocation, from any process, until ctx is done or the
// connection fails.
func (db *DB) ListenRevocations(ctx context.Context, notify func()) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+revocationChannel); err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Exec(c, "UNLISTEN "+revocationChannel)
	}()
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: listen: %w", err)
		}
		notify()
	}
}
