package httpjson

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/fault"
)

// TestStatus pins the one table from fault codes to HTTP statuses: the
// services' answers keep the statuses they had when they chose them
// themselves.
func TestStatus(t *testing.T) {
	for code, want := range map[fault.Code]int{
		fault.Invalid:            400,
		fault.Unauthenticated:    401,
		fault.Denied:             403,
		fault.NotFound:           404,
		fault.Timeout:            408,
		fault.Conflict:           409,
		fault.Gone:               410,
		fault.FailedPrecondition: 412,
		fault.TooLarge:           413,
		fault.RateLimited:        429,
		fault.Unavailable:        503,
		"a code added later":     500,
		"":                       500,
	} {
		if got := Status(code); got != want {
			t.Errorf("Status(%q) = %d, want %d", code, got, want)
		}
		if want == 500 {
			continue
		}
		if back, ok := CodeOf(want); !ok || back != code {
			t.Errorf("CodeOf(%d) = %q, %v; want %q", want, back, ok, code)
		}
	}
	if _, ok := CodeOf(http.StatusTeapot); ok {
		t.Error("a status no code has was given a code")
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		msg    string
		ok     bool
	}{
		{"fault", fault.Errorf(fault.Conflict, "app %q already exists", "web"), 409, `app "web" already exists`, true},
		{"wrapped fault", fmt.Errorf("create: %w", fault.Errorf(fault.NotFound, "no app")), 404, "no app", true},
		{"http error", Errorf(413, "too large"), 413, "too large", true},
		{"outermost wins", Wrap(400, fault.Errorf(fault.Denied, "denied")), 400, "denied", true},
		{"joined", errors.Join(errors.New("x"), fault.Errorf(fault.Gone, "expired")), 410, "expired", true},
		{"server's own", errors.New("disk on fire"), 0, "", false},
		{"nil", nil, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg, ok := StatusOf(tc.err)
			if status != tc.status || msg != tc.msg || ok != tc.ok {
				t.Fatalf("StatusOf = %d %q %v, want %d %q %v", status, msg, ok, tc.status, tc.msg, tc.ok)
			}
		})
	}
}

// TestWriteFault: a *fault.Error is answered with its code's status and
// its message, like an *Error.
func TestWriteFault(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/", nil), nil, fmt.Errorf("lease: %w", fault.Errorf(fault.FailedPrecondition, "machine m1 is stopped")))
	if rec.Code != 412 || !strings.Contains(rec.Body.String(), `{"error":"machine m1 is stopped"}`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
