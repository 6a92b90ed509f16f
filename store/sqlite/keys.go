package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// RotateRootKey implements [store.RootKeys].
func (db *DB) RotateRootKey(ctx context.Context, k store.NewRootKey) (store.RootKey, error) {
	if err := k.Validate(); err != nil {
		return store.RootKey{}, fmt.Errorf("sqlite: rotate root key of organization %d: %w", k.OrgID, err)
	}
	created := k.CreatedAt.UTC().Truncate(time.Microsecond)
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := requireRow(ctx, tx, "SELECT 1 FROM organizations WHERE id = ?", k.OrgID, "organization"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			"UPDATE root_keys SET state = 'rotated', rotated_at = ? WHERE org_id = ? AND state = 'active'",
			ts(created), int64(k.OrgID))
		if err != nil {
			return fmt.Errorf("demote active key: %w", err)
		}
		_, err = tx.ExecContext(ctx,
			"INSERT INTO root_keys (kid, org_id, sealed, state, created_at) VALUES (?, ?, ?, 'active', ?)",
			[]byte(k.KID), int64(k.OrgID), []byte(k.Sealed), ts(created))
		if isUnique(err) {
			return fmt.Errorf("key id: %w", store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.RootKey{}, fmt.Errorf("sqlite: rotate root key of organization %d: %w", k.OrgID, err)
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

func scanKey(row interface{ Scan(...any) error }) (store.RootKey, error) {
	var (
		k                store.RootKey
		org              int64
		state            string
		created          int64
		rotated, retired sql.NullInt64
	)
	if err := row.Scan(&k.KID, &org, (*[]byte)(&k.Sealed), &state, &created, &rotated, &retired); err != nil {
		return store.RootKey{}, err
	}
	k.OrgID, k.State = uint64(org), store.KeyState(state)
	k.CreatedAt, k.RotatedAt, k.RetiredAt = fromTS(created), fromNullTS(rotated), fromNullTS(retired)
	return k, nil
}

// ActiveRootKey implements [store.RootKeys].
func (db *DB) ActiveRootKey(ctx context.Context, orgID uint64) (store.RootKey, error) {
	o, ok := dbID(orgID)
	if !ok {
		return store.RootKey{}, fmt.Errorf("sqlite: active root key of organization %d: %w", orgID, store.ErrNotFound)
	}
	k, err := scanKey(db.r.QueryRowContext(ctx,
		"SELECT "+keyColumns+" FROM root_keys WHERE org_id = ? AND state = 'active'", o))
	if errors.Is(err, sql.ErrNoRows) {
		return store.RootKey{}, fmt.Errorf("sqlite: active root key of organization %d: %w", orgID, store.ErrNotFound)
	}
	if err != nil {
		return store.RootKey{}, fmt.Errorf("sqlite: active root key of organization %d: %w", orgID, err)
	}
	return k, nil
}

// GetRootKey implements [store.RootKeys].
func (db *DB) GetRootKey(ctx context.Context, kid []byte) (store.RootKey, error) {
	k, err := scanKey(db.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM root_keys WHERE kid = ?", kid))
	if errors.Is(err, sql.ErrNoRows) {
		return store.RootKey{}, fmt.Errorf("sqlite: get root key %x: %w", kid, store.ErrNotFound)
	}
	if err != nil {
		return store.RootKey{}, fmt.Errorf("sqlite: get root key %x: %w", kid, err)
	}
	return k, nil
}

// ListRootKeys implements [store.RootKeys].
func (db *DB) ListRootKeys(ctx context.Context, orgID uint64, p store.Page) ([]store.RootKey, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list root keys: %w", err)
	}
	after, from, err := store.ParseCreatedCursor(store.CursorKeys, p.After)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list root keys: %w", err)
	}
	o, ok := dbID(orgID)
	if !ok {
		return []store.RootKey{}, "", nil
	}
	q, args := "SELECT "+keyColumns+" FROM root_keys WHERE org_id = ?", []any{o}
	if from {
		kid, err := hex.DecodeString(after.ID)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: list root keys: cursor: %w", store.ErrInvalid)
		}
		q, args = q+" AND (created_at, kid) > (?, ?)", append(args, ts(after.CreatedAt), kid)
	}
	rows, err := db.r.QueryContext(ctx, q+" ORDER BY created_at, kid LIMIT ?", append(args, p.Limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list root keys of organization %d: %w", orgID, err)
	}
	defer rows.Close()
	keys := []store.RootKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: list root keys of organization %d: %w", orgID, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list root keys of organization %d: %w", orgID, err)
	}
	keys, next := store.PageOf(keys, p, store.KeyCursor)
	return keys, next, nil
}

// RetireRootKey implements [store.RootKeys].
func (db *DB) RetireRootKey(ctx context.Context, kid []byte, at time.Time) (bool, error) {
	if err := store.CheckTime("retired at", at); err != nil {
		return false, fmt.Errorf("sqlite: retire root key %x: %w", kid, err)
	}
	var retired bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, "SELECT state FROM root_keys WHERE kid = ?", kid).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
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
		_, err = tx.ExecContext(ctx, "UPDATE root_keys SET state = 'retired', retired_at = ? WHERE kid = ?", ts(at), kid)
		if err != nil {
			return fmt.Errorf("retire: %w", err)
		}
		retired = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: retire root key %x: %w", kid, err)
	}
	return retired, nil
}
