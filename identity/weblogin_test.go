package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/api"
)

// startWebLogin starts a CLI browser login.
func (h *harness) startWebLogin() api.UserInteractive {
	h.t.Helper()
	var out api.WebLogin
	if code, msg := h.do("POST", "/aaa/v1/sessions/web", nil, &out); code != http.StatusCreated {
		h.t.Fatalf("start web login: %d %s", code, msg)
	}
	return out.UserInteractive
}

func TestWebLogin(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "acme").User
	ui := h.startWebLogin()
	if !strings.HasPrefix(ui.UserURL, h.loc+"/login/cli/") || !strings.HasPrefix(ui.PollURL, h.loc+"/sessions/web/poll/") {
		t.Fatalf("URLs %+v are not absolute URLs under %s", ui, h.loc)
	}

	code, msg := h.do("GET", ui.PollURL, nil, nil)
	if code != http.StatusAccepted || msg != "not ready" {
		t.Errorf("poll before login: %d %q", code, msg)
	}
	// The user secret does not poll, and the poll secret is no page.
	userSecret := ui.UserURL[strings.LastIndexByte(ui.UserURL, '/')+1:]
	pollSecret := ui.PollURL[strings.LastIndexByte(ui.PollURL, '/')+1:]
	if code, _ := h.do("GET", "/aaa/v1/sessions/web/poll/"+userSecret, nil, nil); code != http.StatusNotFound {
		t.Errorf("polling with the user secret: %d", code)
	}
	if code, _ := getPage(t, h.loc+"/login/cli/"+pollSecret); code != http.StatusNotFound {
		t.Errorf("the page of the poll secret: %d", code)
	}

	code, body := getPage(t, ui.UserURL)
	if code != http.StatusOK || !strings.Contains(body, `<form method="post">`) || !strings.Contains(body, "127.0.0.1") {
		t.Errorf("GET page: %d\n%s", code, body)
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") && !strings.Contains(body, "127.0.0.1") {
		t.Errorf("page has scripts or external assets:\n%s", body)
	}
	if code, body := formLogin(t, ui.UserURL, "ada@example.com", "wrong password"); code != http.StatusUnauthorized || !strings.Contains(body, "Invalid email or password") {
		t.Errorf("wrong password: %d\n%s", code, body)
	}
	if code, _ := h.do("GET", ui.PollURL, nil, nil); code != http.StatusAccepted {
		t.Errorf("poll after a failed login: %d", code)
	}
	if code, body := formLogin(t, ui.UserURL, "ada@example.com", "correct horse"); code != http.StatusOK || !strings.Contains(body, "You are logged in as ada@example.com") {
		t.Errorf("login: %d\n%s", code, body)
	}
	if code, _ := formLogin(t, ui.UserURL, "ada@example.com", "correct horse"); code != http.StatusConflict {
		t.Errorf("second login on the page: %d, want 409", code)
	}

	var lg api.Session
	if code, msg := h.do("GET", ui.PollURL, nil, &lg); code != http.StatusOK {
		t.Fatalf("poll after login: %d %s", code, msg)
	}
	if lg.User.ID != ada.ID || !strings.HasPrefix(lg.Token, "fm2_") || !strings.HasPrefix(lg.Secret, "cvs1_") {
		t.Errorf("session = %+v", lg)
	}
	var who api.WhoAmI
	if code, _ := h.do("GET", "/aaa/v1/whoami", nil, &who, bearer(lg.Secret)...); code != http.StatusOK || who.Session.ID != lg.SessionID {
		t.Errorf("whoami with the web session: %d %+v", code, who)
	}
	// The session works for discharges like any other.
	header, err := h.client(lg.Secret).FetchDischarges(t.Context(), lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := h.verify(header)
	if uid, _, _ := loginAttestation(t, cs); uid != ada.ID {
		t.Errorf("attested %d", uid)
	}

	// Collected once.
	if code, msg := h.do("GET", ui.PollURL, nil, nil); code != http.StatusNotFound || msg != "not found" {
		t.Errorf("second collection: %d %q", code, msg)
	}
	if code, _ := getPage(t, ui.UserURL); code != http.StatusNotFound {
		t.Errorf("page after collection: %d", code)
	}
}

// A client polling while the user logs in gets 202s, then the session
// once.
func TestWebLoginPolledMeanwhile(t *testing.T) {
	h := newHarness(t, nil)
	ada := h.signup("ada@example.com", "correct horse", "").User
	ui := h.startWebLogin()
	type result struct {
		code int
		lg   api.Session
	}
	done := make(chan result)
	go func() {
		for {
			var lg api.Session
			resp := h.request("GET", ui.PollURL, nil)
			code := resp.StatusCode
			if code != http.StatusAccepted {
				json.NewDecoder(resp.Body).Decode(&lg)
			}
			resp.Body.Close()
			if code != http.StatusAccepted {
				done <- result{code, lg}
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(10 * time.Millisecond) // let it poll a few times
	if code, _ := formLogin(t, ui.UserURL, "ada@example.com", "correct horse"); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	r := <-done
	if r.code != http.StatusOK || r.lg.User.ID != ada.ID || r.lg.Secret == "" {
		t.Errorf("poll: %d %+v", r.code, r.lg)
	}
	if code, _ := h.do("GET", ui.PollURL, nil, nil); code != http.StatusNotFound {
		t.Errorf("after collection: %d", code)
	}
}

func TestWebLoginExpires(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.FlowTTL = time.Minute })
	h.signup("ada@example.com", "correct horse", "")
	ui := h.startWebLogin()
	h.clk.Advance(time.Minute)
	if code, body := formLogin(t, ui.UserURL, "ada@example.com", "correct horse"); code != http.StatusNotFound || !strings.Contains(body, "expired") {
		t.Errorf("login on an expired flow: %d\n%s", code, body)
	}
	if code, _ := h.do("GET", ui.PollURL, nil, nil); code != http.StatusNotFound {
		t.Errorf("poll of an expired flow: %d", code)
	}

	// Completed but not collected in time: gone too, and no session made.
	ui = h.startWebLogin()
	formLogin(t, ui.UserURL, "ada@example.com", "correct horse")
	h.clk.Advance(time.Minute)
	if code, _ := h.do("GET", ui.PollURL, nil, nil); code != http.StatusNotFound {
		t.Errorf("poll of an expired completed flow: %d", code)
	}
}

// TestWebFlowsAreBounded: a full store refuses new flows with a 429
// saying when the oldest expires, and never drops a live one; expired
// flows make room.
func TestWebFlowsAreBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxFlows = 3; c.FlowTTL = time.Minute })
	ctx := context.Background()
	poll0, user0, err := h.svc.startWeb(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(10 * time.Second)
	for range 2 {
		if _, _, err := h.svc.startWeb(ctx, "b"); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		_, _, err := h.svc.startWeb(ctx, "c")
		var lim *limitedError
		if !errors.As(err, &lim) || lim.retryAfter() != "50" || !strings.Contains(err.Error(), "maximum of 3 pending browser logins") {
			t.Fatalf("start on a full store: %v, want a refusal to retry in 50 s", err)
		}
	}
	if _, err := h.svc.web.WebLoginByUserKey(ctx, hashSecret(labelWebUser, user0), h.clk.Now()); err != nil {
		t.Errorf("the oldest flow was evicted: %v", err)
	}
	if _, err := h.svc.web.CollectWebLogin(ctx, hashSecret(labelWebPoll, poll0), h.clk.Now()); err != nil {
		t.Errorf("the oldest flow no longer polls: %v", err)
	}
	// Expired flows make room.
	h.clk.Advance(time.Minute)
	if _, _, err := h.svc.startWeb(ctx, "d"); err != nil {
		t.Fatal(err)
	}
}

func TestLoginPagesRateLimited(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AccountLimit = RateLimit{Burst: 1, Every: time.Minute} })
	h.signup("ada@example.com", "correct horse", "")
	ui := h.startWebLogin()
	formLogin(t, ui.UserURL, "ada@example.com", "wrong password")
	resp, err := http.PostForm(ui.UserURL, url.Values{"email": {"ada@example.com"}, "password": {"correct horse"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := h.do("GET", ui.PollURL, nil, nil); code != http.StatusAccepted {
		t.Errorf("poll: %d, want still pending", code)
	}
}

func TestLoginPageEscapes(t *testing.T) {
	h := newHarness(t, nil)
	ui := h.startWebLogin()
	evil := `"><script>alert(1)</script>@example.com`
	code, body := formLogin(t, ui.UserURL, evil, "whatever password")
	if code != http.StatusUnauthorized {
		t.Errorf("login: %d", code)
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the email is not escaped:\n%s", body)
	}
}

func TestLoginPageForms(t *testing.T) {
	h := newHarness(t, nil)
	ui := h.startWebLogin()
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"empty", "", http.StatusBadRequest},
		{"no password", "email=ada%40example.com", http.StatusBadRequest},
		{"bad encoding", "email=%zz", http.StatusBadRequest},
		{"oversized", "email=" + strings.Repeat("a", 20<<10), http.StatusRequestEntityTooLarge},
	} {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", ui.UserURL, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
}
