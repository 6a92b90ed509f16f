package memory

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caveatdev/caveat/store"
)

var _ store.WebLogins = (*WebLogins)(nil)

// WebLogins holds pending browser logins in memory. The zero value is not
// usable; call NewWebLogins.
type WebLogins struct {
	mu     sync.Mutex
	order  *list.List // of *store.WebLogin, first to expire first
	byPoll map[store.FlowKey]*list.Element
	byUser map[store.FlowKey]*list.Element
}

// NewWebLogins returns an empty store.
func NewWebLogins() *WebLogins {
	return &WebLogins{order: list.New(), byPoll: map[store.FlowKey]*list.Element{}, byUser: map[store.FlowKey]*list.Element{}}
}

// StartWebLogin implements [store.WebLogins].
func (s *WebLogins) StartWebLogin(_ context.Context, w store.WebLogin, max int, now time.Time) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("memory: start web login: %w", err)
	}
	if max < 1 {
		return fmt.Errorf("memory: start web login: bound %d: %w", max, store.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if s.order.Len() >= max {
		first := s.order.Front().Value.(*store.WebLogin).ExpiresAt
		return fmt.Errorf("memory: start web login: %w",
			&store.FullError{What: "pending browser logins", Max: max, RetryAfter: first.Sub(now)})
	}
	if s.byPoll[w.PollKey] != nil || s.byUser[w.UserKey] != nil || s.byPoll[w.UserKey] != nil || s.byUser[w.PollKey] != nil {
		return fmt.Errorf("memory: start web login: key: %w", store.ErrExists)
	}
	c := w
	c.StartedAt, c.ExpiresAt = stored(w.StartedAt), stored(w.ExpiresAt)
	// Logins mostly arrive in the order they expire: look from the back.
	var e *list.Element
	for at := s.order.Back(); ; at = at.Prev() {
		if at == nil {
			e = s.order.PushFront(&c)
			break
		}
		if !at.Value.(*store.WebLogin).ExpiresAt.After(c.ExpiresAt) {
			e = s.order.InsertAfter(&c, at)
			break
		}
	}
	s.byPoll[c.PollKey] = e
	s.byUser[c.UserKey] = e
	return nil
}

// sweep drops the logins that have expired at now.
func (s *WebLogins) sweep(now time.Time) {
	for e := s.order.Front(); e != nil && !e.Value.(*store.WebLogin).ExpiresAt.After(now); e = s.order.Front() {
		s.remove(e)
	}
}

func (s *WebLogins) remove(e *list.Element) {
	w := s.order.Remove(e).(*store.WebLogin)
	delete(s.byPoll, w.PollKey)
	delete(s.byUser, w.UserKey)
}

// live returns the element of the live login under key in index, removing
// it when it has expired.
func (s *WebLogins) live(index map[store.FlowKey]*list.Element, key store.FlowKey, now time.Time) *list.Element {
	e := index[key]
	if e == nil {
		return nil
	}
	if !e.Value.(*store.WebLogin).ExpiresAt.After(now) {
		s.remove(e)
		return nil
	}
	return e
}

// WebLoginByUserKey implements [store.WebLogins].
func (s *WebLogins) WebLoginByUserKey(_ context.Context, key store.FlowKey, now time.Time) (store.WebLogin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(s.byUser, key, now)
	if e == nil {
		return store.WebLogin{}, fmt.Errorf("memory: web login: %w", store.ErrNotFound)
	}
	return *e.Value.(*store.WebLogin), nil
}

// CompleteWebLogin implements [store.WebLogins].
func (s *WebLogins) CompleteWebLogin(_ context.Context, key store.FlowKey, userID uint64, now time.Time) error {
	if userID == 0 {
		return fmt.Errorf("memory: complete web login: no user: %w", store.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(s.byUser, key, now)
	if e == nil {
		return fmt.Errorf("memory: complete web login: %w", store.ErrNotFound)
	}
	w := e.Value.(*store.WebLogin)
	if w.UserID != 0 {
		return fmt.Errorf("memory: complete web login: already completed: %w", store.ErrConflict)
	}
	w.UserID = userID
	return nil
}

// CollectWebLogin implements [store.WebLogins].
func (s *WebLogins) CollectWebLogin(_ context.Context, key store.FlowKey, now time.Time) (store.WebLogin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live(s.byPoll, key, now)
	if e == nil {
		return store.WebLogin{}, fmt.Errorf("memory: collect web login: %w", store.ErrNotFound)
	}
	w := *e.Value.(*store.WebLogin)
	if w.UserID != 0 {
		s.remove(e)
	}
	return w, nil
}

// DeleteExpiredWebLogins implements [store.WebLogins].
func (s *WebLogins) DeleteExpiredWebLogins(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.order.Len()
	s.sweep(before)
	return n - s.order.Len(), nil
}

// Len returns the number of logins held, expired ones not yet dropped
// included.
func (s *WebLogins) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

// stored is a time as every store returns it: UTC, microseconds.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
