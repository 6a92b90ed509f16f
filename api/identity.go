package api

import (
	"log/slog"
	"time"
)

// User is an account.
type User struct {
	ID    uint64 `json:"id"`
	Email string `json:"email"`
}

// SignupRequest is the body of POST /aaa/v1/users.
type SignupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Organization, when set, is the slug of a new organization that the
	// user becomes admin of.
	Organization string `json:"organization,omitempty"`
	// Invitation, when set, is an invitation code for Email: the account
	// joins the invitation's organization, even if signup is closed.
	Invitation string `json:"invitation,omitempty"`
}

// LogValue keeps the email and password out of logs.
func (r SignupRequest) LogValue() slog.Value { return slog.GroupValue() }

// SignupResult is the answer to POST /aaa/v1/users: the new account, and
// the organization created with it or joined by its invitation.
type SignupResult struct {
	User         User          `json:"user"`
	Organization *Organization `json:"organization,omitempty"`
}

// LoginRequest is the body of POST /aaa/v1/sessions.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LogValue keeps the email and password out of logs.
func (r LoginRequest) LogValue() slog.Value { return slog.GroupValue() }

// Session is the answer to a login (POST /aaa/v1/sessions, or the poll of
// a browser login): the session token, a permission token whose login
// third-party caveat still needs a discharge, and the secret with which
// the client obtains and renews that discharge.
type Session struct {
	// SessionID is the session's id, the session token's nonce UUID.
	SessionID string `json:"session_id"`
	// Secret is the session credential, for the login discharger, whoami
	// and logout. Keep it like a password.
	Secret string `json:"secret"`
	// Token is the session token, "fm2_…", without its discharge.
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// LogValue keeps the secret, the token and the email out of logs.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("user", s.User.ID), slog.Time("expires_at", s.ExpiresAt))
}

// WhoAmI is the answer to GET /aaa/v1/whoami: the account behind a
// session, its organizations and the session.
type WhoAmI struct {
	User          User           `json:"user"`
	Organizations []Organization `json:"organizations"`
	Session       SessionInfo    `json:"session"`
}

// SessionInfo is a session as whoami shows it: never its secret.
type SessionInfo struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WebLogin is the answer to POST /aaa/v1/sessions/web, a browser login
// (spec §8.3): the page to show the user and the URL to poll for the
// Session.
type WebLogin struct {
	UserInteractive UserInteractive `json:"user_interactive"`
}

// UserInteractive is the user-interactive answer of spec §8.3.
type UserInteractive struct {
	UserURL string `json:"user_url"`
	PollURL string `json:"poll_url"`
}
