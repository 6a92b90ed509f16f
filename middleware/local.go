package middleware

import (
	"context"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
)

// Local authenticates with an authority in the same process: it holds the
// keys, so a token is verified without a network round trip; revocation
// and session state are read from the authority's store on every request.
type Local struct {
	Authority *authority.Service
}

// NewLocal returns a Local authenticator.
func NewLocal(a *authority.Service) *Local { return &Local{Authority: a} }

// Authenticate implements Authenticator.
func (l *Local) Authenticate(ctx context.Context, header string) (Principal, error) {
	p, err := l.Authority.Authenticate(ctx, header)
	if err != nil {
		return nil, err
	}
	return &localPrincipal{svc: l.Authority, p: p}, nil
}

type localPrincipal struct {
	svc *authority.Service
	p   *authority.Principal
}

func (lp *localPrincipal) Allow(ctx context.Context, a *flyio.Access) error {
	return lp.svc.Allow(ctx, lp.p, a)
}
func (lp *localPrincipal) TokenID() string { return lp.p.TokenID() }
func (lp *localPrincipal) OrgID() uint64   { return lp.p.OrgID }
func (lp *localPrincipal) UserID() uint64  { return lp.p.UserID }
