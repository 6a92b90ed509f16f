package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/caveatdev/caveat/store"
	"github.com/jackc/pgx/v5"
)

var _ store.Throttles = (*DB)(nil)

// bucketKey is the row key of a bucket: a hash, so that the table holds no
// email address.
func bucketKey(limiter, key string) []byte {
	h := sha256.New()
	h.Write([]byte(limiter))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return h.Sum(nil)
}

// TakeAttempt implements [store.Throttles]. The row is locked from its
// read to its update, so replicas take from one bucket in turn; the count
// is store.RateLimit.Take's, on exact nanoseconds, as in one process.
func (db *DB) TakeAttempt(ctx context.Context, limiter, key string, limit store.RateLimit, now time.Time) (bool, time.Duration, error) {
	if limit.Burst < 1 {
		return false, 0, fmt.Errorf("postgres: take attempt: burst %d: %w", limit.Burst, store.ErrInvalid)
	}
	k := bucketKey(limiter, key)
	var (
		ok    bool
		retry time.Duration
	)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		full := limit.Full(now)
		var b store.Bucket
		var updated int64
		// A new bucket is inserted full; an existing one is locked and
		// read (the no-op update is what locks it).
		err := tx.QueryRow(ctx, `
			INSERT INTO throttle_buckets (key, tokens, updated_ns) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
			RETURNING tokens, updated_ns`, k, full.Tokens, full.Updated.UnixNano()).Scan(&b.Tokens, &updated)
		if err != nil {
			return fmt.Errorf("read bucket: %w", err)
		}
		b.Updated = time.Unix(0, updated)
		ok, retry = limit.Take(&b, now)
		var fullNS any
		if at := limit.FullAt(b); !at.IsZero() {
			fullNS = at.UnixNano()
		}
		_, err = tx.Exec(ctx, "UPDATE throttle_buckets SET tokens = $2, updated_ns = $3, full_ns = $4 WHERE key = $1",
			k, b.Tokens, b.Updated.UnixNano(), fullNS)
		if err != nil {
			return fmt.Errorf("update bucket: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("postgres: take attempt (%s): %w", limiter, err)
	}
	return ok, retry, nil
}

// ResetAttempts implements [store.Throttles].
func (db *DB) ResetAttempts(ctx context.Context, limiter, key string) error {
	if _, err := db.pool.Exec(ctx, "DELETE FROM throttle_buckets WHERE key = $1", bucketKey(limiter, key)); err != nil {
		return fmt.Errorf("postgres: reset attempts (%s): %w", limiter, err)
	}
	return nil
}

// DeleteFullBuckets implements [store.Throttles].
func (db *DB) DeleteFullBuckets(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, "DELETE FROM throttle_buckets WHERE full_ns <= $1", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("postgres: delete full buckets: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
