package server

// A third-party client written from the spec's JSON alone (§8), as Fly's
// reference client behaves: it never sends parent_binding and keeps no
// cookies. Against a server on its defaults it gets unbound discharges,
// immediate (bearer session secret) and user-interactive (ticket posted,
// user_url opened and answered by a person, poll_url polled); with
// --require-discharge-binding it is refused.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
)

// specPost posts a JSON object and decodes the JSON answer, whatever the
// status and content type (§8.3: clients must not depend on them).
func specPost(t *testing.T, url, auth string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return specDo(t, req)
}

func specDo(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req) // no cookie jar
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode != http.StatusAccepted {
		// An array (authenticate's answer) comes back as {"array": […]}.
		var arr []any
		if json.Unmarshal(raw, &arr) == nil {
			return resp.StatusCode, map[string]any{"array": arr}
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d answer is not JSON: %q", req.Method, req.URL, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// loginTicket logs in through the API and returns the session token, its
// secret and the ticket of its third-party caveat to the login service.
func loginTicket(t *testing.T, s *Server, email, password string) (token, secret string, ticket []byte) {
	t.Helper()
	code, out := specPost(t, s.URL()+"/aaa/v1/sessions", "", map[string]any{"email": email, "password": password})
	if code != http.StatusCreated {
		t.Fatalf("login: %d %v", code, out)
	}
	token, secret = out["token"].(string), out["secret"].(string)
	b, err := caveat.ParseBundle(token)
	if err != nil {
		t.Fatal(err)
	}
	tps := b.Tokens[0].ThirdPartyTickets()
	if len(tps) != 1 || tps[0].Location != s.LoginLocation() {
		t.Fatalf("session token's third-party caveats: %+v", tps)
	}
	return token, secret, tps[0].Ticket
}

// authenticates reports whether the authority accepts the bundle.
func authenticates(t *testing.T, s *Server, bundle string) bool {
	t.Helper()
	code, out := specPost(t, s.URL()+"/v1/tokens/authenticate", "", map[string]any{"header": "FlyV1 " + bundle})
	if code != http.StatusOK && code != http.StatusUnauthorized {
		t.Fatalf("authenticate: %d %v", code, out)
	}
	return code == http.StatusOK
}

func unbound(t *testing.T, discharge string) bool {
	t.Helper()
	b, err := caveat.ParseBundle(discharge)
	if err != nil {
		t.Fatalf("discharge: %v", err)
	}
	for _, c := range b.Tokens[0].Caveats {
		if c.Type == caveat.TypeBindToParentToken {
			return false
		}
	}
	return true
}

func startWith(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen, cfg.DataDir, cfg.Signup = "127.0.0.1:0", t.TempDir(), true
	cfg.Logger = slog.New(slog.DiscardHandler)
	return runServer(t, cfg)
}

func TestSpecClientWithoutBinding(t *testing.T) {
	s := startWith(t, Config{})
	if code, out := specPost(t, s.URL()+"/aaa/v1/users", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery", "organization": "acme"}); code != http.StatusCreated {
		t.Fatalf("signup: %d %v", code, out)
	}
	init := s.LoginLocation() + "/.well-known/macfly/3p"

	// Immediate: the session secret as a bearer credential.
	token, secret, ticket := loginTicket(t, s, "ada@example.com", "correct horse battery")
	code, out := specPost(t, init, "Bearer "+secret, map[string]any{"ticket": base64.StdEncoding.EncodeToString(ticket)})
	d, _ := out["discharge"].(string)
	if code != http.StatusCreated || !strings.HasPrefix(d, "fm2_") {
		t.Fatalf("immediate discharge without parent_binding: %d %v", code, out)
	}
	if !unbound(t, d) {
		t.Error("the server bound a discharge the client did not ask to bind")
	}
	if !authenticates(t, s, token+","+d) {
		t.Fatal("the session token with its unbound discharge is refused")
	}

	// User-interactive: no Authorization, no cookies.
	token, _, ticket = loginTicket(t, s, "ada@example.com", "correct horse battery")
	code, out = specPost(t, init, "", map[string]any{"ticket": base64.StdEncoding.EncodeToString(ticket)})
	ui, _ := out["user_interactive"].(map[string]any)
	if code != http.StatusCreated || ui == nil {
		t.Fatalf("user-interactive init: %d %v", code, out)
	}
	pollURL, userURL := ui["poll_url"].(string), ui["user_url"].(string)
	if !strings.HasPrefix(pollURL, "http://") || !strings.HasPrefix(userURL, "http://") {
		t.Fatalf("URLs must be absolute: %v", ui)
	}
	poll := func() (int, map[string]any) {
		req, _ := http.NewRequest("GET", pollURL, nil)
		return specDo(t, req)
	}
	if code, _ := poll(); code != http.StatusAccepted {
		t.Fatalf("poll before the user answered: %d, want 202", code)
	}
	// The person opens user_url and logs in: a plain form, no cookie.
	resp, err := http.Get(userURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte(`name="password"`)) {
		t.Fatalf("user_url: %d %.200s", resp.StatusCode, page)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("the login page set cookies: %v", resp.Cookies())
	}
	resp, err = http.PostForm(userURL, url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login on the page: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, out = poll()
		if code != http.StatusAccepted || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	d, _ = out["discharge"].(string)
	if code != http.StatusOK || !strings.HasPrefix(d, "fm2_") {
		t.Fatalf("poll after login: %d %v", code, out)
	}
	if !unbound(t, d) || !authenticates(t, s, token+","+d) {
		t.Fatal("the user-interactive discharge is bound or refused")
	}
	if code, _ := poll(); code != http.StatusNotFound {
		t.Errorf("poll after the discharge was collected: %d, want 404", code)
	}
}

func TestRequireDischargeBinding(t *testing.T) {
	s := startWith(t, Config{RequireDischargeBinding: true})
	specPost(t, s.URL()+"/aaa/v1/users", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery", "organization": "acme"})
	_, secret, ticket := loginTicket(t, s, "ada@example.com", "correct horse battery")
	code, out := specPost(t, s.LoginLocation()+"/.well-known/macfly/3p", "Bearer "+secret,
		map[string]any{"ticket": base64.StdEncoding.EncodeToString(ticket)})
	if code != http.StatusBadRequest || !strings.Contains(out["error"].(string), "parent_binding") {
		t.Fatalf("unbound request with --require-discharge-binding: %d %v", code, out)
	}
}

// TestSpecJudgingEndpoints: authenticate and authorize in the shapes of
// ../shared/spec/machines-api.md ("Token judging endpoints"), read with
// nothing but that JSON.
func TestSpecJudgingEndpoints(t *testing.T) {
	s := startWith(t, Config{})
	specPost(t, s.URL()+"/aaa/v1/users", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery", "organization": "acme"})
	token, secret, ticket := loginTicket(t, s, "ada@example.com", "correct horse battery")
	_, out := specPost(t, s.LoginLocation()+"/.well-known/macfly/3p", "Bearer "+secret, map[string]any{"ticket": base64.StdEncoding.EncodeToString(ticket)})
	session := "FlyV1 " + token + "," + out["discharge"].(string)
	if code, out := specPost(t, s.URL()+"/v1/apps", session, map[string]any{"app_name": "workers", "org_slug": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %v", code, out)
	}
	code, out := specPost(t, s.URL()+"/v1/tokens", session, map[string]any{"profile": "deploy", "org": "acme", "app": "workers", "expiry": "1h"})
	if code != http.StatusCreated {
		t.Fatalf("create token: %d %v", code, out)
	}
	deploy := out["token"].(string)
	if code, out := specPost(t, s.URL()+"/v1/orgs", session, map[string]any{"slug": "other"}); code != http.StatusCreated {
		t.Fatalf("create another organization: %d %v", code, out)
	}
	code, out = specPost(t, s.URL()+"/v1/apps/workers/machines", deploy, map[string]any{"config": map[string]any{"image": "nginx"}})
	if code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("create machine: %d %v", code, out)
	}
	machine := out["id"].(string)

	// authenticate: an array of {caveats, permission_token}.
	b, _ := json.Marshal(map[string]any{"header": deploy})
	resp, err := http.Post(s.URL()+"/v1/tokens/authenticate", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var verified []struct {
		Caveats         []map[string]any `json:"caveats"`
		PermissionToken string           `json:"permission_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&verified)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(verified) != 1 {
		t.Fatalf("authenticate: %d %v %+v", resp.StatusCode, err, verified)
	}
	if want := strings.TrimPrefix(strings.TrimPrefix(deploy, "FlyV1 "), "fm2_"); verified[0].PermissionToken != want {
		t.Errorf("permission_token %q, want the token's bytes in base64 %q", verified[0].PermissionToken, want)
	}
	if len(verified[0].Caveats) < 3 || verified[0].Caveats[0]["type"] != "Organization" {
		t.Errorf("caveats: %v", verified[0].Caveats)
	}

	// authorize, by name.
	code, out = specPost(t, s.URL()+"/v1/tokens/authorize", "", map[string]any{"header": deploy,
		"access": map[string]any{"org_slug": "acme", "app_name": "workers", "machine_id": machine, "action": "C"}})
	access, _ := out["access"].(map[string]any)
	vt, _ := out["verified_token"].(map[string]any)
	if code != 200 || access == nil || vt == nil {
		t.Fatalf("authorize by name: %d %v", code, out)
	}
	if access["machine"] != machine || access["action"] != "C" || access["orgid"] == nil || access["appid"] == nil {
		t.Errorf("resolved access: %v", access)
	}
	if vt["permission_token"] != verified[0].PermissionToken || vt["caveats"] == nil {
		t.Errorf("verified_token: %v", vt)
	}
	for _, c := range []struct {
		name   string
		header string
		access map[string]any
		status int
		want   string
	}{
		{"unknown organization", deploy, map[string]any{"org_slug": "nope", "action": "r"}, 404, "no organization"},
		{"unknown app", deploy, map[string]any{"org_slug": "acme", "app_name": "nope", "action": "r"}, 404, "no app"},
		{"another organization", deploy, map[string]any{"org_slug": "other", "action": "r"}, 404, "no organization"},
		{"another app's machine id", deploy, map[string]any{"org_slug": "acme", "app_name": "workers", "machine_id": "0123456789abcd", "action": "r"}, 404, "no machine"},
		{"machine without app", deploy, map[string]any{"org_slug": "acme", "machine_id": machine, "action": "r"}, 400, "need app_name"},
		{"a feature the deploy token lacks", deploy, map[string]any{"org_slug": "acme", "org_feature": "wg", "action": "r"}, 403, "(Apps)"},
		{"an unknown field", deploy, map[string]any{"org_slug": "acme", "bogus": 1}, 400, "bogus"},
		{"a bad token", "FlyV1 fm2_AAAA", map[string]any{"org_slug": "acme", "action": "r"}, 401, "malformed"},
	} {
		code, out := specPost(t, s.URL()+"/v1/tokens/authorize", "", map[string]any{"header": c.header, "access": c.access})
		msg, _ := out["error"].(string)
		if code != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %v, want %d with an error mentioning %q", c.name, code, out, c.status, c.want)
		}
	}
	// The catalogue's form is still taken.
	code, out = specPost(t, s.URL()+"/v1/tokens/authorize", "", map[string]any{"header": deploy, "access": access})
	if code != 200 {
		t.Errorf("authorize in the catalogue's form: %d %v", code, out)
	}
}
