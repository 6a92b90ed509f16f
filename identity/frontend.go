package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caveatdev/caveat/api"
)

// Logins for front ends that the same process serves (the web console):
// the API's checks through the API's own code, so that a browser gets no
// easier way into an account than POST /aaa/v1/sessions, and a session
// that a front end starts is a session like any other, which logging out
// anywhere ends.

// Login checks an email and a password exactly as POST /aaa/v1/sessions
// does (the same limits per client address and per account, counted in the
// same buckets; the same argon2id cost whether or not the account exists;
// the same "invalid email or password") and starts a new session. r is the
// request the credentials came in, for its client address. A refusal by a
// limit is recognised by RetryAfter.
func (s *Service) Login(ctx context.Context, r *http.Request, email, password string) (*api.Session, error) {
	u, err := s.authenticate(ctx, r, email, password)
	if err != nil {
		return nil, err
	}
	return s.newSession(ctx, u)
}

// Logout ends the session of a session secret, as DELETE
// /aaa/v1/sessions/current does: it is revoked in the store, so that
// every holder of the secret or of the session token is refused, on every
// replica.
func (s *Service) Logout(ctx context.Context, secret string) error {
	return s.endSession(ctx, "Bearer "+secret)
}

// LogoutEverywhere ends every session of the user of a session secret
// (the CLI's included) and returns how many it ended. Other replicas and
// the authority's cache refuse the other sessions within the authority's
// session cache lifetime (a second); the secret's own session at once.
func (s *Service) LogoutEverywhere(ctx context.Context, secret string) (int, error) {
	now := s.cfg.Now()
	sess, err := s.session(ctx, "Bearer "+secret, now)
	if err != nil {
		return 0, err
	}
	n, err := s.cfg.Store.RevokeUserSessions(ctx, sess.UserID, now)
	if err != nil {
		return 0, fmt.Errorf("logout everywhere: %w", err)
	}
	if s.cfg.OnSessionEnd != nil {
		s.cfg.OnSessionEnd(sess.ID)
	}
	s.cfg.Logger.InfoContext(ctx, "logout everywhere", "session", sess, "sessions", n)
	return n, nil
}

// RetryAfter reports whether err is a refusal by a login rate limit (or a
// full store of pending logins), and the wait it asks for in whole
// seconds, as the Retry-After header of the API says it.
func RetryAfter(err error) (seconds string, ok bool) {
	var lim *limitedError
	if !errors.As(err, &lim) {
		return "", false
	}
	return lim.retryAfter(), true
}
