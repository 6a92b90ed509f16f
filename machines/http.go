package machines

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// ActionEntry is one row of the published action table.
type ActionEntry struct {
	Operation string `json:"operation"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	// Action is the mask the access needs.
	Action string `json:"action"`
	// Access is the access cleared against the token, in the JSON form
	// of flyio.Access.
	Access string `json:"access"`
}

// base is where the API is mounted.
const base = "/v1/apps/{app}/machines"

func machineAccess(action string) string {
	return `{"orgid": ORG, "appid": APP, "machine": ID, "action": "` + action + `"}`
}

// Actions is the action table: what each endpoint needs of a token. It is
// served at GET /v1/machines/actions and printed in the package doc.
var Actions = []ActionEntry{
	{"list", "GET", base, "r", machineAccess("r") + ` for each machine listed; refused only if {"orgid": ORG, "appid": APP, "action": "r"} is refused by a caveat other than one restricting machines`},
	{"get", "GET", base + "/{id}", "r", machineAccess("r")},
	{"wait", "GET", base + "/{id}/wait", "r", machineAccess("r")},
	{"start", "POST", base + "/{id}/start", "C", machineAccess("C")},
	{"stop", "POST", base + "/{id}/stop", "C", machineAccess("C")},
	{"suspend", "POST", base + "/{id}/suspend", "C", machineAccess("C")},
	{"restart", "POST", base + "/{id}/restart", "C", machineAccess("C")},
	{"signal", "POST", base + "/{id}/signal", "C", machineAccess("C")},
	{"create", "POST", base, "c", `{"orgid": ORG, "appid": APP, "machine": "", "action": "c"} (the zero id: a machine not created yet)`},
	{"update", "POST", base + "/{id}", "w", machineAccess("w") + `; and ` + machineAccess("C") + ` when it changes the machine's state (always, unless skip_launch on a created or stopped machine)`},
	{"destroy", "DELETE", base + "/{id}", "d", machineAccess("d")},
	{"lease acquire / refresh", "POST", base + "/{id}/lease", "C", machineAccess("C")},
	{"lease get", "GET", base + "/{id}/lease", "r", machineAccess("r")},
	{"lease release", "DELETE", base + "/{id}/lease", "C", machineAccess("C")},
	{"metadata get", "GET", base + "/{id}/metadata", "r", machineAccess("r")},
	{"metadata set", "POST", base + "/{id}/metadata/{key}", "w", machineAccess("w")},
	{"metadata delete", "DELETE", base + "/{id}/metadata/{key}", "w", machineAccess("w")},
	{"action table", "GET", "/v1/machines/actions", "", "none: the table is public"},
}

// maxBody bounds create and update bodies: a config and a little more.
const maxBody = store.MaxMachineConfigLen + 16<<10

// Register adds the API's routes to mux. Each route names the action its
// target needs, as the table says; the request is refused before its body
// or parameters are read when the token does not allow it.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/machines/actions", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]any{"actions": Actions})
	})
	const (
		r = resset.ActionRead
		W = resset.ActionWrite
		c = resset.ActionCreate
		d = resset.ActionDelete
		C = resset.ActionControl
	)
	mux.HandleFunc("GET "+base, s.handle(s.httpList))
	mux.HandleFunc("POST "+base, s.on(c, s.httpCreate))
	mux.HandleFunc("GET "+base+"/{id}", s.on(r, s.httpGet))
	mux.HandleFunc("POST "+base+"/{id}", s.on(W, s.httpUpdate))
	mux.HandleFunc("DELETE "+base+"/{id}", s.on(d, s.httpDestroy))
	mux.HandleFunc("GET "+base+"/{id}/wait", s.on(r, s.httpWait))
	mux.HandleFunc("POST "+base+"/{id}/start", s.on(C, s.httpStart))
	mux.HandleFunc("POST "+base+"/{id}/stop", s.on(C, s.httpStop))
	mux.HandleFunc("POST "+base+"/{id}/suspend", s.on(C, s.httpSuspend))
	mux.HandleFunc("POST "+base+"/{id}/restart", s.on(C, s.httpRestart))
	mux.HandleFunc("POST "+base+"/{id}/signal", s.on(C, s.httpSignal))
	mux.HandleFunc("POST "+base+"/{id}/lease", s.on(C, s.httpLease))
	mux.HandleFunc("GET "+base+"/{id}/lease", s.on(r, s.httpGetLease))
	mux.HandleFunc("DELETE "+base+"/{id}/lease", s.on(C, s.httpReleaseLease))
	mux.HandleFunc("GET "+base+"/{id}/metadata", s.on(r, s.httpMetadata))
	mux.HandleFunc("POST "+base+"/{id}/metadata/{key}", s.on(W, s.httpSetMetadata))
	mux.HandleFunc("DELETE "+base+"/{id}/metadata/{key}", s.on(W, s.httpDeleteMetadata))
}

// Handler returns the API alone, with JSON answers for unknown routes.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return httpjson.Routes(mux)
}

type handlerFunc func(r *http.Request, w http.ResponseWriter, p middleware.Principal) (int, any, error)

// targetFunc handles a request on an authorized target.
type targetFunc func(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error)

// on authorizes action on the request's machine (path value "id"; none
// for create) and runs h with the target.
func (s *Service) on(action resset.Action, h targetFunc) http.HandlerFunc {
	return s.handle(func(r *http.Request, w http.ResponseWriter, p middleware.Principal) (int, any, error) {
		t, err := s.Authorize(r.Context(), p, r.PathValue("app"), r.PathValue("id"), action)
		if err != nil {
			return 0, nil, err
		}
		return h(r, w, t)
	})
}

// handle authenticates the request once, in the authenticator's scope for
// one request (middleware.Scope), then runs h and answers what it
// returns. Refusals of the token are answered as middleware.WriteError
// answers them; other errors by httpjson.WriteError (500 for the server's
// own, logged).
func (s *Service) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(middleware.Scope(s.cfg.Auth, r.Context()))
		p, err := s.cfg.Auth.Principal(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			s.writeAuthError(w, r, err)
			return
		}
		status, body, err := h(r, w, p)
		if err != nil {
			var ae *authError
			switch {
			case errors.As(err, &ae):
				s.writeAuthError(w, r, ae.err)
			case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
				// The client went away; nobody reads an answer.
			default:
				httpjson.WriteError(w, r, s.cfg.Logger, err)
			}
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		httpjson.Write(w, status, body)
	}
}

// metadataAnswer answers a metadata change: the metadata, or 204 No
// Content for a principal that may not read it (md is nil).
func metadataAnswer(md map[string]string, err error) (int, any, error) {
	if err == nil && md == nil {
		return http.StatusNoContent, nil, nil
	}
	return http.StatusOK, md, err
}

func (s *Service) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if _, _, ok := httpjson.StatusOf(err); !ok {
		s.cfg.Logger.WarnContext(r.Context(), "cannot check the token", "path", r.Pattern, "err", err)
	}
	middleware.WriteError(w, r, err)
}

// ok is the answer of operations that return nothing else.
var ok = map[string]bool{"ok": true}

func nonce(r *http.Request) string { return r.Header.Get(LeaseNonceHeader) }

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// decodeOptional reads a body that may be empty into v, strictly when
// there is one.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpjson.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return httpjson.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", httpjson.MaxBody)
		}
		return badRequest("reading request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return httpjson.Unmarshal(body, v)
}

// noBody refuses a body on an endpoint that takes none, so that nothing
// sent is silently ignored.
func noBody(w http.ResponseWriter, r *http.Request, what string) error {
	var v struct{}
	if err := decodeOptional(w, r, &v); err != nil {
		return badRequest("%s takes no body (or {}): %v", what, err)
	}
	return nil
}

func (s *Service) httpList(r *http.Request, w http.ResponseWriter, p middleware.Principal) (int, any, error) {
	var opt ListOptions
	var err error
	if opt.IncludeDeleted, err = boolParam(r, "include_deleted"); err != nil {
		return 0, nil, err
	}
	if opt.Summary, err = boolParam(r, "summary"); err != nil {
		return 0, nil, err
	}
	opt.Region = r.URL.Query().Get("region")
	if opt.Page, err = pageParams(r); err != nil {
		return 0, nil, err
	}
	ms, next, err := s.List(r.Context(), p, r.PathValue("app"), opt)
	if err == nil && next != "" {
		// The body is Fly's: an array. The next page is a link.
		q := r.URL.Query()
		q.Set("after", next)
		q.Set("limit", strconv.Itoa(opt.Page.Limit))
		w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
	}
	return http.StatusOK, ms, err
}

// pageParams reads limit (1 to store.MaxPageLimit, store.DefaultPageLimit
// when absent) and after (the cursor of the previous page's next link).
func pageParams(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	p := store.Page{After: q.Get("after"), Limit: store.DefaultPageLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageLimit {
			return p, badRequest("limit %q: want a number from 1 to %d", v, store.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}

func (s *Service) httpGet(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	m, err := s.Get(r.Context(), t)
	return http.StatusOK, m, err
}

func (s *Service) httpWait(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	q := r.URL.Query()
	timeout, err := ParseTimeout("timeout", q.Get("timeout"))
	if err != nil {
		return 0, nil, err
	}
	if q.Has("timeout") && timeout == 0 {
		return 0, nil, badRequest("timeout 0: want from 1 to %d seconds", int(MaxWaitTimeout.Seconds()))
	}
	opt := WaitOptions{State: store.MachineState(q.Get("state")), InstanceID: q.Get("instance_id"), Timeout: timeout}
	if err := s.Wait(r.Context(), t, opt); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpCreate(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	var req api.CreateMachineRequest
	if err := httpjson.Decode(w, r, &req, maxBody); err != nil {
		return 0, nil, err
	}
	m, err := s.Create(r.Context(), t, req)
	return http.StatusOK, m, err
}

func (s *Service) httpUpdate(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	var req api.CreateMachineRequest
	if err := httpjson.Decode(w, r, &req, maxBody); err != nil {
		return 0, nil, err
	}
	m, err := s.Update(r.Context(), t, nonce(r), req)
	return http.StatusOK, m, err
}

func (s *Service) httpDestroy(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	force, err := boolParam(r, "force")
	if err != nil {
		return 0, nil, err
	}
	if err := s.Destroy(r.Context(), t, nonce(r), force); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpStart(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	if err := noBody(w, r, "start"); err != nil {
		return 0, nil, err
	}
	res, err := s.Start(r.Context(), t, nonce(r))
	return http.StatusOK, res, err
}

func (s *Service) httpStop(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	var req StopRequest
	if err := decodeOptional(w, r, &req); err != nil {
		return 0, nil, err
	}
	if err := s.Stop(r.Context(), t, nonce(r), req); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpSuspend(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	if err := noBody(w, r, "suspend"); err != nil {
		return 0, nil, err
	}
	if err := s.Suspend(r.Context(), t, nonce(r)); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpRestart(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	if err := noBody(w, r, "restart"); err != nil {
		return 0, nil, err
	}
	var opt RestartOptions
	var err error
	if opt.ForceStop, err = boolParam(r, "force_stop"); err != nil {
		return 0, nil, err
	}
	d, err := ParseTimeout("timeout", r.URL.Query().Get("timeout"))
	if err != nil {
		return 0, nil, err
	}
	opt.Timeout, opt.Signal = Duration(d), r.URL.Query().Get("signal")
	if err := s.Restart(r.Context(), t, nonce(r), opt); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpSignal(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	var req struct {
		Signal string `json:"signal"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if err := s.Signal(r.Context(), t, nonce(r), req.Signal); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpLease(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	if err := noBody(w, r, "lease"); err != nil {
		return 0, nil, err
	}
	ttl, err := ParseLeaseTTL(r.URL.Query().Get("ttl"))
	if err != nil {
		return 0, nil, err
	}
	var l Lease
	if n := nonce(r); n != "" {
		l, err = s.RefreshLease(r.Context(), t, n, ttl)
	} else {
		l, err = s.AcquireLease(r.Context(), t, ttl)
	}
	return http.StatusOK, leaseResponse(l), err
}

func (s *Service) httpGetLease(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	l, err := s.GetLease(r.Context(), t)
	return http.StatusOK, leaseResponse(l), err
}

func (s *Service) httpReleaseLease(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	if err := s.ReleaseLease(r.Context(), t, nonce(r)); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok, nil
}

func (s *Service) httpMetadata(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	md, err := s.Metadata(r.Context(), t)
	return http.StatusOK, md, err
}

func (s *Service) httpSetMetadata(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	var req struct {
		Value *string `json:"value"`
	}
	if err := httpjson.Decode(w, r, &req, 0); err != nil {
		return 0, nil, err
	}
	if req.Value == nil {
		return 0, nil, badRequest(`"value" is required: {"value": "…"}`)
	}
	return metadataAnswer(s.SetMetadata(r.Context(), t, nonce(r), r.PathValue("key"), *req.Value))
}

func (s *Service) httpDeleteMetadata(r *http.Request, w http.ResponseWriter, t *Target) (int, any, error) {
	return metadataAnswer(s.DeleteMetadata(r.Context(), t, nonce(r), r.PathValue("key")))
}
