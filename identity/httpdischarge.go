package identity

// The HTTP side of the login discharger (see discharge.go): the
// tp.DecideFunc, which answers refusals with their statuses, and the
// browser page of a discharge.

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/tp"
)

// decide is the tp.DecideFunc: an immediate discharge for a client that
// sends a session secret, a browser login for one that sends nothing
// (rate-limited per client address; the flow store bounds the flows in
// all and per ticket, see tp.MemoryStore).
func (s *Service) decide(ctx context.Context, req *tp.Request) (tp.Decision, error) {
	if s.cfg.RequireBinding && !req.Bound {
		return tp.Refuse(http.StatusBadRequest,
			`this discharger issues only bound discharges: send "parent_binding" with the ticket`), nil
	}
	header := req.HTTP.Header.Get("Authorization")
	if header == "" {
		// A browser login holds memory until the user answers or it
		// expires, and anyone can ask for one: each takes from the
		// address's login bucket.
		ok, retry, err := s.byAddress.allow(ctx, s.clientAddr(req.HTTP))
		if err != nil {
			return tp.Decision{}, err
		}
		if !ok {
			return tp.Throttle(retry, (&limitedError{retry: retry}).Error()), nil
		}
		return tp.UserInteractive(), nil
	}
	now := s.cfg.Now()
	sess, err := s.session(ctx, header, now)
	if err != nil {
		if status, msg, ok := httpjson.StatusOf(err); ok {
			return tp.Refuse(status, msg), nil
		}
		return tp.Decision{}, err
	}
	caveats, err := s.attest(ctx, sess.UserID, req.Ticket.Caveats, now, sess.ExpiresAt)
	var ref *refusal
	if errors.As(err, &ref) {
		s.cfg.Logger.InfoContext(ctx, "discharge refused", "session", sess)
		return tp.Refuse(http.StatusForbidden, ref.msg), nil
	}
	if err != nil {
		return tp.Decision{}, err
	}
	s.cfg.Logger.InfoContext(ctx, "discharge issued", "session", sess, "bound", req.Bound)
	return tp.Discharge(caveats...), nil
}

// dischargePage serves the login page of a discharge flow, GET and POST
// /aaa/v1/login/discharge/{secret}: the user logs in, and the flow is
// completed with the discharge or failed with the caveat that refused it.
func (s *Service) dischargePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pf, err := s.tp.LookupUser(ctx, r.PathValue("secret"))
	if errors.Is(err, tp.ErrNotFound) {
		s.page(w, http.StatusNotFound, page{Title: "Login link not valid", Kind: "error",
			Message: "This login link has expired or has already been used. Start again from the program that sent you here."})
		return
	}
	if err != nil {
		s.internal(r, err)
		s.page(w, http.StatusInternalServerError, page{Title: "Error", Kind: "error",
			Message: "Something went wrong on the server. Please try again later."})
		return
	}
	if pf.State != tp.Pending {
		s.page(w, http.StatusConflict, page{Title: "Already answered", Kind: "error",
			Message: "This login request has already been answered. You can close this window."})
		return
	}
	p := page{
		Title: "Log in to caveat",
		Detail: "A program is asking caveat to confirm who you are, so that it can use a token that requires your login. " +
			"Log in only if you started it. Conditions of the request: " + describeCaveats(pf.Caveats),
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
	caveats, err := s.attest(ctx, u.ID, pf.Caveats, s.cfg.Now(), time.Time{})
	var ref *refusal
	if errors.As(err, &ref) {
		// The flow fails at once, so that the waiting program hears why
		// rather than polling until the flow expires.
		if err := s.tp.Fail(ctx, pf.ID, ref.msg); err != nil && !errors.Is(err, tp.ErrNotFound) && !errors.Is(err, tp.ErrFinished) {
			s.internal(r, err)
		}
		s.cfg.Logger.InfoContext(ctx, "discharge refused", "user", u)
		s.page(w, http.StatusForbidden, page{Title: "Not allowed", Kind: "error",
			Message: "You logged in as " + u.Email + ", but this request cannot be granted to that account.",
			Detail:  ref.msg})
		return
	}
	if err == nil {
		err = s.tp.Complete(ctx, pf.ID, caveats...)
	}
	switch {
	case errors.Is(err, tp.ErrNotFound) || errors.Is(err, tp.ErrFinished):
		s.page(w, http.StatusConflict, page{Title: "Already answered", Kind: "error",
			Message: "This login request has already been answered, or has expired."})
	case err != nil:
		s.internal(r, err)
		s.page(w, http.StatusInternalServerError, page{Title: "Error", Kind: "error",
			Message: "Something went wrong on the server. Please try again later."})
	default:
		s.cfg.Logger.InfoContext(ctx, "discharge issued", "user", u, "bound", pf.Bound, "flow", "browser")
		s.page(w, http.StatusOK, page{Title: "Logged in", Kind: "ok",
			Message: "You are logged in as " + u.Email + ". You can close this window and return to the program."})
	}
}
