package identity

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/auth"
)

// assertAbsent fails when the logs hold any of the secrets.
func assertAbsent(t *testing.T, logs string, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("test bug: %s is empty", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold the %s", what)
		}
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	h := newHarness(t, nil)
	const email, password = "ada.secret@example.com", "correct horse battery"
	h.signup(email, password, "acme")
	h.do("POST", "/aaa/v1/sessions", api.LoginRequest{Email: email, Password: "wrong " + password}, nil)
	lg := h.login(email, password)
	h.do("GET", "/aaa/v1/whoami", nil, nil, bearer(lg.Secret)...)

	// An immediate discharge, and one refused.
	header, err := h.client(lg.Secret).FetchDischarges(t.Context(), lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatal(err)
	}
	discharge := header[strings.LastIndexByte(header, ',')+1:]
	m, _ := caveat.Parse(lg.Token)
	ticket := caveat.EncodeTicket(m.ThirdPartyTickets()[0].Ticket)
	h.client(lg.Secret).FetchDischarges(t.Context(), h.mint(&auth.ConfineUser{ID: 999}), h.tokenLoc)

	// A browser discharge and a CLI browser login.
	c := h.client("")
	var pageURL string
	c.UserURL = func(ctx context.Context, u string) error {
		pageURL = u
		formLogin(t, u, email, password)
		return nil
	}
	browserHeader, err := c.FetchDischarges(t.Context(), lg.Token, h.tokenLoc)
	if err != nil {
		t.Fatal(err)
	}
	ui := h.startWebLogin()
	formLogin(t, ui.UserURL, email, password)
	var web api.Session
	h.do("GET", ui.PollURL, nil, &web)

	h.do("DELETE", "/aaa/v1/sessions/current", nil, nil, bearer(lg.Secret)...)

	logs := h.logs.String()
	for _, event := range []string{`"msg":"signup"`, `"msg":"login"`, `"msg":"login failed"`, `"msg":"discharge issued"`, `"msg":"discharge refused"`, `"msg":"logout"`} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %s event in the logs:\n%s", event, logs)
		}
	}
	assertAbsent(t, logs, map[string]string{
		"password":              password,
		"email":                 email,
		"email's local part":    "ada.secret",
		"session secret":        lg.Secret,
		"session secret's MAC":  lg.Secret[strings.IndexByte(lg.Secret, '.')+1:],
		"session token":         lg.Token[4:40],
		"discharge":             discharge[4:40],
		"browser discharge":     browserHeader[strings.LastIndexByte(browserHeader, ',')+5:][:36],
		"ticket":                ticket[:32],
		"discharge page secret": pageURL[strings.LastIndexByte(pageURL, '/')+1:],
		"web login user secret": ui.UserURL[strings.LastIndexByte(ui.UserURL, '/')+1:],
		"web login poll secret": ui.PollURL[strings.LastIndexByte(ui.PollURL, '/')+1:],
		"web session secret":    web.Secret,
	})
}

// Internal errors are logged with the route's pattern, not the path,
// which may hold a flow's secret, and answered as "internal error".
func TestInternalErrorsLogNoPath(t *testing.T) {
	h := newHarness(t, nil)
	h.signup("ada@example.com", "correct horse", "")
	ui := h.startWebLogin()
	formLogin(t, ui.UserURL, "ada@example.com", "correct horse")
	h.db.Close()
	resp := h.request("GET", ui.PollURL, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || strings.TrimSpace(string(body)) != `{"error":"internal error"}` {
		t.Errorf("poll with the store closed: %d %s", resp.StatusCode, body)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"route":"GET /aaa/v1/sessions/web/poll/{secret}"`) {
		t.Errorf("the internal error is not logged with its route:\n%s", logs)
	}
	assertAbsent(t, logs, map[string]string{
		"poll secret": ui.PollURL[strings.LastIndexByte(ui.PollURL, '/')+1:],
		"user secret": ui.UserURL[strings.LastIndexByte(ui.UserURL, '/')+1:],
	})
}
