package sqlrules

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
)

// The organizations' root keys.

// RotateRootKey implements [store.RootKeys].
func (s *Store) RotateRootKey(ctx context.Context, k store.NewRootKey) (store.RootKey, error) {
	// The organization is locked to serialise its rotations: without the
	// lock, two could each demote the same old key and both insert an
	// active one, and the second would fail on the one-active index.
	return create(ctx, s, "", k.Validate(), []ref{lockedOrg(k.OrgID, s.d.ForNoKeyUpdate)}, func(tx Conn) (store.RootKey, error) {
		created := micro(k.CreatedAt)
		_, err := tx.Exec(ctx,
			"UPDATE root_keys SET state = 'rotated', rotated_at = ? WHERE org_id = ? AND state = 'active'",
			s.ts(created), int64(k.OrgID))
		if err != nil {
			return store.RootKey{}, fmt.Errorf("demote active key: %w", err)
		}
		err = s.insert(ctx, tx, "key", "key id", nil,
			"INSERT INTO root_keys (kid, org_id, sealed, state, created_at) VALUES (?, ?, ?, 'active', ?)",
			[]byte(k.KID), int64(k.OrgID), []byte(k.Sealed), s.ts(created))
		return store.RootKey{
			KID:       clone(k.KID),
			OrgID:     k.OrgID,
			Sealed:    clone(k.Sealed),
			State:     store.KeyActive,
			CreatedAt: created,
		}, err
	}, "rotate root key of organization %d", k.OrgID)
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

const keyColumns = "kid, org_id, sealed, state, created_at, rotated_at, retired_at"

func scanKey(row Row) (store.RootKey, error) {
	var k store.RootKey
	err := row.Scan(&k.KID, Num{&k.OrgID}, (*[]byte)(&k.Sealed), (*string)(&k.State), At{&k.CreatedAt}, At{&k.RotatedAt},
		At{&k.RetiredAt})
	return k, err
}

// ActiveRootKey implements [store.RootKeys].
func (s *Store) ActiveRootKey(ctx context.Context, orgID uint64) (store.RootKey, error) {
	o, ok := DBID(orgID)
	return get(ctx, s, ok, scanKey, "SELECT "+keyColumns+" FROM root_keys WHERE org_id = ? AND state = 'active'", []any{o},
		"active root key of organization %d", orgID)
}

// GetRootKey implements [store.RootKeys].
func (s *Store) GetRootKey(ctx context.Context, kid []byte) (store.RootKey, error) {
	return get(ctx, s, true, scanKey, "SELECT "+keyColumns+" FROM root_keys WHERE kid = ?", []any{kid}, "get root key %x", kid)
}

var keyListing = listing[store.CreatedKey, store.RootKey]{"list root keys", "organization", store.CursorKeys,
	store.ParseCreatedCursor, scanKey, store.KeyCursor}

// ListRootKeys implements [store.RootKeys].
func (s *Store) ListRootKeys(ctx context.Context, orgID uint64, p store.Page) ([]store.RootKey, string, error) {
	return keyListing.read(ctx, s, orgID, p, func(q *page, o int64, after store.CreatedKey, from bool) (bool, error) {
		q.add("SELECT "+keyColumns+" FROM root_keys WHERE org_id = ?", o)
		kid, err := hex.DecodeString(after.ID)
		if err != nil {
			return false, fmt.Errorf("cursor: %w", store.ErrInvalid)
		}
		s.createdAfter(q, "kid", after, kid, from)
		return true, nil
	})
}

// RetireRootKey implements [store.RootKeys].
func (s *Store) RetireRootKey(ctx context.Context, kid []byte, when time.Time) (bool, error) {
	if err := store.CheckTime("retired at", when); err != nil {
		return false, s.errf("retire root key %x: %w", kid, err)
	}
	retired, err := inTx(ctx, s, func(tx Conn) (bool, error) {
		state, err := one(ctx, tx, scanString, "SELECT state FROM root_keys WHERE kid = ?"+s.d.ForUpdate, kid)
		if err != nil {
			return false, err
		}
		switch store.KeyState(state) {
		case store.KeyRetired:
			return false, nil
		case store.KeyActive:
			return false, fmt.Errorf("the key is active, rotate first: %w", store.ErrConflict)
		}
		_, err = tx.Exec(ctx, "UPDATE root_keys SET state = 'retired', retired_at = ? WHERE kid = ?", s.ts(when), kid)
		if err != nil {
			return false, fmt.Errorf("retire: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return false, s.errf("retire root key %x: %w", kid, err)
	}
	return retired, nil
}
