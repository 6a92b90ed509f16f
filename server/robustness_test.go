package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestNoClientInputYields500 sends every route of the authority and the
// login service malformed, oversized and hostile bodies, with no token, a
// garbage token and a valid session: every answer is below 500, and every
// error is JSON {"error": …}.
func TestNoClientInputYields500(t *testing.T) {
	e := &e2e{t: t, dataDir: t.TempDir(), cfgDir: t.TempDir()}
	e.start()
	defer e.stop()
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme")
	session := e.config()["token"]
	secret := e.config()["session_secret"]

	routes := []struct{ method, path string }{
		{"POST", "/v1/tokens"}, {"GET", "/v1/tokens?org=acme"}, {"GET", "/v1/tokens?org=acme&app=x"},
		{"DELETE", "/v1/tokens/0f5a1d2e-0000-4000-8000-000000000001"}, {"DELETE", "/v1/tokens/%00"},
		{"POST", "/v1/tokens/revoke"}, {"POST", "/v1/tokens/authenticate"}, {"POST", "/v1/tokens/authorize"},
		{"GET", "/v1/tokens/revocations?after=-1"}, {"GET", "/v1/tokens/revocations?after=99999999999"},
		{"GET", "/v1/orgs"}, {"POST", "/v1/orgs"}, {"POST", "/v1/orgs/acme/rotate-key"}, {"GET", "/v1/orgs/acme/keys"},
		{"POST", "/v1/orgs/acme/retire-key"}, {"POST", "/v1/orgs/nope/retire-key"},
		{"GET", "/v1/apps?org_slug=acme"}, {"POST", "/v1/apps"},
		{"POST", "/aaa/v1/users"}, {"POST", "/aaa/v1/sessions"}, {"POST", "/aaa/v1/sessions/web"},
		{"GET", "/aaa/v1/sessions/web/poll/00000000000000000000000000000000"}, {"GET", "/aaa/v1/sessions/web/poll/zz"},
		{"DELETE", "/aaa/v1/sessions/current"}, {"GET", "/aaa/v1/whoami"},
		{"POST", "/aaa/v1/.well-known/macfly/3p"}, {"GET", "/aaa/v1/.well-known/macfly/3p/poll/00"},
		{"GET", "/aaa/v1/login/cli/00000000000000000000000000000000"}, {"POST", "/aaa/v1/login/cli/zz"},
		{"GET", "/aaa/v1/login/discharge/zz"}, {"PUT", "/v1/orgs"}, {"GET", "/v2/nothing"},
	}
	bodies := []string{"", "{", "null", "[]", `{"unknown": 1}`, `{"header": 5, "access": "x", "kid": "zz", "slug": ["a"]}`,
		`{"ticket": "%%%", "email": "a@b", "password": "` + strings.Repeat("x", 5000) + `"}`,
		`{"profile": "deploy", "org": "acme", "app": "` + strings.Repeat("a", 300) + `", "expiry": "-5h"}`,
		strings.Repeat("[", 100000), `{"slug": "` + strings.Repeat("\u0000", 10) + `"}`}
	auths := []string{"", "FlyV1 fm2_" + strings.Repeat("A", 400), "Bearer " + secret, session, "FlyV1 " + strings.Repeat(",", 5000)}
	n := 0
	for _, rt := range routes {
		for _, body := range bodies {
			for _, auth := range auths {
				req, _ := http.NewRequest(rt.method, e.srv.URL()+rt.path, bytes.NewReader([]byte(body)))
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				n++
				if resp.StatusCode >= 500 {
					t.Errorf("%s %s body %.40q: %d %s", rt.method, rt.path, body, resp.StatusCode, raw)
					continue
				}
				if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					var m map[string]any
					if json.Unmarshal(raw, &m) != nil || m["error"] == nil {
						t.Errorf("%s %s: %d without a JSON error: %.200s", rt.method, rt.path, resp.StatusCode, raw)
					}
				}
			}
		}
	}
	t.Logf("%d requests, none answered 5xx", n)
}
