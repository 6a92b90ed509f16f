// Package httpjson is how caveat's HTTP services read and write JSON: a
// request body is one JSON object of bounded size with no unknown fields,
// and every error is answered as {"error": "…"} with a 4xx status that
// names what was wrong, or "internal error" with a 500 that is logged and
// never shows its cause.
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
)

// MaxBody is the default limit on a request body.
const MaxBody = 64 << 10

// Error is an error with the HTTP status to answer it with. Services
// return it (via Errorf) for failures that are the client's; anything else
// is answered 500 "internal error".
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

// WriteError answers err: an *Error with its status and message; anything
// else with 500 "internal error", logging the cause (which must therefore
// hold no secret) at error level.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var he *Error
	if errors.As(err, &he) {
		Write(w, he.Status, map[string]string{"error": he.Msg})
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
