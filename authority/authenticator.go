package authority

import (
	"context"

	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/middleware"
)

// The authority is a middleware.Authenticator itself: a service in the
// same process (the Machines API, a program that embeds the authority)
// hands the *Service to middleware.Require, and tokens are verified with
// its keys, without a network round trip; revocation and session state
// are those of Authenticate, and accesses are cleared by Allow. The
// middleware imports neither this package nor the store.
var _ middleware.Authenticator = (*Service)(nil)

// Principal implements middleware.Authenticator with Authenticate, whose
// refusals are already the *fault.Error (middleware.Error) the contract
// asks for.
func (s *Service) Principal(ctx context.Context, header string) (middleware.Principal, error) {
	p, err := s.Authenticate(ctx, header)
	if err != nil {
		return nil, err
	}
	return s.PrincipalOf(p), nil
}

// Scope implements middleware.RequestScoper: the returned context reads
// each membership once (memberships.go), as the authority's own handlers
// do, so that a Machines request that clears one access for the app and
// one for each machine reads the session's membership once.
func (s *Service) Scope(ctx context.Context) context.Context { return withMemberships(ctx) }

var _ middleware.RequestScoper = (*Service)(nil)

// PrincipalOf returns p as a middleware.Principal, for a caller that
// authenticated otherwise (the console, with a session it holds) and
// calls a service that takes one.
func (s *Service) PrincipalOf(p *Principal) middleware.Principal {
	return &peerPrincipal{svc: s, p: p}
}

// peerPrincipal is a *Principal as middleware.Principal: its accesses are
// cleared by Allow.
type peerPrincipal struct {
	svc *Service
	p   *Principal
}

func (pp *peerPrincipal) Allow(ctx context.Context, a *flyio.Access) error {
	return pp.svc.Allow(ctx, pp.p, a)
}
func (pp *peerPrincipal) TokenID() string { return pp.p.TokenID() }
func (pp *peerPrincipal) OrgID() uint64   { return pp.p.OrgID }
func (pp *peerPrincipal) UserID() uint64  { return pp.p.UserID }
