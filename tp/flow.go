package tp

import (
	"bytes"
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
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

// FlowStore holds pending flows between their init request and the poll
// that collects them. Implementations must be safe for concurrent use. The
// contract:
//
//   - Put stores a copy of f under f.ID, and also under f.UserKey unless it
//     is zero, replacing any flow with the same ID. A flow whose Expires is
//     not after the store's clock is not stored (and one with the same ID
//     is removed).
//   - Get returns a copy of the flow stored under key, which may be its ID
//     or its UserKey. It returns an error wrapping ErrNotFound when there is
//     none, or when the flow's Expires is not after the store's clock:
//     flows expire by themselves.
//   - Delete removes the flow whose ID is id, with its UserKey. It returns
//     ErrNotFound when there was none (or it had expired), so that of
//     several concurrent deletions exactly one succeeds: Server relies on
//     this to hand a discharge out only once.
//
// A store may forget a flow before it expires (a bounded store evicts), in
// which case the client's next poll gets 404. Keys are hashes, never
// secrets, so a store may index and compare them as it likes.
type FlowStore interface {
	Put(ctx context.Context, f *Flow) error
	Get(ctx context.Context, key FlowID) (*Flow, error)
	Delete(ctx context.Context, id FlowID) error
}

var _ FlowStore = (*MemoryStore)(nil)

// DefaultMaxFlows bounds a MemoryStore created with max ≤ 0.
const DefaultMaxFlows = 10000

// MemoryStore is a FlowStore in memory, bounded in size: when it is full,
// Put evicts the least recently used flow. It suits a single server
// process; replicas behind a load balancer need a shared store.
type MemoryStore struct {
	now func() time.Time
	max int

	mu    sync.Mutex
	lru   *list.List // of *Flow, most recently used at the front
	index map[FlowID]*list.Element
}

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
	return &MemoryStore{now: now, max: max, lru: list.New(), index: make(map[FlowID]*list.Element)}
}

// Put implements FlowStore.
func (s *MemoryStore) Put(_ context.Context, f *Flow) error {
	if f.ID.IsZero() {
		return errors.New("memory store: put: flow has no id")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.index[f.ID]; ok && e.Value.(*Flow).ID == f.ID {
		s.remove(e)
	}
	if !f.Expires.After(now) {
		return nil
	}
	c := f.clone()
	e := s.lru.PushFront(c)
	s.index[c.ID] = e
	if !c.UserKey.IsZero() {
		s.index[c.UserKey] = e
	}
	for s.lru.Len() > s.max {
		s.remove(s.lru.Back())
	}
	return nil
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
	s.lru.MoveToFront(e)
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
	return s.lru.Len()
}

func (s *MemoryStore) remove(e *list.Element) {
	f := s.lru.Remove(e).(*Flow)
	for _, k := range [2]FlowID{f.ID, f.UserKey} {
		if cur, ok := s.index[k]; ok && cur == e {
			delete(s.index, k)
		}
	}
}
