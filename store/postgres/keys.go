package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RotateRootKey implements [store.RootKeys].
func (db *DB) RotateRootKey(ctx context.Context, k store.NewRootKey) (store.RootKey, error) {
	if err := k.Validate(); err != nil {
		return store.RootKey{}, fmt.Errorf("postgres: rotate root key of organization %d: %w", k.OrgID, err)
	}
	created := ts(k.CreatedAt)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// Serialise the organization's rotations: without the lock, two
		// could each demote the same old key and both insert an active
		// one, and the second would fail on the one-active index.
		if err := lockOrganization(ctx, tx, k.OrgID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			"UPDATE root_keys SET state = 'rotated', rotated_at = $1 WHERE org_id = $2 AND state = 'active'",
			created, int64(k.OrgID))
		if err != nil {
			return fmt.Errorf("demote active key: %w", err)
		}
		_, err = tx.Exec(ctx,
			"INSERT INTO root_keys (kid, org_id, sealed, state, created_at) VALUES ($1, $2, $3, 'active', $4)",
			[]byte(k.KID), int64(k.OrgID), []byte(k.Sealed), created)
		if isUnique(err) {
			return fmt.Errorf("key id: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.RootKey{}, fmt.Errorf("postgres: rotate root key of organization %d: %w", k.OrgID, err)
	}
	return store.RootKey{
		KID:       clone(k.KID),
		OrgID:     k.OrgID,
		Sealed:    clone(k.Sealed),
		State:     store.KeyActive,
		CreatedAt: created,
	}, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

const keyColumns = "kid, org_id, sealed, state, created_at, rotated_at, retired_at"

func scanKey(row pgx.Row) (store.RootKey, error) {
	var (
		k                store.RootKey
		org              int64
		state            string
		rotated, retired pgtype.Timestamptz
	)
	if err := row.Scan(&k.KID, &org, (*[]byte)(&k.Sealed), &state, &k.CreatedAt, &rotated, &retired); err != nil {
		return store.RootKey{}, err
	}
	k.OrgID, k.State = uint64(org), store.KeyState(state)
	k.CreatedAt, k.RotatedAt, k.RetiredAt = k.CreatedAt.UTC(), fromNullTS(rotated), fromNullTS(retired)
	return k, nil
}

// ActiveRootKey implements [store.RootKeys].
func (db *DB) ActiveRootKey(ctx context.Context, orgID uint64) (store.RootKey, error) {
	o, ok := dbID(orgID)
	if !ok {
		return store.RootKey{}, fmt.Errorf("postgres: active root key of organization %d: %w", orgID, store.ErrNotFound)
	}
	k, err := scanKey(db.pool.QueryRow(ctx,
		"SELECT "+keyColumns+" FROM root_keys WHERE org_id = $1 AND state = 'active'", o))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.RootKey{}, fmt.Errorf("postgres: active root key of organization %d: %w", orgID, store.ErrNotFound)
	}
	if err != nil {
		return store.RootKey{}, fmt.Errorf("postgres: active root key of organization %d: %w", orgID, err)
	}
	return k, nil
}

// GetRootKey implements [store.RootKeys].
func (db *DB) GetRootKey(ctx context.Context, kid []byte) (store.RootKey, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM root_keys WHERE kid = $1", kid))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.RootKey{}, fmt.Errorf("postgres: get root key %x: %w", kid, store.ErrNotFound)
	}
	if err != nil {
		return store.RootKey{}, fmt.Errorf("postgres: get root key %x: %w", kid, err)
	}
	return k, nil
}

// ListRootKeys implements [store.RootKeys].
func (db *DB) ListRootKeys(ctx context.Context, orgID uint64, p store.Page) ([]store.RootKey, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", fmt.Errorf("postgres: list root keys: %w", err)
	}
	after, from, err := store.ParseCreatedCursor(store.CursorKeys, p.After)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list root keys: %w", err)
	}
	o, ok := dbID(orgID)
	if !ok {
		return []store.RootKey{}, "", nil
	}
	var q query
	q.add("SELECT "+keyColumns+" FROM root_keys WHERE org_id = ?", o)
	if from {
		kid, err := hex.DecodeString(after.ID)
		if err != nil {
			return nil, "", fmt.Errorf("postgres: list root keys: cursor: %w", store.ErrInvalid)
		}
		q.add(" AND (created_at, kid) > (?, ?)", ts(after.CreatedAt), kid)
	}
	q.add(" ORDER BY created_at, kid LIMIT ?", p.Limit+1)
	rows, err := db.pool.Query(ctx, q.sql, q.oneShot()...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list root keys of organization %d: %w", orgID, err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.RootKey, error) { return scanKey(row) })
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list root keys of organization %d: %w", orgID, err)
	}
	keys, next := store.PageOf(nonNil(keys), p, store.KeyCursor)
	return keys, next, nil
}

// RetireRootKey implements [store.RootKeys].
func (db *DB) RetireRootKey(ctx context.Context, kid []byte, at time.Time) (bool, error) {
	if err := store.CheckTime("retired at", at); err != nil {
		return false, fmt.Errorf("postgres: retire root key %x: %w", kid, err)
	}
	var retired bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, "SELECT state FROM root_keys WHERE kid = $1 FOR UPDATE", kid).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read key state: %w", err)
		}
		switch store.KeyState(state) {
		case store.KeyRetired:
			return nil
		case store.KeyActive:
			return fmt.Errorf("the key is active, rotate first: %w", store.ErrConflict)
		}
		_, err = tx.Exec(ctx, "UPDATE root_keys SET state = 'retired', retired_at = $1 WHERE kid = $2", ts(at), kid)
		if err != nil {
			return fmt.Errorf("retire: %w", err)
		}
		retired = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: retire root key %x: %w", kid, err)
	}
	return retired, nil
}
