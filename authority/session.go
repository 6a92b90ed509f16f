package authority

import (
	"context"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/store"
)

// SessionPrincipal is the principal of the session of a session secret,
// for front ends in this process that hold the secret rather than the
// session token (the web console keeps it in a cookie): the session's user
// with the caveats its session token verifies with (its ValidityWindow
// and the login attestation) and nothing added, which is the session's
// full rights, as a plain login gives the CLI. The session must be active
// when asked: it is read from the store on every call, so that a logout
// anywhere ends it at once. A refusal is an Unauthenticated *fault.Error saying why.
func (s *Service) SessionPrincipal(ctx context.Context, secret string) (*Principal, error) {
	id, ok := s.cfg.Keyring.CheckSessionSecret(secret)
	if !ok {
		return nil, unauthenticated("invalid session credential")
	}
	sess, err := s.cfg.Store.GetSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, unauthenticated("unknown session")
	case err != nil:
		return nil, fmt.Errorf("session: %w", err)
	case !sess.RevokedAt.IsZero():
		return nil, unauthenticated("session ended (logged out); log in again")
	case !sess.Active(s.cfg.Now()):
		return nil, unauthenticated("session expired; log in again")
	}
	uid := auth.FlyioUserID(sess.UserID)
	vw := &caveat.ValidityWindow{NotBefore: sess.CreatedAt.Unix(), NotAfter: sess.ExpiresAt.Unix()}
	return &Principal{UserID: sess.UserID, SessionID: id, Caveats: caveat.NewCaveatSet(vw, &uid),
		Expires: sess.ExpiresAt}, nil
}
