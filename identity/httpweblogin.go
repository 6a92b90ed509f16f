package identity

// The HTTP side of the browser login (see weblogin.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
)

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
	return http.StatusCreated, api.WebLogin{UserInteractive: api.UserInteractive{
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
			return fault.Errorf(fault.TooLarge, "request body is larger than %d bytes", httpjson.MaxBody)
		}
		return fault.Errorf(fault.Invalid, "reading request body: %v", err)
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
		return 0, nil, fault.Errorf(fault.NotFound, "not found")
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
