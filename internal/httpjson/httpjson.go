// Package httpjson is how caveat's HTTP services read and write JSON: a
// request body is one JSON object of bounded size with no unknown fields,
// and every error is answered as {"error": "…"} with a 4xx status that
// names what was wrong, or "internal error" with a 500 that is logged and
// never shows its cause.
//
// The services return *fault.Error values, which say what failed but not
// how to answer it; this package is where a fault.Code becomes an HTTP
// status (Status), for every service alike.
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/caveatdev/caveat/fault"
)

// MaxBody is the default limit on a request body.
const MaxBody = 64 << 10

// Error is an error with the HTTP status to answer it with, for failures
// that the HTTP layer itself finds (a body that is not JSON, or too
// large) or relays (another server's answer). The services return
// *fault.Error instead; anything else is answered 500 "internal error".
type Error struct {
	Status int
	Msg    string
	// Err, when set, is the cause, for errors.Is and errors.As; Msg is
	// what the client sees.
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Wrap returns an *Error with the status whose message is err's, and whose
// cause is err.
func Wrap(status int, err error) error {
	return &Error{Status: status, Msg: err.Error(), Err: err}
}

// Errorf returns an *Error with the status and a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Decode reads the request body into v: exactly one JSON value of at most
// max bytes (MaxBody when max ≤ 0), with no unknown object fields. The error
// is an *Error with status 400 (413 for a body that is too large) whose
// message names the field at fault.
func Decode(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if max <= 0 {
		max = MaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", max)
		}
		return Errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	return Unmarshal(body, v)
}

// Unmarshal decodes one JSON value strictly, as Decode does.
func Unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(http.StatusBadRequest, "request body is empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "invalid JSON body: %s", describe(err))
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid JSON body: unexpected data after the value")
	}
	return nil
}

// describe turns encoding/json errors into messages that name the field
// and say nothing of Go types.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q: cannot use a JSON %s here", te.Field, te.Value)
		}
		return fmt.Sprintf("cannot use a JSON %s here", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + rest
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(msg, "json: ")
}

// Write answers with status and v as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// statuses maps each fault.Code to the status it is answered with.
var statuses = map[fault.Code]int{
	fault.Invalid:            http.StatusBadRequest,
	fault.Unauthenticated:    http.StatusUnauthorized,
	fault.Denied:             http.StatusForbidden,
	fault.NotFound:           http.StatusNotFound,
	fault.Timeout:            http.StatusRequestTimeout,
	fault.Conflict:           http.StatusConflict,
	fault.Gone:               http.StatusGone,
	fault.FailedPrecondition: http.StatusPreconditionFailed,
	fault.TooLarge:           http.StatusRequestEntityTooLarge,
	fault.RateLimited:        http.StatusTooManyRequests,
	fault.Unavailable:        http.StatusServiceUnavailable,
}

// Status is the HTTP status of a fault code: 500 for a code it does not
// know, so that a new code is never answered as a success.
func Status(code fault.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeOf is the fault code that status answers, for errors relayed from
// another caveat server's answer; false for a status no code maps to.
func CodeOf(status int) (fault.Code, bool) {
	for c, s := range statuses {
		if s == status {
			return c, true
		}
	}
	return "", false
}

// StatusOf returns the status and message err is answered with, and
// whether err is the client's to see: an *Error with its own, a
// *fault.Error with its code's status (whichever is outermost in err's
// chain). Anything else is not (ok false): the server's failure.
func StatusOf(err error) (status int, msg string, ok bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e := e.(type) {
		case *Error:
			return e.Status, e.Msg, true
		case *fault.Error:
			return Status(e.Code), e.Message, true
		}
	}
	// Trees (errors.Join) are searched as errors.As does.
	var he *Error
	if errors.As(err, &he) {
		return he.Status, he.Msg, true
	}
	if fe, ok := fault.As(err); ok {
		return Status(fe.Code), fe.Message, true
	}
	return 0, "", false
}

// WriteError answers err: an *Error with its status and message, a
// *fault.Error with its code's status and its message (see StatusOf);
// anything else with 500 "internal error", logging the cause (which must
// therefore hold no secret) at error level.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if status, msg, ok := StatusOf(err); ok {
		Write(w, status, map[string]string{"error": msg})
		return
	}
	if log != nil {
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	Write(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
}

// Routes wraps a ServeMux so that requests it has no route for are
// answered in JSON too: 404 {"error": "no route for GET /x"} and 405 (with
// the mux's Allow header) instead of the mux's plain-text answers.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Let the mux decide between 404, 405 and a redirect, then answer
		// the error statuses in JSON.
		rec := &statusOnly{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			Write(w, http.StatusNotFound, map[string]string{"error": "no route for " + r.Method + " " + r.URL.Path})
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			Write(w, http.StatusMethodNotAllowed, map[string]string{
				"error": "method " + r.Method + " not allowed for " + r.URL.Path + " (allowed: " + rec.header.Get("Allow") + ")"})
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		}
	})
}

// statusOnly records the status and headers a handler answers with.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusOnly) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
