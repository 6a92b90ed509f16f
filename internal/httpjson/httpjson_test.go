package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type req struct {
		Email string `json:"email"`
		N     int    `json:"n"`
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"ok", `{"email": "a@b", "n": 1}`, 0, ""},
		{"empty", ``, 400, "empty"},
		{"unknown field", `{"emial": "a"}`, 400, `unknown field "emial"`},
		{"wrong type", `{"n": "one"}`, 400, `field "n": cannot use a JSON string here`},
		{"syntax", `{"n": }`, 400, "syntax error at byte"},
		{"truncated", `{"n": 1`, 400, "unexpected end"},
		{"two values", `{} {}`, 400, "unexpected data after"},
		{"too large", `{"email": "` + strings.Repeat("x", 200) + `"}`, 413, "larger than 100 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v req
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			err := Decode(httptest.NewRecorder(), r, &v, 100)
			if tc.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) || he.Status != tc.status || !strings.Contains(he.Msg, tc.want) {
				t.Fatalf("%v, want %d %q", err, tc.status, tc.want)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := httptest.NewRequest("GET", "/x", nil)

	w := httptest.NewRecorder()
	WriteError(w, r, log, Errorf(http.StatusNotFound, "no app %q", "web"))
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 404 || body["error"] != `no app "web"` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", w.Header().Get("Content-Type"))
	}

	w = httptest.NewRecorder()
	WriteError(w, r, log, errors.New("database is locked"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "locked") || !strings.Contains(w.Body.String(), "internal error") {
		t.Fatalf("internal error answered %d %s", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "database is locked") {
		t.Errorf("internal error not logged: %q", logs.String())
	}
}

func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) { Write(w, 201, map[string]int{"id": 1}) })
	h := Routes(mux)
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"POST", "/v1/things", 201, `"id":1`},
		{"GET", "/v1/things", 405, `method GET not allowed for /v1/things (allowed: POST)`},
		{"GET", "/v1/nothing", 404, `no route for GET /v1/nothing`},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
}
