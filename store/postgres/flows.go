package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/tp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// flowLock serialises the insertions of new third-party flows, so that the
// bounds are counted and kept in one step across replicas.
const flowLock int64 = 0x637674_00000006

// FlowStore is a [tp.FlowStore] in the database, shared by every replica:
// a flow started through one is polled and completed through any. It is
// bounded as [tp.MemoryStore] is: at most max live flows in all and
// tp.DefaultMaxFlowsPerTicket per ticket, refusing with a *tp.FullError
// rather than evicting. Expired rows stay until DeleteExpiredFlows.
type FlowStore struct {
	db  *DB
	max int
	now func() time.Time
}

var _ tp.FlowStore = (*FlowStore)(nil)

// FlowStore returns the database's flow store, holding at most max live
// flows (tp.DefaultMaxFlows when max ≤ 0), on the clock now (time.Now
// when nil).
func (db *DB) FlowStore(max int, now func() time.Time) tp.FlowStore {
	if max <= 0 {
		max = tp.DefaultMaxFlows
	}
	if now == nil {
		now = time.Now
	}
	return &FlowStore{db: db, max: max, now: now}
}

// nullKey is an optional flow key as a query argument: zero is NULL.
func nullKey(k tp.FlowID) any {
	if k.IsZero() {
		return nil
	}
	return k[:]
}

// nullBytes keeps nil apart from empty: NULL is nil.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// Put implements [tp.FlowStore].
func (s *FlowStore) Put(ctx context.Context, f *tp.Flow) error {
	if f.ID.IsZero() {
		return errors.New("postgres: put flow: flow has no id")
	}
	now := ts(s.now())
	th := sha256.Sum256(f.Ticket)
	caveats := f.Caveats
	if caveats == nil {
		caveats = []byte{}
	}
	args := []any{f.ID[:], nullKey(f.UserKey), f.Ticket, th[:], nullBytes(f.Binding), ts(f.Expires), int16(f.State), caveats, f.Error, now}
	err := s.db.tx(ctx, func(tx pgx.Tx) error {
		if !f.Expires.After(now) {
			_, err := tx.Exec(ctx, "DELETE FROM tp_flows WHERE id = $1", f.ID[:])
			return err
		}
		// Replacing a live flow never needs room; a finish replaces only
		// a pending one (the row lock makes concurrent finishes take
		// turns, and the second finds it finished).
		update := `
			UPDATE tp_flows SET user_key = $2, ticket = $3, ticket_hash = $4, binding = $5, expires_at = $6,
				state = $7, caveats = $8, error = $9
			WHERE id = $1 AND expires_at > $10`
		if f.State != tp.Pending {
			update += " AND state = 0"
		}
		tag, err := tx.Exec(ctx, update, args...)
		if err != nil {
			return fmt.Errorf("replace: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		if f.State != tp.Pending {
			var live bool
			err := tx.QueryRow(ctx, "SELECT true FROM tp_flows WHERE id = $1 AND expires_at > $2", f.ID[:], now).Scan(&live)
			if errors.Is(err, pgx.ErrNoRows) {
				return tp.ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("look up the flow: %w", err)
			}
			return tp.ErrFinished
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", flowLock); err != nil {
			return fmt.Errorf("take the flow lock: %w", err)
		}
		var (
			live  int
			first pgtype.Timestamptz
		)
		if err := tx.QueryRow(ctx, "SELECT count(*), min(expires_at) FROM tp_flows WHERE expires_at > $1", now).Scan(&live, &first); err != nil {
			return fmt.Errorf("count live flows: %w", err)
		}
		if live >= s.max {
			return &tp.FullError{Max: s.max, RetryAfter: first.Time.Sub(now)}
		}
		err = tx.QueryRow(ctx, "SELECT count(*), min(expires_at) FROM tp_flows WHERE ticket_hash = $1 AND expires_at > $2",
			th[:], now).Scan(&live, &first)
		if err != nil {
			return fmt.Errorf("count the ticket's flows: %w", err)
		}
		if live >= tp.DefaultMaxFlowsPerTicket {
			return &tp.FullError{PerTicket: true, Max: tp.DefaultMaxFlowsPerTicket, RetryAfter: first.Time.Sub(now)}
		}
		// The keys of an expired flow are free.
		if _, err := tx.Exec(ctx, "DELETE FROM tp_flows WHERE (id = $1 OR user_key = $2) AND expires_at <= $3",
			f.ID[:], nullKey(f.UserKey), now); err != nil {
			return fmt.Errorf("delete an expired flow: %w", err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO tp_flows (id, user_key, ticket, ticket_hash, binding, expires_at, state, caveats, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args[:9]...)
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: put flow %s: %w", f.ID, err)
	}
	return nil
}

// Get implements [tp.FlowStore].
func (s *FlowStore) Get(ctx context.Context, key tp.FlowID) (*tp.Flow, error) {
	var (
		f                    tp.Flow
		id, user, bind, cavs []byte
		state                int16
	)
	err := s.db.pool.QueryRow(ctx, `
		SELECT id, user_key, ticket, binding, expires_at, state, caveats, error FROM tp_flows
		WHERE (id = $1 OR user_key = $1) AND expires_at > $2`, key[:], ts(s.now())).
		Scan(&id, &user, &f.Ticket, &bind, &f.Expires, &state, &cavs, &f.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tp.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get flow %s: %w", key, err)
	}
	copy(f.ID[:], id)
	copy(f.UserKey[:], user)
	f.Binding, f.State, f.Expires = bind, tp.FlowState(state), f.Expires.UTC()
	if len(cavs) > 0 {
		f.Caveats = cavs
	}
	return &f, nil
}

// Delete implements [tp.FlowStore]. Of concurrent deletions of one flow,
// only one finds its row.
func (s *FlowStore) Delete(ctx context.Context, id tp.FlowID) error {
	var live bool
	err := s.db.pool.QueryRow(ctx, "DELETE FROM tp_flows WHERE id = $1 RETURNING expires_at > $2", id[:], ts(s.now())).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
		return tp.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: delete flow %s: %w", id, err)
	}
	return nil
}

// DeleteExpiredFlows deletes the flows that expired at or before before,
// collected or not, and returns how many: housekeeping.
func (db *DB) DeleteExpiredFlows(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM tp_flows WHERE expires_at <= $1", ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired flows: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
