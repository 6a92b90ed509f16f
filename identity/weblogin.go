package identity

// The browser login of `caveat auth login --web`: the CLI starts a flow,
// shows the user URL, and polls; the user logs in on the page; the poll
// then creates the session and hands it over, once.
//
// The flow holds no secret: only hashes of its two secrets and, once the
// user has logged in, the user id. The session is created when the poll
// collects it, so nothing that could be stolen from the store is kept.
// Flows live in Config.WebLogins: in memory for a server on its own, in
// the database for replicas, so that any replica answers any poll.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat/store"
)

// Labels keep the user secret, which the browser shows and keeps in its
// history, from ever working as the poll secret.
const (
	labelWebPoll = "caveat web login poll v1\x00"
	labelWebUser = "caveat web login user v1\x00"
)

// hashSecret is the key under which a secret's flow is stored: the store
// never holds the secret.
func hashSecret(label, secret string) store.FlowKey {
	return sha256.Sum256([]byte(label + secret))
}

func newSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startWeb adds a pending login from addr and returns its poll and user
// secrets. When Config.MaxFlows live logins are pending, it adds nothing
// and returns a *limitedError saying when the oldest expires: dropping the
// oldest would let anyone who starts logins wipe out everyone else's.
func (s *Service) startWeb(ctx context.Context, addr string) (pollSecret, userSecret string, err error) {
	now := s.cfg.Now()
	pollSecret, userSecret = newSecret(), newSecret()
	w := store.WebLogin{PollKey: hashSecret(labelWebPoll, pollSecret), UserKey: hashSecret(labelWebUser, userSecret),
		Addr: addr, StartedAt: now, ExpiresAt: now.Add(s.cfg.FlowTTL)}
	err = s.web.StartWebLogin(ctx, w, s.cfg.MaxFlows, now)
	var full *store.FullError
	if errors.As(err, &full) {
		return "", "", &limitedError{retry: full.RetryAfter, msg: full.Error()}
	}
	if err != nil {
		return "", "", fmt.Errorf("web login: %w", err)
	}
	return pollSecret, userSecret, nil
}
