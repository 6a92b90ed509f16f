package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
)

// A session is what a login yields: a session token, a permission token
// minted with the session key whose caveats are a ValidityWindow up to the
// session's end and a third-party caveat to the login service confined to
// the user; and a session secret, the credential with which the client asks
// the login service for the discharges of that caveat, again and again,
// until the session ends or is revoked.
//
// The session id is the session token's nonce UUID, so that verifying a
// session token finds its session (and its revocation) without anything
// else in the token. The secret is derived from the id with a key derived
// from the master key: nothing secret about a session is stored.
//
// The secret goes only to the login service, never with the token: a user
// who attenuates their session bundle and hands it on hands on nothing that
// renews its discharges.

// labelSessionSecrets derives the key of the session secrets.
const labelSessionSecrets = "caveat session secret key v1"

// sessionSecretPrefix starts every session secret, so that one is
// recognisable in a config file or a leak scanner.
const sessionSecretPrefix = "cvs1_"

// Session is a freshly minted login.
type Session struct {
	// ID is the session token's nonce UUID, the store's session id.
	ID string
	// Token is the session token, without its discharge.
	Token *caveat.Macaroon
	// Secret is the credential for the login discharger.
	Secret string
	// Expires is the end of the session token's ValidityWindow.
	Expires time.Time
}

// SessionSecret returns the secret of a session id.
func (kr *Keyring) SessionSecret(id string) string {
	return sessionSecretPrefix + id + "." + base64.RawURLEncoding.EncodeToString(kr.sessionMAC(id))
}

func (kr *Keyring) sessionMAC(id string) []byte {
	h := hmac.New(sha256.New, kr.secrets)
	h.Write([]byte("session:"))
	h.Write([]byte(id))
	return h.Sum(nil)
}

// CheckSessionSecret returns the session id of a secret that this keyring
// issued, and false for anything else. It takes constant time in the MAC.
func (kr *Keyring) CheckSessionSecret(secret string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(secret, sessionSecretPrefix)
	if !ok {
		return "", false
	}
	id, mac, ok := strings.Cut(rest, ".")
	if !ok || id == "" {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return "", false
	}
	return id, hmac.Equal(got, kr.sessionMAC(id))
}

// SessionMintedCaveats is the number of caveats MintSession puts in a
// session token (its ValidityWindow and its login caveat); any caveat after
// them was added by the token's holder.
const SessionMintedCaveats = 2

// MintSession mints the session token of a login by userID, valid from
// now until expires, for tokens at location with its login third-party
// caveat to loginLocation. It stores nothing: the caller records the
// session (store.Session with ID = Session.ID).
func (kr *Keyring) MintSession(userID uint64, now, expires time.Time, location, loginLocation string) (*Session, error) {
	if !expires.After(now) {
		return nil, fmt.Errorf("session would expire at %s, before it starts", expires.UTC().Format(time.RFC3339))
	}
	kid, key := kr.SessionKey()
	nonce := caveat.NewNonce(kid, false)
	m, err := caveat.Mint(key, nonce, location,
		&caveat.ValidityWindow{NotBefore: now.Unix(), NotAfter: expires.Unix()})
	if err != nil {
		return nil, fmt.Errorf("mint session token: %w", err)
	}
	if err := m.Add3P(kr.LoginTicketKey(), loginLocation, &auth.ConfineUser{ID: userID}); err != nil {
		return nil, fmt.Errorf("add login caveat: %w", err)
	}
	id := nonce.UUID().String()
	return &Session{ID: id, Token: m, Secret: kr.SessionSecret(id), Expires: time.Unix(expires.Unix(), 0)}, nil
}
