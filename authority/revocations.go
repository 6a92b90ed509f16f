package authority

import (
	"context"
	"errors"
	"time"

	"github.com/caveatdev/caveat/store"
)

// Run follows the revocation feed until ctx is done, evicting revoked
// tokens from the verification cache, so that a revocation made through
// any replica is honoured by this one within Config.RevocationPoll, or at
// once when the store notifies (PostgreSQL). Each read that reaches the
// feed's end confirms it current as of the read's start; cached
// verifications are served only within Config.RevocationSettle of that
// (see cache.go), so while the feed fails this replica verifies every
// bundle against the store instead. Run also sweeps the caches' expired
// entries. Run it in its own goroutine for as long as the service serves;
// without it, nothing cached is served.
func (s *Service) Run(ctx context.Context) error {
	if s.cache == nil {
		<-ctx.Done()
		return nil
	}
	start := s.cfg.Now()
	cursor, err := s.cfg.Store.RevocationCursor(ctx)
	for err != nil {
		s.cfg.Logger.WarnContext(ctx, "reading the revocation cursor", "err", err)
		if sleep(ctx, s.cfg.RevocationPoll) != nil {
			return nil
		}
		start = s.cfg.Now()
		cursor, err = s.cfg.Store.RevocationCursor(ctx)
	}
	// Verifications made before the cursor was read may concern tokens
	// revoked before it: start from an empty cache. Everything verified
	// from now on was read after the cursor.
	s.cache.EvictAll()
	s.feed.Confirm(start)

	wake := make(chan struct{}, 1)
	if l, ok := s.cfg.Store.(store.RevocationListener); ok {
		go s.listen(ctx, l, wake)
	}
	t := time.NewTicker(s.cfg.RevocationPoll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-wake:
		}
		// Every revocation committed before start is in what this read
		// returns: once it is applied, the feed is current as of start.
		start := s.cfg.Now()
		s.sweep(start)
		next, err := s.evictRevoked(ctx, cursor)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !failing {
				s.cfg.Logger.WarnContext(ctx, "reading the revocation feed; verifying every token against the store until it answers",
					"err", err)
			}
			failing = true
			continue
		}
		if failing {
			s.cfg.Logger.InfoContext(ctx, "the revocation feed answers again")
			failing = false
		}
		cursor = next
		s.feed.Confirm(start)
	}
}

// EvictSession forgets the cached verifications of a session, after a
// logout in this process.
func (s *Service) EvictSession(id string) {
	if s.cache != nil {
		s.cache.EvictToken(id)
	}
}

// evictRevoked evicts every token revoked after cursor and returns the new
// cursor.
func (s *Service) evictRevoked(ctx context.Context, cursor uint64) (uint64, error) {
	for {
		revs, err := s.cfg.Store.RevocationsSince(ctx, cursor, 1000)
		if err != nil {
			return cursor, err
		}
		for _, r := range revs {
			s.cache.EvictToken(r.TokenID)
			cursor = r.Cursor
		}
		if len(revs) < 1000 {
			return cursor, nil
		}
	}
}

// listen wakes Run after each notified revocation, re-listening after
// failures.
func (s *Service) listen(ctx context.Context, l store.RevocationListener, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := l.ListenRevocations(ctx, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			s.cfg.Logger.WarnContext(ctx, "listening for revocations; polling meanwhile", "err", err)
		}
		if sleep(ctx, time.Second) != nil {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
