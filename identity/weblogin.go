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
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

// UserInteractiveJSON is the user-interactive answer of spec §8.3.
type UserInteractiveJSON struct {
	UserURL string `json:"user_url"`
	PollURL string `json:"poll_url"`
}

// WebLoginResponse is the answer to POST /aaa/v1/sessions/web.
type WebLoginResponse struct {
	UserInteractive UserInteractiveJSON `json:"user_interactive"`
}

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

// startWebLogin serves POST /aaa/v1/sessions/web. The body may be empty
// or {}.
func (s *Service) startWebLogin(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := decodeEmpty(w, r); err != nil {
		return 0, nil, err
	}
	addr := s.clientAddr(r)
	if err := s.byAddress.take(r.Context(), addr); err != nil {
		return 0, nil, err
	}
	pollSecret, userSecret, err := s.startWeb(r.Context(), addr)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, WebLoginResponse{UserInteractive: UserInteractiveJSON{
		UserURL: s.loc + cliPagePrefix + userSecret,
		PollURL: s.loc + webPollPrefix + pollSecret,
	}}, nil
}

// decodeEmpty accepts an empty body or an empty JSON object.
func decodeEmpty(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return httpjson.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", httpjson.MaxBody)
		}
		return httpjson.Errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var v struct{}
	return httpjson.Unmarshal(body, &v)
}

// pollWebLogin serves GET /aaa/v1/sessions/web/poll/{secret}, in the
// manner of spec §8.3: 202 until the user has logged in, then 200 with the
// session, then 404.
func (s *Service) pollWebLogin(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	ctx := r.Context()
	w, err := s.web.CollectWebLogin(ctx, hashSecret(labelWebPoll, r.PathValue("secret")), s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, httpjson.Errorf(http.StatusNotFound, "not found")
	}
	if err != nil {
		return 0, nil, fmt.Errorf("web login: %w", err)
	}
	if w.UserID == 0 {
		return http.StatusAccepted, map[string]string{"error": "not ready"}, nil
	}
	u, err := s.cfg.Store.GetUser(ctx, w.UserID)
	if err != nil {
		return 0, nil, fmt.Errorf("web login: %w", err)
	}
	resp, err := s.newSession(ctx, u)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

// cliPage serves the login page of a CLI browser login, GET and POST
// /aaa/v1/login/cli/{secret}.
func (s *Service) cliPage(w http.ResponseWriter, r *http.Request) {
	key := hashSecret(labelWebUser, r.PathValue("secret"))
	f, err := s.web.WebLoginByUserKey(r.Context(), key, s.cfg.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(r, err)
		s.page(w, http.StatusInternalServerError, page{Title: "Error", Kind: "error",
			Message: "Something went wrong on the server. Please try again later."})
		return
	}
	if err != nil {
		s.page(w, http.StatusNotFound, page{Title: "Login link not valid", Kind: "error",
			Message: "This login link has expired or has already been used. Start again from the command line."})
		return
	}
	p := page{
		Title: "Log in to caveat",
		Detail: fmt.Sprintf("A command-line login (caveat auth login --web) started at %s from %s is waiting for you. "+
			"Log in only if you started it: it will receive a session for your account.",
			f.StartedAt.UTC().Format("15:04 MST on 2 Jan 2006"), f.Addr),
		Form: true,
	}
	if r.Method == http.MethodGet {
		s.page(w, http.StatusOK, p)
		return
	}
	u, ok := s.pageLogin(w, r, &p)
	if !ok {
		return
	}
	err = s.web.CompleteWebLogin(r.Context(), key, u.ID, s.cfg.Now())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
		s.internal(r, err)
		s.page(w, http.StatusInternalServerError, page{Title: "Error", Kind: "error",
			Message: "Something went wrong on the server. Please try again later."})
		return
	}
	if err != nil {
		s.page(w, http.StatusConflict, page{Title: "Login link not valid", Kind: "error",
			Message: "This login has already been completed, or has expired."})
		return
	}
	s.page(w, http.StatusOK, page{Title: "Logged in", Kind: "ok",
		Message: "You are logged in as " + u.Email + ". You can close this window and return to the command line."})
}
