package identity

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/tp"
)

// client is a tp.Client that authenticates to the service with secret
// (none when empty) and never sleeps between polls.
func (h *harness) client(secret string) *tp.Client {
	c := &tp.Client{
		PollInterval: time.Millisecond,
		Sleep:        func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	}
	if secret != "" {
		u, _ := url.Parse(h.srv.URL)
		c.Credentials = map[string]string{u.Hostname(): "Bearer " + secret}
	}
	return c
}

// verify verifies a bundle as the authority does, trusting the login
// service, and returns its caveats.
func (h *harness) verify(header string) (caveat.CaveatSet, *caveat.Bundle) {
	h.t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := b.Verify(h.tokenLoc, h.kr.KeyFunc(context.Background()),
		caveat.TrustedThirdParties{h.loc: {h.kr.LoginTicketKey()}})
	if err != nil {
		h.t.Fatalf("verify: %v", err)
	}
	return v.Caveats, b
}

// loginAttestation returns the FlyioUserID and the discharge's validity
// window (the shorter of the two windows) found in a verified set.
func loginAttestation(t *testing.T, cs caveat.CaveatSet) (uid uint64, found bool, vw *caveat.ValidityWindow) {
	t.Helper()
	for _, c := range cs {
		v, err := c.Decode()
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case *auth.FlyioUserID:
			uid, found = uint64(*v), true
		case *caveat.ValidityWindow:
			if vw == nil || v.NotAfter-v.NotBefore < vw.NotAfter-vw.NotBefore {
				vw = v
			}
		}
	}
	return uid, found, vw
}

// boundDischarge reports whether the bundle's discharge carries a
// BindToParentToken caveat.
func boundDischarge(b *caveat.Bundle) bool {
	for i := range b.Tokens {
		if !b.IsDischarge(i) {
			continue
		}
		for _, c := range b.Tokens[i].Caveats {
			if c.Type == caveat.TypeBindToParentToken {
				return true
			}
		}
	}
	return false
}

// mint makes a permission token like a session token, with a login
// third-party caveat whose ticket holds ticketCaveats.
func (h *harness) mint(ticketCaveats ...caveat.Caveat) string {
	h.t.Helper()
	kid, key := h.kr.SessionKey()
	m, err := caveat.Mint(key, caveat.NewNonce(kid, false), h.tokenLoc)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := m.Add3P(h.kr.LoginTicketKey(), h.loc, ticketCaveats...); err != nil {
		h.t.Fatal(err)
	}
	return m.String()
}

func TestDischargeWithSession(t *testing.T) {
	h := newHarness(t, nil)
	user := h.signup("ada@example.com", "correct horse", "").User
	lg := h.login("ada@example.com", "correct horse")

	header, err := h.client(lg.Secret).FetchDischarges(t.Context(), "FlyV1 "+lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatalf("fetch discharge: %v", err)
	}
	if !strings.HasPrefix(header, "FlyV1 "+lg.Token+",fm2_") {
		t.Errorf("header = %.60q…", header)
	}
	cs, b := h.verify(header)
	uid, found, vw := loginAttestation(t, cs)
	if !found || uid != user.ID {
		t.Errorf("FlyioUserID = %d (found %v), want %d", uid, found, user.ID)
	}
	now := h.clk.Now().Unix()
	if vw == nil || vw.NotBefore != now || vw.NotAfter != now+int64(DefaultDischargeTTL/time.Second) {
		t.Errorf("discharge window = %+v, want %d to %d", vw, now, now+600)
	}
	if !boundDischarge(b) {
		t.Error("the discharge is not bound to the session token")
	}
	// The verified set clears an access at now, and not after the window.
	if err := cs.Clear(&auth.DischargeRequest{Time: h.clk.Now()}); err != nil {
		t.Errorf("clear now: %v", err)
	}
	if err := cs.Clear(&auth.DischargeRequest{Time: h.clk.Now().Add(DefaultDischargeTTL + time.Second)}); err == nil {
		t.Error("the discharge still clears after its window")
	}
}

func TestDischargeTTLConfigured(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DischargeTTL = 2 * time.Second })
	h.signup("ada@example.com", "correct horse", "")
	lg := h.login("ada@example.com", "correct horse")
	header, err := h.client(lg.Secret).FetchDischarges(t.Context(), lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := h.verify(header)
	if _, _, vw := loginAttestation(t, cs); vw == nil || vw.NotAfter-vw.NotBefore != 2 {
		t.Errorf("window = %+v, want 2 s", vw)
	}
}

// fetchError fetches a discharge that must be refused and returns the
// client's error.
func fetchError(t *testing.T, c *tp.Client, header, location string) *tp.Error {
	t.Helper()
	_, err := c.FetchDischarges(t.Context(), header, location)
	var te *tp.Error
	if !errors.As(err, &te) || !errors.Is(err, tp.ErrRefused) {
		t.Fatalf("fetch: %v, want a refusal", err)
	}
	return te
}

func TestDischargeClearsTicketCaveats(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "acme")
	bob := h.signup("bob@example.com", "battery staple", "bobco")
	lg := h.login("ada@example.com", "correct horse")
	c := h.client(lg.Secret)

	for _, tc := range []struct {
		name    string
		caveats []caveat.Caveat
		refusal string // "" when allowed
	}{
		{"own user", []caveat.Caveat{&auth.ConfineUser{ID: ada.User.ID}}, ""},
		{"own organization", []caveat.Caveat{&auth.ConfineOrganization{ID: ada.Organization.ID}}, ""},
		{"no caveats", nil, ""},
		{"another user", []caveat.Caveat{&auth.ConfineUser{ID: bob.User.ID}}, "ConfineUser"},
		{"another organization", []caveat.Caveat{&auth.ConfineOrganization{ID: bob.Organization.ID}}, "ConfineOrganization"},
		{"GitHub organization", []caveat.Caveat{ptr(auth.ConfineGitHubOrg(7))}, "ConfineGitHubOrg"},
		{"own user, zero max validity", []caveat.Caveat{&auth.ConfineUser{ID: ada.User.ID}, auth.NewMaxValidity(0)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := h.mint(tc.caveats...)
			if tc.refusal == "" {
				header, err := c.FetchDischarges(t.Context(), tok, h.tokenLoc)
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				cs, _ := h.verify(header)
				if uid, _, _ := loginAttestation(t, cs); uid != ada.User.ID {
					t.Errorf("attested user %d, want %d", uid, ada.User.ID)
				}
				return
			}
			te := fetchError(t, c, tok, h.tokenLoc)
			if te.Status != http.StatusForbidden || !strings.Contains(te.Message, tc.refusal) {
				t.Errorf("refusal: %d %q, want 403 naming %s", te.Status, te.Message, tc.refusal)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDischargeHonoursMaxValidity(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "").User
	lg := h.login("ada@example.com", "correct horse")
	c := h.client(lg.Secret)
	for _, tc := range []struct {
		max  time.Duration
		want int64 // seconds
	}{
		{time.Minute, 60},
		{599 * time.Second, 599},
		{time.Hour, 600}, // DischargeTTL is shorter
	} {
		header, err := c.FetchDischarges(t.Context(), h.mint(&auth.ConfineUser{ID: ada.ID}, auth.NewMaxValidity(tc.max)), h.tokenLoc)
		if err != nil {
			t.Fatalf("MaxValidity %v: %v", tc.max, err)
		}
		cs, _ := h.verify(header)
		if _, _, vw := loginAttestation(t, cs); vw == nil || vw.NotAfter-vw.NotBefore != tc.want {
			t.Errorf("MaxValidity %v: window %+v, want %d s", tc.max, vw, tc.want)
		}
	}

	// Near the end of the session, the discharge ends with it.
	h.clk.Advance(DefaultSessionTTL - 5*time.Minute)
	header, err := c.FetchDischarges(t.Context(), "FlyV1 "+lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := h.verify(header)
	if _, _, vw := loginAttestation(t, cs); vw == nil || vw.NotAfter != lg.ExpiresAt.Unix() {
		t.Errorf("window near the session's end = %+v, want it to end at %d", vw, lg.ExpiresAt.Unix())
	}
}

func TestDischargeRefusesBadCredentials(t *testing.T) {
	h := newHarness(t, nil)
	h.signup("ada@example.com", "correct horse", "")
	lg := h.login("ada@example.com", "correct horse")
	other := newHarness(t, nil) // another master key
	other.signup("ada@example.com", "correct horse", "")
	foreign := other.login("ada@example.com", "correct horse")

	for _, tc := range []struct {
		name, secret, msg string
	}{
		{"garbage", "cvs1_x.y", "invalid session credential"},
		{"another server's secret", foreign.Secret, "invalid session credential"},
		{"unknown session", h.kr.SessionSecret("00000000-0000-4000-8000-000000000000"), "unknown session"},
	} {
		te := fetchError(t, h.client(tc.secret), "FlyV1 "+lg.Token, h.tokenLoc)
		if te.Status != http.StatusUnauthorized || !strings.Contains(te.Message, tc.msg) {
			t.Errorf("%s: %d %q, want 401 with %q", tc.name, te.Status, te.Message, tc.msg)
		}
	}

	h.clk.Advance(DefaultSessionTTL)
	te := fetchError(t, h.client(lg.Secret), "FlyV1 "+lg.Token, h.tokenLoc)
	if te.Status != http.StatusUnauthorized || !strings.Contains(te.Message, "expired") {
		t.Errorf("expired session: %d %q", te.Status, te.Message)
	}
}

func TestLogoutThenDischargeRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.signup("ada@example.com", "correct horse", "")
	lg := h.login("ada@example.com", "correct horse")
	c := h.client(lg.Secret)
	if _, err := c.FetchDischarges(t.Context(), lg.Token, h.tokenLoc); err != nil {
		t.Fatalf("before logout: %v", err)
	}
	if code, msg := h.do("DELETE", "/aaa/v1/sessions/current", nil, nil, bearer(lg.Secret)...); code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", code, msg)
	}
	te := fetchError(t, c, lg.Token, h.tokenLoc)
	if te.Status != http.StatusUnauthorized || !strings.Contains(te.Message, "revoked") {
		t.Errorf("after logout: %d %q, want 401 saying revoked", te.Status, te.Message)
	}
}

func TestDischargeRequireBinding(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequireBinding = true })
	h.signup("ada@example.com", "correct horse", "")
	lg := h.login("ada@example.com", "correct horse")
	m, err := caveat.Parse(lg.Token)
	if err != nil {
		t.Fatal(err)
	}
	ticket := caveat.EncodeTicket(m.ThirdPartyTickets()[0].Ticket)
	code, msg := h.do("POST", "/aaa/v1/.well-known/macfly/3p", `{"ticket": "`+ticket+`"}`, nil, bearer(lg.Secret)...)
	if code != http.StatusBadRequest || !strings.Contains(msg, "parent_binding") {
		t.Errorf("unbound request: %d %q", code, msg)
	}
	// tp.Client asks for binding, so it gets its discharge.
	if _, err := h.client(lg.Secret).FetchDischarges(t.Context(), lg.Token, h.tokenLoc); err != nil {
		t.Errorf("bound request: %v", err)
	}

	// Without RequireBinding, an unbound request is served, unbound.
	h2 := newHarness(t, nil)
	h2.signup("ada@example.com", "correct horse", "")
	lg2 := h2.login("ada@example.com", "correct horse")
	m2, _ := caveat.Parse(lg2.Token)
	var out struct {
		Discharge string `json:"discharge"`
	}
	code, msg = h2.do("POST", "/aaa/v1/.well-known/macfly/3p",
		`{"ticket": "`+caveat.EncodeTicket(m2.ThirdPartyTickets()[0].Ticket)+`"}`, &out, bearer(lg2.Secret)...)
	if code != http.StatusCreated || out.Discharge == "" {
		t.Fatalf("unbound request without RequireBinding: %d %q", code, msg)
	}
	_, b := h2.verify(lg2.Token + "," + out.Discharge)
	if boundDischarge(b) {
		t.Error("an unbound request got a bound discharge")
	}
}

// formLogin posts the login form at pageURL.
func formLogin(t *testing.T, pageURL, email, password string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(pageURL, url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("POST %s: content type %q", pageURL, ct)
	}
	return resp.StatusCode, string(body)
}

// getPage fetches a login page and checks its protective headers.
func getPage(t *testing.T, pageURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for k, want := range map[string]string{
		"Content-Type":    "text/html; charset=utf-8",
		"Cache-Control":   "no-store",
		"X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET page: %s = %q, want %q", k, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("GET page: CSP %q", csp)
	}
	return resp.StatusCode, string(body)
}

func TestDischargeBrowserFlow(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "").User
	h.signup("bob@example.com", "battery staple", "")
	lg := h.login("ada@example.com", "correct horse")

	var visited string
	c := h.client("") // no credential: the user logs in in the browser
	c.UserURL = func(ctx context.Context, u string) error {
		visited = u
		if !strings.HasPrefix(u, h.loc+"/login/discharge/") {
			t.Errorf("user URL %s is not under %s/login/discharge/", u, h.loc)
		}
		code, body := getPage(t, u)
		if code != http.StatusOK || !strings.Contains(body, `<form method="post">`) || !strings.Contains(body, "ConfineUser") {
			t.Errorf("GET page: %d\n%s", code, body)
		}
		if code, body := formLogin(t, u, "ada@example.com", "wrong password"); code != http.StatusUnauthorized || !strings.Contains(body, "Invalid email or password") {
			t.Errorf("wrong password: %d\n%s", code, body)
		}
		if code, body := formLogin(t, u, "ada@example.com", "correct horse"); code != http.StatusOK || !strings.Contains(body, "You are logged in as ada@example.com") {
			t.Errorf("login: %d\n%s", code, body)
		}
		return nil
	}
	header, err := c.FetchDischarges(t.Context(), lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	cs, b := h.verify(header)
	uid, found, vw := loginAttestation(t, cs)
	if !found || uid != ada.ID || vw == nil || vw.NotAfter-vw.NotBefore != 600 {
		t.Errorf("attested %d (%v), window %+v", uid, found, vw)
	}
	if !boundDischarge(b) {
		t.Error("browser discharge not bound")
	}
	// The flow is over: the page is gone.
	if code, body := getPage(t, visited); code != http.StatusNotFound || !strings.Contains(body, "expired or has already been used") {
		t.Errorf("page after the flow: %d\n%s", code, body)
	}

	// Bob logs in for Ada's token: refused, and the client hears why.
	c.UserURL = func(ctx context.Context, u string) error {
		code, body := formLogin(t, u, "bob@example.com", "battery staple")
		if code != http.StatusForbidden || !strings.Contains(body, "ConfineUser") || !strings.Contains(body, "bob@example.com") {
			t.Errorf("bob's login: %d\n%s", code, body)
		}
		if code, _ := formLogin(t, u, "ada@example.com", "correct horse"); code != http.StatusConflict && code != http.StatusNotFound {
			t.Errorf("login after the refusal: %d, want the flow finished", code)
		}
		return nil
	}
	te := fetchError(t, c, lg.Token, h.tokenLoc)
	if !strings.Contains(te.Message, "ConfineUser") || te.Step != "poll" {
		t.Errorf("refused browser flow: %+v", te)
	}
}

func TestDischargeBrowserFlowExpires(t *testing.T) {
	h := newHarness(t, nil)
	h.signup("ada@example.com", "correct horse", "")
	lg := h.login("ada@example.com", "correct horse")
	c := h.client("")
	c.UserURL = func(ctx context.Context, u string) error {
		h.clk.Advance(DefaultFlowTTL)
		if code, _ := getPage(t, u); code != http.StatusNotFound {
			t.Errorf("expired page: %d", code)
		}
		if code, _ := formLogin(t, u, "ada@example.com", "correct horse"); code != http.StatusNotFound {
			t.Errorf("login on an expired page: %d", code)
		}
		return nil
	}
	_, err := c.FetchDischarges(t.Context(), lg.Token, h.tokenLoc)
	var te *tp.Error
	if !errors.As(err, &te) || te.Status != http.StatusNotFound {
		t.Errorf("fetch after expiry: %v, want a 404 poll", err)
	}
}
