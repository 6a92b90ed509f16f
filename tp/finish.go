package tp

// The application's side of poll and user-interactive flows: looking a flow
// up, and finishing it.

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/caveatdev/caveat"
)

// PendingFlow is what the application learns of a flow it is to finish.
type PendingFlow struct {
	// ID is the flow's ID, for Complete and Fail.
	ID FlowID
	// Caveats are the ticket's caveats, to check before completing.
	Caveats caveat.CaveatSet
	// Bound reports whether the discharge will be bound to its parent.
	Bound bool
	// State is where the flow stands.
	State FlowState
	// Expires is when the flow is forgotten.
	Expires time.Time
}

// Lookup returns the flow with ID id. The error wraps ErrNotFound when the
// flow does not exist, has expired or was collected.
func (s *Server) Lookup(ctx context.Context, id FlowID) (*PendingFlow, error) {
	f, err := s.store.Get(ctx, id)
	if err == nil && f.ID != id {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up flow %s: %w", id, err)
	}
	return s.pending(f)
}

// LookupUser returns the flow whose user URL ends in secret, for the
// application's page at Config.UserURLPrefix. The error wraps ErrNotFound
// for anything but the secret of a live flow.
func (s *Server) LookupUser(ctx context.Context, secret string) (*PendingFlow, error) {
	if !validSecret(secret) {
		return nil, fmt.Errorf("look up user flow: %w", ErrNotFound)
	}
	key := secretID(labelUser, secret)
	f, err := s.store.Get(ctx, key)
	if err == nil && subtle.ConstantTimeCompare(f.UserKey[:], key[:]) != 1 {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up user flow: %w", err)
	}
	return s.pending(f)
}

func (s *Server) pending(f *Flow) (*PendingFlow, error) {
	t, err := s.open(f.Ticket)
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", f.ID, err)
	}
	return &PendingFlow{ID: f.ID, Caveats: t.Caveats, Bound: f.Binding != nil, State: f.State, Expires: f.Expires}, nil
}

// Complete finishes a pending flow with a discharge carrying caveats; the
// client's next poll receives it. The error wraps ErrNotFound or
// ErrFinished, or says why the caveats cannot go into a discharge.
func (s *Server) Complete(ctx context.Context, id FlowID, caveats ...caveat.Caveat) error {
	cs := caveat.NewCaveatSet(caveats...)
	// Try the caveats on a throw-away proof now, so that a mistake shows
	// here rather than as a failed poll.
	probe, err := caveat.Mint(caveat.SigningKey("probe"), caveat.NewNonce(nil, true), s.location)
	if err == nil {
		err = probe.AddRaw(cs...)
	}
	if err != nil {
		return fmt.Errorf("complete flow %s: %w", id, err)
	}
	return s.finish(ctx, id, "complete", func(f *Flow) {
		f.State, f.Caveats = Discharged, cs.AppendEncoded(nil)
	})
}

// Fail finishes a pending flow with an error message for the client's next
// poll ("discharge refused" when msg is empty). The error wraps ErrNotFound
// or ErrFinished.
func (s *Server) Fail(ctx context.Context, id FlowID, msg string) error {
	if msg == "" {
		msg = "discharge refused"
	}
	return s.finish(ctx, id, "fail", func(f *Flow) { f.State, f.Error = Failed, msg })
}

func (s *Server) finish(ctx context.Context, id FlowID, verb string, set func(*Flow)) error {
	f, err := s.store.Get(ctx, id)
	if err == nil && f.ID != id {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%s flow %s: %w", verb, id, err)
	}
	if f.State != Pending {
		return fmt.Errorf("%s flow %s: %w (%s)", verb, id, ErrFinished, f.State)
	}
	set(f)
	if err := s.store.Put(ctx, f); err != nil {
		return fmt.Errorf("%s flow %s: %w", verb, id, err)
	}
	return nil
}
