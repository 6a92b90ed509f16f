package postgres

import (
	"context"
	"fmt"
	"time"
)

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
