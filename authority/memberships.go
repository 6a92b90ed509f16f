package authority

// A request of the API reads a principal's membership of an organization
// once. Resolving the organization's slug checks it (Organization: an
// outsider is told the organization does not exist), and clearing the
// operation's access needs the role (Allow), as does each app a list
// shows: without this, one request read the same row two to n+2 times.
// The handlers give the request's context a memo (withMemberships); the
// operations read through it (membership). Called outside a request of
// the API (the web console calls the operations itself), every read goes
// to the store, as before.
//
// Within one request, the membership read first is the one the request
// is judged by, as if the request were an instant; a change committed
// meanwhile is seen by the next request. Reads that must see the latest
// state (Mint's after registering the token, the member listings) go to
// the store directly.

import (
	"context"
	"errors"
	"sync"

	"github.com/caveatdev/caveat/store"
)

type membershipsKey struct{}

// membershipMemo holds the memberships read during one request.
type membershipMemo struct {
	mu   sync.Mutex
	read map[[2]uint64]membershipRead // by organization and user
}

type membershipRead struct {
	m   store.Membership
	err error // nil or one wrapping store.ErrNotFound
}

// withMemberships returns ctx with a memo of the memberships read, for
// the duration of one request.
func withMemberships(ctx context.Context) context.Context {
	return context.WithValue(ctx, membershipsKey{}, &membershipMemo{read: map[[2]uint64]membershipRead{}})
}

// membership reads a user's membership of an organization, once per
// request when ctx has a memo. A failure to read is not remembered.
func (s *Service) membership(ctx context.Context, orgID, userID uint64) (store.Membership, error) {
	memo, _ := ctx.Value(membershipsKey{}).(*membershipMemo)
	if memo == nil {
		return s.cfg.Store.GetMembership(ctx, orgID, userID)
	}
	k := [2]uint64{orgID, userID}
	memo.mu.Lock()
	r, ok := memo.read[k]
	memo.mu.Unlock()
	if ok {
		return r.m, r.err
	}
	m, err := s.cfg.Store.GetMembership(ctx, orgID, userID)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		memo.mu.Lock()
		memo.read[k] = membershipRead{m: m, err: err}
		memo.mu.Unlock()
	}
	return m, err
}
