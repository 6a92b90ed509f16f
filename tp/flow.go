package tp

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrNotFound means there is no such flow: it never existed, it expired, or
// its result was already collected. FlowStore implementations return it, and
// Server's methods wrap it.
var ErrNotFound = errors.New("flow not found")

// ErrFinished means a flow already has its result: Complete or Fail was
// called for it before.
var ErrFinished = errors.New("flow already finished")

// FlowID names a pending flow in a FlowStore. It is the SHA-256 of one of
// the flow's secrets under a label, so a store never holds a secret, and
// knowing a FlowID does not let anyone poll: the poll URL carries the
// secret, not its hash. The application uses it to complete the flow.
type FlowID [32]byte

// String returns the ID in lowercase hex.
func (id FlowID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero ID (no ID).
func (id FlowID) IsZero() bool { return id == FlowID{} }

// ParseFlowID parses the hex form that String returns.
func ParseFlowID(s string) (FlowID, error) {
	var id FlowID
	if len(s) != hex.EncodedLen(len(id)) {
		return id, fmt.Errorf("flow id: want %d hex characters, got %d", hex.EncodedLen(len(id)), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return FlowID{}, fmt.Errorf("flow id: %w", err)
	}
	return id, nil
}

// FlowState is where a flow stands.
type FlowState uint8

const (
	// Pending flows wait for the application's Complete or Fail.
	Pending FlowState = iota
	// Discharged flows have the caveats of their discharge; the next poll
	// builds it and collects it.
	Discharged
	// Failed flows have an error message for the next poll.
	Failed
)

// String returns "pending", "discharged" or "failed".
func (s FlowState) String() string {
	switch s {
	case Pending:
		return "pending"
	case Discharged:
		return "discharged"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("FlowState(%d)", uint8(s))
}

// Flow is a poll or user-interactive flow between its init request and the
// poll that collects its result (spec §8.3).
//
// A Flow holds no secret: the ticket is still sealed (the server opens it
// again with its keys when it builds the discharge) and the discharge itself
// is never stored, only the caveats it will carry, so a dump of a store
// lets nobody fetch or forge a discharge.
type Flow struct {
	// ID is the FlowID of the poll secret.
	ID FlowID
	// UserKey is the FlowID of the user secret of a user-interactive flow,
	// and zero for a poll flow.
	UserKey FlowID
	// Ticket is the sealed ticket as the client sent it.
	Ticket []byte
	// Binding is the parent binding the client asked for, or nil.
	Binding []byte
	// Expires is when the flow is forgotten, collected or not.
	Expires time.Time
	// State is where the flow stands.
	State FlowState
	// Caveats is the encoded caveat set (spec §3.3) the discharge will
	// carry, once State is Discharged.
	Caveats []byte
	// Error is the message for the client, once State is Failed.
	Error string
}

func (f *Flow) clone() *Flow {
	c := *f
	c.Ticket = bytes.Clone(f.Ticket)
	c.Binding = bytes.Clone(f.Binding)
	c.Caveats = bytes.Clone(f.Caveats)
	return &c
}

// ErrFull means a bounded FlowStore has no room for a new flow: it holds
// as many live flows as it may, in all or for the flow's ticket. Server
// answers it with 429 and a Retry-After header. A bounded store refuses
// rather than evicting, so that nobody can push out other people's
// pending logins by starting flows of their own.
var ErrFull = errors.New("no room for another pending flow")

// FullError is the refusal of a bounded FlowStore's Put. It wraps ErrFull,
// says which bound was reached, and when room is expected (the earliest
// expiry of the flows that fill it).
type FullError struct {
	// PerTicket is true when the flow's ticket has reached its bound, and
	// false when the whole store is full.
	PerTicket bool
	// Max is the bound reached.
	Max int
	// RetryAfter is how long until the first of those flows expires.
	RetryAfter time.Duration
}

// Error says which bound was reached and when to try again; it is meant
// for the client.
func (e *FullError) Error() string {
	what := fmt.Sprintf("the discharger holds its maximum of %d pending flows", e.Max)
	if e.PerTicket {
		what = fmt.Sprintf("this ticket already has %d pending flows, the most it may have", e.Max)
	}
	return fmt.Sprintf("%s: %v; try again in %d s", ErrFull, what, RetrySeconds(e.RetryAfter))
}

// Is makes errors.Is(err, ErrFull) true.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// RetrySeconds is d as a Retry-After value: whole seconds, rounded up, at
// least 1.
func RetrySeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

// FlowStore holds pending flows between their init request and the poll
// that collects them. Implementations must be safe for concurrent use. The
// contract:
//
//   - Put stores a copy of f under f.ID, and also under f.UserKey unless it
//     is zero, replacing any flow with the same ID. A flow whose Expires is
//     not after the store's clock is not stored (and one with the same ID
//     is removed). A bounded store that has no room for a new flow returns
//     an error wrapping ErrFull (a *FullError says when to retry) and
//     stores nothing; replacing a flow it holds never fails for want of
//     room. A finished flow (State not Pending) only replaces a live
//     Pending flow with its ID, in one atomic step: Put returns
//     ErrFinished when that flow is finished already and ErrNotFound when
//     there is none (it expired, or was collected), and stores nothing. So
//     of concurrent finishes exactly one succeeds, and a finish that
//     arrives after the poll collected the flow cannot store it again for
//     a second poll to collect.
//   - Get returns a copy of the flow stored under key, which may be its ID
//     or its UserKey. It returns an error wrapping ErrNotFound when there is
//     none, or when the flow's Expires is not after the store's clock:
//     flows expire by themselves.
//   - Delete removes the flow whose ID is id, with its UserKey. It returns
//     ErrNotFound when there was none (or it had expired), so that of
//     several concurrent deletions exactly one succeeds: Server relies on
//     this to hand a discharge out only once.
//
// A store must not forget a live flow to make room for another: a client
// waiting on it would get 404, and anyone able to start flows could wipe
// out everyone else's. Keys are hashes, never secrets, so a store may
// index and compare them as it likes.
type FlowStore interface {
	Put(ctx context.Context, f *Flow) error
	Get(ctx context.Context, key FlowID) (*Flow, error)
	Delete(ctx context.Context, id FlowID) error
}

var _ FlowStore = (*MemoryStore)(nil)

// DefaultMaxFlows bounds a MemoryStore created with max ≤ 0.
const DefaultMaxFlows = 10000

// DefaultMaxFlowsPerTicket bounds the live flows of one ticket in a
// MemoryStore. A ticket belongs to one token, whose holder needs one flow
// at a time; a few more allow for abandoned attempts. Without this bound,
// whoever holds one ticket could fill the store alone.
const DefaultMaxFlowsPerTicket = 5

// MemoryStore is a FlowStore in memory, bounded in size: at most max live
// flows in all, and DefaultMaxFlowsPerTicket per ticket. When a bound is
// reached, Put refuses with a *FullError until a flow is collected or
// expires; it never evicts a live flow. It suits a single server process;
// replicas behind a load balancer need a shared store (caveat's is
// store/postgres's FlowStore, which runs tp/tptest's conformance suite).
type MemoryStore struct {
	now func() time.Time
	max int

	mu       sync.Mutex
	byExpiry *list.List // of *Flow, soonest to expire at the front
	index    map[FlowID]*list.Element
	tickets  map[ticketKey][]*list.Element // the live flows of each ticket
}

// ticketKey identifies a ticket in the per-ticket count: the SHA-256 of
// its sealed bytes, which are the same in every request for it.
type ticketKey [32]byte

// NewMemoryStore returns an empty store holding at most max flows
// (DefaultMaxFlows when max ≤ 0), which reads the time from now (time.Now
// when nil) to expire them.
func NewMemoryStore(max int, now func() time.Time) *MemoryStore {
	if max <= 0 {
		max = DefaultMaxFlows
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, max: max, byExpiry: list.New(),
		index: make(map[FlowID]*list.Element), tickets: make(map[ticketKey][]*list.Element)}
}

// Put implements FlowStore.
func (s *MemoryStore) Put(_ context.Context, f *Flow) error {
	if f.ID.IsZero() {
		return errors.New("memory store: put: flow has no id")
	}
	now := s.now()
	tk := ticketKey(sha256.Sum256(f.Ticket))
	s.mu.Lock()
	defer s.mu.Unlock()
	old, held := s.index[f.ID]
	held = held && old.Value.(*Flow).ID == f.ID
	if held && !old.Value.(*Flow).Expires.After(now) {
		s.remove(old)
		held = false
	}
	if f.State != Pending && f.Expires.After(now) {
		// A finish replaces a live pending flow, or nothing.
		if !held {
			return ErrNotFound
		}
		if old.Value.(*Flow).State != Pending {
			return ErrFinished
		}
	}
	if held {
		s.remove(old)
	}
	if !f.Expires.After(now) {
		return nil
	}
	s.sweep(now)
	if s.byExpiry.Len() >= s.max {
		first := s.byExpiry.Front().Value.(*Flow).Expires
		return &FullError{Max: s.max, RetryAfter: first.Sub(now)}
	}
	if same := s.tickets[tk]; len(same) >= DefaultMaxFlowsPerTicket {
		first := same[0].Value.(*Flow).Expires
		for _, e := range same[1:] {
			if x := e.Value.(*Flow).Expires; x.Before(first) {
				first = x
			}
		}
		return &FullError{PerTicket: true, Max: DefaultMaxFlowsPerTicket, RetryAfter: first.Sub(now)}
	}
	c := f.clone()
	// Flows mostly arrive in the order they expire: look for the place
	// from the back.
	var e *list.Element
	for at := s.byExpiry.Back(); ; at = at.Prev() {
		if at == nil {
			e = s.byExpiry.PushFront(c)
			break
		}
		if !at.Value.(*Flow).Expires.After(c.Expires) {
			e = s.byExpiry.InsertAfter(c, at)
			break
		}
	}
	s.index[c.ID] = e
	if !c.UserKey.IsZero() {
		s.index[c.UserKey] = e
	}
	s.tickets[tk] = append(s.tickets[tk], e)
	return nil
}

// sweep drops the flows that have expired.
func (s *MemoryStore) sweep(now time.Time) {
	for e := s.byExpiry.Front(); e != nil && !e.Value.(*Flow).Expires.After(now); e = s.byExpiry.Front() {
		s.remove(e)
	}
}

// Get implements FlowStore.
func (s *MemoryStore) Get(_ context.Context, key FlowID) (*Flow, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.index[key]
	if !ok {
		return nil, ErrNotFound
	}
	f := e.Value.(*Flow)
	if !f.Expires.After(now) {
		s.remove(e)
		return nil, ErrNotFound
	}
	return f.clone(), nil
}

// Delete implements FlowStore.
func (s *MemoryStore) Delete(_ context.Context, id FlowID) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.index[id]
	if !ok || e.Value.(*Flow).ID != id {
		return ErrNotFound
	}
	expired := !e.Value.(*Flow).Expires.After(now)
	s.remove(e)
	if expired {
		return ErrNotFound
	}
	return nil
}

// Len returns the number of flows held, expired ones not yet dropped
// included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byExpiry.Len()
}

func (s *MemoryStore) remove(e *list.Element) {
	f := s.byExpiry.Remove(e).(*Flow)
	for _, k := range [2]FlowID{f.ID, f.UserKey} {
		if cur, ok := s.index[k]; ok && cur == e {
			delete(s.index, k)
		}
	}
	tk := ticketKey(sha256.Sum256(f.Ticket))
	same := slices.DeleteFunc(s.tickets[tk], func(x *list.Element) bool { return x == e })
	if len(same) == 0 {
		delete(s.tickets, tk)
	} else {
		s.tickets[tk] = same
	}
}
