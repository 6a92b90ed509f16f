package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// cheapArgon2 keeps tests fast; production uses DefaultArgon2Params.
var cheapArgon2 = Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// clock is an injected clock that tests move by hand.

type harness struct {
	t        *testing.T
	db       *sqlite.DB
	clk      *fake.Clock
	kr       *keyring.Keyring
	svc      *Service
	srv      *httptest.Server
	logs     *fake.Buffer
	loc      string // the login location, srv.URL + "/aaa/v1"
	tokenLoc string // srv.URL + "/v1"
}

// newHarness starts the service on a real SQLite file, with open signup,
// cheap password hashing and limits high enough to stay out of the way;
// mod changes the configuration before New, and hooks the service before
// it serves.
func newHarness(t *testing.T, mod func(*Config), hooks ...func(*Service)) *harness {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "caveat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := fake.NewClock(time.Unix(1764000000, 0).UTC())
	kr := keyring.NewKeyring(keyring.NewMasterKey(), db, clk.Now)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	logs := &fake.Buffer{}
	cfg := Config{
		Store:         db,
		Keyring:       kr,
		Location:      base + "/aaa/v1",
		TokenLocation: base + "/v1",
		SignupOpen:    true,
		Argon2:        cheapArgon2,
		AccountLimit:  RateLimit{Burst: 1000, Every: time.Millisecond},
		AddressLimit:  RateLimit{Burst: 1000, Every: time.Millisecond},
		Now:           clk.Now,
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, hook := range hooks {
		hook(svc)
	}
	srv.Config.Handler = svc.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return &harness{t: t, db: db, clk: clk, kr: kr, svc: svc, srv: srv, logs: logs,
		loc: cfg.Location, tokenLoc: cfg.TokenLocation}
}

// request makes a request to the service; body is a string sent as is, or
// anything else sent as JSON.
func (h *harness) request(method, path string, body any, header ...string) *http.Response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = h.srv.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// do makes a JSON request and decodes the JSON answer into out (when not
// nil). Every answer must be JSON, and no client input may yield a 5xx.
func (h *harness) do(method, path string, body, out any, header ...string) (int, string) {
	h.t.Helper()
	resp := h.request(method, path, body, header...)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode >= 500 {
		h.t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, ""
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		h.t.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, e.Error
}

// signup creates an account through the API.
func (h *harness) signup(email, password, org string) api.SignupResult {
	h.t.Helper()
	var out api.SignupResult
	req := api.SignupRequest{Email: email, Password: password, Organization: org}
	if code, msg := h.do("POST", "/aaa/v1/users", req, &out); code != http.StatusCreated {
		h.t.Fatalf("signup %s: %d %s", email, code, msg)
	}
	return out
}

// login logs in through the API.
func (h *harness) login(email, password string) api.Session {
	h.t.Helper()
	var out api.Session
	if code, msg := h.do("POST", "/aaa/v1/sessions", api.LoginRequest{Email: email, Password: password}, &out); code != http.StatusCreated {
		h.t.Fatalf("login %s: %d %s", email, code, msg)
	}
	return out
}

func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

func TestNewChecksConfig(t *testing.T) {
	h := newHarness(t, nil)
	good := Config{Store: h.db, Keyring: h.kr, Location: "https://x.test/aaa/v1", TokenLocation: "https://x.test/v1"}
	if _, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no store":            func(c *Config) { c.Store = nil },
		"no keyring":          func(c *Config) { c.Keyring = nil },
		"relative location":   func(c *Config) { c.Location = "/aaa/v1" },
		"no token location":   func(c *Config) { c.TokenLocation = "" },
		"location with query": func(c *Config) { c.Location = "https://x.test/aaa/v1?x=1" },
		"tiny discharge ttl":  func(c *Config) { c.DischargeTTL = time.Millisecond },
		"weak argon2": func(c *Config) {
			c.Argon2 = Argon2Params{Memory: 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
		},
	} {
		c := good
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestSignupFirstUserGetsOrganization(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()

	first := h.signup("Ada.Lovelace@Example.com", "correct horse", "")
	if first.User.ID == 0 || first.User.Email != "Ada.Lovelace@Example.com" {
		t.Errorf("first user = %+v", first.User)
	}
	if first.Organization == nil || first.Organization.Slug != "ada-lovelace" || first.Organization.Role != "admin" {
		t.Fatalf("first user's organization = %+v, want ada-lovelace as admin", first.Organization)
	}
	m, err := h.db.GetMembership(ctx, first.Organization.ID, first.User.ID)
	if err != nil || m.Role != store.RoleAdmin {
		t.Errorf("membership = %+v, %v; want admin", m, err)
	}
	if _, err := h.db.ActiveRootKey(ctx, first.Organization.ID); err != nil {
		t.Errorf("the new organization has no root key: %v", err)
	}

	second := h.signup("bob@example.com", "battery staple", "")
	if second.Organization != nil {
		t.Errorf("second user without an organization got %+v", second.Organization)
	}
	if orgs, _ := h.db.ListUserOrganizations(ctx, second.User.ID); len(orgs) != 0 {
		t.Errorf("second user belongs to %v", orgs)
	}

	third := h.signup("cy@example.com", "battery staple", " Beta-Team ")
	if third.Organization == nil || third.Organization.Slug != "beta-team" || third.Organization.Role != "admin" {
		t.Fatalf("third user's organization = %+v", third.Organization)
	}
	if _, err := h.db.ActiveRootKey(ctx, third.Organization.ID); err != nil {
		t.Errorf("the third user's organization has no root key: %v", err)
	}

	// A taken slug is refused, and the user is not created either.
	code, msg := h.do("POST", "/aaa/v1/users", api.SignupRequest{Email: "dee@example.com", Password: "battery staple", Organization: "beta-team"}, nil)
	if code != http.StatusConflict || !strings.Contains(msg, `organization "beta-team" already exists`) {
		t.Errorf("taken slug: %d %q", code, msg)
	}
	if _, err := h.db.GetUserByEmail(ctx, "dee@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user of a refused signup: %v", err)
	}
}

func TestSignupFirstUserNamesOrganization(t *testing.T) {
	h := newHarness(t, nil)
	out := h.signup("ada@example.com", "correct horse", "acme")
	if out.Organization == nil || out.Organization.Slug != "acme" {
		t.Fatalf("organization = %+v, want acme", out.Organization)
	}
}

// TestSignupClosed: with signup closed, the first user of a server can
// still sign up (someone must administer it), as the README and the
// --signup flag say; everyone after is refused.
func TestSignupClosed(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SignupOpen = false })
	first := h.signup("ada@example.com", "correct horse", "")
	if first.Organization == nil || first.Organization.Role != "admin" {
		t.Fatalf("first user with signup closed: %+v, want the admin of a new organization", first)
	}
	for _, req := range []api.SignupRequest{
		{Email: "bob@example.com", Password: "battery staple"},
		{Email: "bob@example.com", Password: "battery staple", Organization: "beta"},
	} {
		code, msg := h.do("POST", "/aaa/v1/users", req, nil)
		if code != http.StatusForbidden || msg != "signup is closed on this server" {
			t.Errorf("second user (%+v) with signup closed: %d %q", req, code, msg)
		}
	}
	if _, err := h.db.GetUserByEmail(context.Background(), "bob@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("closed signup created a second user: %v", err)
	}
	if _, err := h.db.GetOrganizationBySlug(context.Background(), "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("closed signup created an organization: %v", err)
	}
}

func TestSignupDuplicateEmail(t *testing.T) {
	h := newHarness(t, nil)
	h.signup("ada@example.com", "correct horse", "")
	code, msg := h.do("POST", "/aaa/v1/users", api.SignupRequest{Email: " ADA@example.COM ", Password: "another password"}, nil)
	if code != http.StatusConflict || msg != "an account with this email already exists" {
		t.Errorf("duplicate email: %d %q", code, msg)
	}
	// The first password still logs in; the duplicate's does not.
	h.login("ada@example.com", "correct horse")
	if code, _ := h.do("POST", "/aaa/v1/sessions", api.LoginRequest{Email: "ada@example.com", Password: "another password"}, nil); code != http.StatusUnauthorized {
		t.Errorf("the duplicate's password: %d", code)
	}
}

func TestSignupRefusesBadInput(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"no email", api.SignupRequest{Password: "correct horse"}, 400, `"email" is required`},
		{"no at", api.SignupRequest{Email: "ada.example.com", Password: "correct horse"}, 400, "want one @"},
		{"two ats", api.SignupRequest{Email: "a@b@example.com", Password: "correct horse"}, 400, "want one @"},
		{"space", api.SignupRequest{Email: "ada lovelace@example.com", Password: "correct horse"}, 400, "spaces"},
		{"markup", api.SignupRequest{Email: "<ada>@example.com", Password: "correct horse"}, 400, "not an email address"},
		{"empty domain", api.SignupRequest{Email: "ada@", Password: "correct horse"}, 400, "want one @"},
		{"dotted domain", api.SignupRequest{Email: "ada@example..com", Password: "correct horse"}, 400, "domain is malformed"},
		{"long email", api.SignupRequest{Email: strings.Repeat("a", 60) + "@" + strings.Repeat("b", 250) + ".com", Password: "correct horse"}, 400, "longer than 254"},
		{"short password", api.SignupRequest{Email: "ada@example.com", Password: "seven77"}, 400, "at least 8 characters"},
		{"short in characters", api.SignupRequest{Email: "ada@example.com", Password: "ééééééé"}, 400, "at least 8 characters"},
		{"long password", api.SignupRequest{Email: "ada@example.com", Password: strings.Repeat("p", 1025)}, 400, "at most 1024 bytes"},
		{"bad slug", api.SignupRequest{Email: "ada@example.com", Password: "correct horse", Organization: "acme corp!"}, 400, `"organization" must be`},
		{"dash slug", api.SignupRequest{Email: "ada@example.com", Password: "correct horse", Organization: "-acme"}, 400, `"organization" must be`},
		{"malformed JSON", `{"email": "ada@example.com", `, 400, "invalid JSON body"},
		{"unknown field", `{"email": "ada@example.com", "password": "correct horse", "admin": true}`, 400, `unknown field "admin"`},
		{"wrong type", `{"email": 7, "password": "correct horse"}`, 400, `field "email"`},
		{"empty body", ``, 400, "request body is empty"},
		{"two values", `{} {}`, 400, "unexpected data"},
		{"oversized", `{"email": "` + strings.Repeat("a", 70<<10) + `"}`, 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := h.do("POST", "/aaa/v1/users", tc.body, nil)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("got %d %q, want %d with %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	if _, err := h.db.GetUserByEmail(context.Background(), "ada@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused signup created the user: %v", err)
	}
}

func TestSlugFromEmail(t *testing.T) {
	for _, tc := range []struct{ email, want string }{
		{"ada@example.com", "ada"},
		{"Ada.Lovelace@example.com", "ada-lovelace"},
		{"ada+caveat__test@example.com", "ada-caveat-test"},
		{"--ada--@example.com", "ada"},
		{"élodie@example.com", "lodie"},
		{"+++@example.com", "org"},
		{strings.Repeat("x", 64) + "@example.com", strings.Repeat("x", 63)},
	} {
		got := slugFromEmail(tc.email)
		if got != tc.want || !store.ValidSlug(got) {
			t.Errorf("slugFromEmail(%q) = %q, want %q (valid)", tc.email, got, tc.want)
		}
	}
}

func TestLogin(t *testing.T) {
	h := newHarness(t, nil)
	user := h.signup("ada@example.com", "correct horse", "").User

	got := h.login("ADA@example.com", "correct horse")
	if got.User != user {
		t.Errorf("user = %+v, want %+v", got.User, user)
	}
	if !strings.HasPrefix(got.Token, "fm2_") || !strings.HasPrefix(got.Secret, "cvs1_") || got.SessionID == "" {
		t.Errorf("login answer = %+v", got)
	}
	if want := h.clk.Now().Add(DefaultSessionTTL); !got.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v, want %v", got.ExpiresAt, want)
	}
	// The session is stored under the token's nonce, and the secret is its
	// secret.
	m, err := caveat.Parse(got.Token)
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Nonce.UUID().String(); id != got.SessionID {
		t.Errorf("session id %s is not the token's nonce %s", got.SessionID, id)
	}
	sess, err := h.db.GetSession(context.Background(), got.SessionID)
	if err != nil || sess.UserID != user.ID || !sess.ExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("stored session = %+v, %v", sess, err)
	}
	if id, ok := h.kr.CheckSessionSecret(got.Secret); !ok || id != got.SessionID {
		t.Errorf("secret is not the session's")
	}
	if len(m.ThirdPartyTickets()) != 1 || m.ThirdPartyTickets()[0].Location != h.loc {
		t.Errorf("session token's third-party caveats: %+v", m.ThirdPartyTickets())
	}

	for _, tc := range []struct {
		name string
		req  api.LoginRequest
	}{
		{"wrong password", api.LoginRequest{Email: "ada@example.com", Password: "correct horsE"}},
		{"unknown email", api.LoginRequest{Email: "bob@example.com", Password: "correct horse"}},
		{"oversized password", api.LoginRequest{Email: "ada@example.com", Password: strings.Repeat("x", 2000)}},
	} {
		code, msg := h.do("POST", "/aaa/v1/sessions", tc.req, nil)
		if code != http.StatusUnauthorized || msg != "invalid email or password" {
			t.Errorf("%s: %d %q", tc.name, code, msg)
		}
	}
	code, msg := h.do("POST", "/aaa/v1/sessions", `{"email": "ada@example.com"}`, nil)
	if code != http.StatusBadRequest || !strings.Contains(msg, "required") {
		t.Errorf("no password: %d %q", code, msg)
	}
}

// A login costs one password check whether or not the account exists:
// unknown emails are checked against the dummy hash.
func TestLoginChecksAPasswordForUnknownEmails(t *testing.T) {
	var mu sync.Mutex
	var checked []string
	h := newHarness(t, nil, func(s *Service) {
		s.checkPassword = func(hash, password string) (bool, error) {
			mu.Lock()
			checked = append(checked, hash)
			mu.Unlock()
			return CheckPassword(hash, password)
		}
	})
	h.signup("ada@example.com", "correct horse", "")
	for _, email := range []string{"bob@example.com", "ada@example.com", strings.Repeat("x", 300) + "@example.com"} {
		mu.Lock()
		checked = nil
		mu.Unlock()
		if code, _ := h.do("POST", "/aaa/v1/sessions", api.LoginRequest{Email: email, Password: "wrong password"}, nil); code != http.StatusUnauthorized {
			t.Fatalf("%.20s: %d", email, code)
		}
		mu.Lock()
		if len(checked) != 1 {
			t.Errorf("%.20s: %d password checks, want 1", email, len(checked))
		} else if email != "ada@example.com" && checked[0] != h.svc.dummyHash {
			t.Errorf("%.20s: checked against %q, want the dummy hash", email, checked[0])
		}
		mu.Unlock()
	}
}

func TestWhoami(t *testing.T) {
	h := newHarness(t, nil)
	su := h.signup("ada@example.com", "correct horse", "acme")
	lg := h.login("ada@example.com", "correct horse")

	var who api.WhoAmI
	if code, msg := h.do("GET", "/aaa/v1/whoami", nil, &who, bearer(lg.Secret)...); code != http.StatusOK {
		t.Fatalf("whoami: %d %s", code, msg)
	}
	want := api.WhoAmI{
		User:          su.User,
		Organizations: []api.Organization{{ID: su.Organization.ID, Slug: "acme", Role: "admin"}},
		Session:       api.SessionInfo{ID: lg.SessionID, ExpiresAt: lg.ExpiresAt},
	}
	if !equalJSON(t, who, want) {
		t.Errorf("whoami = %+v, want %+v", who, want)
	}

	for _, tc := range []struct {
		name   string
		header []string
		msg    string
	}{
		{"no header", nil, "missing session credential"},
		{"basic", []string{"Authorization", "Basic YWRhOnB3"}, "must be sent as Authorization: Bearer"},
		{"garbage", bearer("cvs1_nope.nope"), "invalid session credential"},
		{"token instead of secret", bearer(lg.Token), "invalid session credential"},
		{"unknown session", bearer(h.kr.SessionSecret("00000000-0000-4000-8000-000000000000")), "unknown session"},
	} {
		code, msg := h.do("GET", "/aaa/v1/whoami", nil, nil, tc.header...)
		if code != http.StatusUnauthorized || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want 401 with %q", tc.name, code, msg, tc.msg)
		}
	}

	h.clk.Advance(DefaultSessionTTL)
	code, msg := h.do("GET", "/aaa/v1/whoami", nil, nil, bearer(lg.Secret)...)
	if code != http.StatusUnauthorized || !strings.Contains(msg, "session expired") {
		t.Errorf("expired session: %d %q", code, msg)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func TestLogout(t *testing.T) {
	h := newHarness(t, nil)
	h.signup("ada@example.com", "correct horse", "")
	lg := h.login("ada@example.com", "correct horse")
	other := h.login("ada@example.com", "correct horse")

	if code, msg := h.do("DELETE", "/aaa/v1/sessions/current", nil, nil, bearer(lg.Secret)...); code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", code, msg)
	}
	sess, err := h.db.GetSession(context.Background(), lg.SessionID)
	if err != nil || sess.RevokedAt.IsZero() {
		t.Errorf("session after logout = %+v, %v", sess, err)
	}
	for _, m := range []string{"GET /aaa/v1/whoami", "DELETE /aaa/v1/sessions/current"} {
		method, path, _ := strings.Cut(m, " ")
		code, msg := h.do(method, path, nil, nil, bearer(lg.Secret)...)
		if code != http.StatusUnauthorized || !strings.Contains(msg, "revoked") {
			t.Errorf("%s after logout: %d %q", m, code, msg)
		}
	}
	// Another session of the same user is untouched.
	if code, _ := h.do("GET", "/aaa/v1/whoami", nil, nil, bearer(other.Secret)...); code != http.StatusOK {
		t.Errorf("other session after logout: %d", code)
	}
	if code, msg := h.do("DELETE", "/aaa/v1/sessions/current", nil, nil); code != http.StatusUnauthorized || !strings.Contains(msg, "missing") {
		t.Errorf("logout without a credential: %d %q", code, msg)
	}
}

func TestRoutesAnswerJSON(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		method, path string
		body         any
		code         int
	}{
		{"GET", "/aaa/v1/nothing", nil, 404},
		{"GET", "/aaa/v1/users", nil, 405},
		{"PUT", "/aaa/v1/sessions", nil, 405},
		{"GET", "/aaa/v1/sessions/web/poll/" + strings.Repeat("0", 32), nil, 404},
		{"GET", "/aaa/v1/sessions/web/poll/not-hex", nil, 404},
		{"GET", "/aaa/v1/.well-known/macfly/3p", nil, 405},
		{"GET", "/aaa/v1/.well-known/macfly/3p/poll/" + strings.Repeat("0", 32), nil, 404},
		{"POST", "/aaa/v1/.well-known/macfly/3p", `{"ticket": "AAAA"}`, 400},
		{"POST", "/aaa/v1/.well-known/macfly/3p", `{"ticket": "not base64"}`, 400},
		{"POST", "/aaa/v1/.well-known/macfly/3p", `{"ticket": `, 400},
		{"POST", "/aaa/v1/.well-known/macfly/3p", `{"ticket": "AAAA", "extra": 1}`, 400},
		{"POST", "/aaa/v1/.well-known/macfly/3p", `{"ticket": "` + strings.Repeat("A", 70<<10) + `"}`, 413},
		{"POST", "/aaa/v1/sessions", `{"email": "a@b", "password": "x", "remember": true}`, 400},
		{"POST", "/aaa/v1/sessions", `[1, 2]`, 400},
		{"POST", "/aaa/v1/sessions", `{"email": "` + strings.Repeat("a", 70<<10) + `"}`, 413},
		{"POST", "/aaa/v1/sessions/web", `{"x": 1}`, 400},
		{"POST", "/aaa/v1/sessions/web", `{`, 400},
		{"POST", "/aaa/v1/sessions/web", strings.Repeat(" ", 70<<10) + "{}", 413},
	} {
		code, msg := h.do(tc.method, tc.path, tc.body, nil)
		if code != tc.code || msg == "" {
			t.Errorf("%s %s: %d %q, want %d with an error", tc.method, tc.path, code, msg, tc.code)
		}
	}
}
