package identity

// The HTTP side of the service: its routes, and how its answers and
// errors are written (a fault.Code becomes a status here and nowhere
// else).

import (
	"errors"
	"net/http"

	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/tp"
)

// Handler returns the service's HTTP handler. It serves the full paths
// under /aaa/v1/ (see the package documentation) and answers every other
// path with 404 in JSON.
func (s *Service) Handler() http.Handler { return s.handler }

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"/users", s.api(s.signup))
	mux.HandleFunc("POST "+prefix+"/sessions", s.api(s.login))
	mux.HandleFunc("POST "+prefix+"/sessions/web", s.api(s.startWebLogin))
	mux.HandleFunc("GET "+prefix+webPollPrefix+"{secret}", s.api(s.pollWebLogin))
	mux.HandleFunc("DELETE "+prefix+"/sessions/current", s.api(s.logout))
	mux.HandleFunc("GET "+prefix+"/whoami", s.api(s.whoami))
	mux.HandleFunc("GET "+prefix+cliPagePrefix+"{secret}", s.cliPage)
	mux.HandleFunc("POST "+prefix+cliPagePrefix+"{secret}", s.cliPage)
	mux.HandleFunc("GET "+prefix+dischargePagePrefix+"{secret}", s.dischargePage)
	mux.HandleFunc("POST "+prefix+dischargePagePrefix+"{secret}", s.dischargePage)
	mux.HandleFunc("GET "+prefix+invitation.Path+"{code}", s.invitationPage)
	mux.HandleFunc("POST "+prefix+invitation.Path+"{code}", s.invitationPage)
	// tp.Server answers wrong methods itself, in the protocol's JSON.
	mux.Handle(prefix+tp.InitPath, s.tp)
	mux.Handle(prefix+tp.PollPath+"/", s.tp)
	return httpjson.Routes(mux)
}

// api adapts a handler that returns its status and body, or an error.
func (s *Service) api(h func(w http.ResponseWriter, r *http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		status, body, err := h(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		httpjson.Write(w, status, body)
	}
}

// writeError answers err in JSON: a rate limit with 429 and Retry-After,
// a *fault.Error (or an *httpjson.Error) with its status, anything else
// with 500 "internal error", logged with the route's pattern, never its
// path (which may hold a flow's secret).
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var lim *limitedError
	if errors.As(err, &lim) {
		w.Header().Set("Retry-After", lim.retryAfter())
		httpjson.Write(w, http.StatusTooManyRequests, map[string]string{"error": lim.Error()})
		return
	}
	if status, msg, ok := httpjson.StatusOf(err); ok {
		httpjson.Write(w, status, map[string]string{"error": msg})
		return
	}
	s.internal(r, err)
	httpjson.Write(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
}

func (s *Service) internal(r *http.Request, err error) {
	s.cfg.Logger.ErrorContext(r.Context(), "identity: internal error", "method", r.Method, "route", r.Pattern, "err", err)
}
