package server

// Housekeeping keeps the tables from growing forever: on a schedule, one
// replica at a time (the holder of a lease row in the database; on SQLite,
// the one process) deletes what nobody can use any more:
//
//   - sessions that have expired;
//   - tokens that expired longer than Config.Retention ago, revoked or not,
//     with their entries in the revocation feed. A revoked token keeps its
//     revocation for as long as it could be used, and then for the
//     retention; one without an expiry keeps it forever;
//   - invitations a week after they were accepted, cancelled or expired;
//   - on a shared database, browser logins and discharge flows that have
//     expired (collected ones are deleted when collected), and throttle
//     buckets that are full again. A server on its own keeps those in
//     memory, where they are swept as they expire.
//
// Each kind is a step; a step that fails is logged and the others run.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/caveatdev/caveat/store"
)

// Housekeeping defaults.
const (
	// DefaultRetention is how long expired tokens are kept: long enough to
	// answer "what was this token?" about one that stopped working.
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultHousekeepingInterval is how often a replica tries to take the
	// lease and purge.
	DefaultHousekeepingInterval = time.Hour
)

// housekeepingLease names the lease row.
const housekeepingLease = "housekeeping"

// purgeBatch bounds the tokens one transaction deletes, so that a large
// backlog does not hold locks for long.
const purgeBatch = 1000

// sharedPurge is what a shared database offers to purge of the state that
// replicas share (see sharedState).
type sharedPurge interface {
	DeleteExpiredWebLogins(ctx context.Context, before time.Time) (int, error)
	DeleteExpiredFlows(ctx context.Context, before time.Time) (int, error)
	DeleteFullBuckets(ctx context.Context, before time.Time) (int, error)
}

// purgeStep is one kind of record to purge: it deletes what is dead at now
// and returns how many it deleted.
type purgeStep struct {
	name string
	run  func(ctx context.Context, now time.Time) (int, error)
}

// housekeeper runs the purge steps while it holds the lease.
type housekeeper struct {
	store     store.Store
	holder    string // this process, in the lease row
	retention time.Duration
	interval  time.Duration
	now       func() time.Time
	log       *slog.Logger
	steps     []purgeStep
}

func newHousekeeper(s store.Store, cfg Config, log *slog.Logger) *housekeeper {
	var id [8]byte
	rand.Read(id[:])
	h := &housekeeper{store: s, holder: hex.EncodeToString(id[:]), retention: cfg.Retention,
		interval: cfg.HousekeepingInterval, now: cfg.Now, log: log}
	h.steps = []purgeStep{
		{"sessions", func(ctx context.Context, now time.Time) (int, error) {
			return s.DeleteExpiredSessions(ctx, now)
		}},
		{"tokens", h.purgeTokens},
	}
	if sh, ok := s.(sharedPurge); ok {
		h.steps = append(h.steps,
			purgeStep{"web logins", sh.DeleteExpiredWebLogins},
			purgeStep{"discharge flows", sh.DeleteExpiredFlows},
			purgeStep{"throttle buckets", sh.DeleteFullBuckets})
	}
	h.steps = append(h.steps, purgeStep{"invitations", func(ctx context.Context, now time.Time) (int, error) {
		return s.DeleteSpentInvitations(ctx, now.Add(-invitationGrace))
	}})
	return h
}

// invitationGrace is how long an invitation is kept after it was used,
// cancelled or expired, so that a late click on its link still says which
// (rather than that there is no such invitation).
const invitationGrace = 7 * 24 * time.Hour

// purgeTokens deletes, in batches, the tokens expired before the
// retention.
func (h *housekeeper) purgeTokens(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		n, err := h.store.PurgeExpiredTokens(ctx, now.Add(-h.retention), purgeBatch)
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}

// HousekeepingReport is what one round of housekeeping did.
type HousekeepingReport struct {
	// Ran is false when another replica holds the lease: nothing was done.
	Ran bool
	// Deleted counts the records deleted, by kind ("sessions", "tokens",
	// "web logins", "discharge flows", "throttle buckets").
	Deleted map[string]int
}

// runOnce takes or renews the lease until the next round and, holding it,
// runs every step. The error joins the steps' failures.
func (h *housekeeper) runOnce(ctx context.Context) (HousekeepingReport, error) {
	now := h.now()
	ok, err := h.store.AcquireLease(ctx, housekeepingLease, h.holder, now, now.Add(h.interval+h.interval/2))
	if err != nil {
		return HousekeepingReport{}, fmt.Errorf("housekeeping: %w", err)
	}
	if !ok {
		return HousekeepingReport{}, nil
	}
	rep := HousekeepingReport{Ran: true, Deleted: map[string]int{}}
	var errs []error
	for _, st := range h.steps {
		n, err := st.run(ctx, now)
		rep.Deleted[st.name] = n
		if err != nil {
			errs = append(errs, fmt.Errorf("housekeeping: %s: %w", st.name, err))
		}
	}
	return rep, errors.Join(errs...)
}

// run purges at once, then every interval, until ctx is done; it then
// hands the lease back, so that another replica need not wait for it to
// run out.
func (h *housekeeper) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		rep, err := h.runOnce(ctx)
		if err != nil && ctx.Err() == nil {
			h.log.ErrorContext(ctx, "housekeeping", "err", err)
		}
		if rep.Ran {
			attrs := []any{}
			for k, n := range rep.Deleted {
				attrs = append(attrs, k, n)
			}
			h.log.InfoContext(ctx, "housekeeping: purged", attrs...)
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := h.store.ReleaseLease(rctx, housekeepingLease, h.holder); err != nil {
				h.log.Warn("housekeeping: handing the lease back", "err", err)
			}
			return
		case <-t.C:
		}
	}
}

// Housekeep runs one round of housekeeping now, if this replica holds or
// can take the lease (see the file comment). Run does it on its own every
// Config.HousekeepingInterval; this is for tests and tools.
func (s *Server) Housekeep(ctx context.Context) (HousekeepingReport, error) {
	return s.housekeeper.runOnce(ctx)
}
