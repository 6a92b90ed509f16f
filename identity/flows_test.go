package identity

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/tp"
)

// decodeJSON decodes a response's JSON body into v.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// ticketOf returns the login ticket of a token minted by h.mint, encoded
// as an init request carries it.
func ticketOf(t *testing.T, token string) string {
	t.Helper()
	m, err := caveat.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	tickets := m.ThirdPartyTickets()
	if len(tickets) != 1 {
		t.Fatalf("%d tickets, want 1", len(tickets))
	}
	return caveat.EncodeTicket(tickets[0].Ticket)
}

// initFlow posts a discharge request without a credential, as a client
// that lets the user log in in the browser does, from the client address
// xff (TrustProxy must be on for it to count) or the test's own.
func (h *harness) initFlow(ticket, xff string) (resp *http.Response, ui api.UserInteractive, msg string) {
	h.t.Helper()
	var out struct {
		UserInteractive api.UserInteractive `json:"user_interactive"`
		Error           string              `json:"error"`
	}
	var header []string
	if xff != "" {
		header = []string{"X-Forwarded-For", xff}
	}
	resp = h.request("POST", "/aaa/v1"+tp.InitPath, map[string]string{"ticket": ticket}, header...)
	defer resp.Body.Close()
	if err := decodeJSON(resp, &out); err != nil {
		h.t.Fatalf("init: %d, body not JSON: %v", resp.StatusCode, err)
	}
	return resp, out.UserInteractive, out.Error
}

// wantThrottled checks a 429 with a Retry-After of whole seconds within
// (0, max] and a JSON error that says so.
func wantThrottled(t *testing.T, what string, resp *http.Response, msg string, max time.Duration) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: %d %q, want 429", what, resp.StatusCode, msg)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > max {
		t.Errorf("%s: Retry-After %q, want whole seconds from 1 to %s", what, resp.Header.Get("Retry-After"), max)
	}
	if !strings.Contains(msg, "try again in") {
		t.Errorf("%s: error %q does not say when to try again", what, msg)
	}
}

// TestDischargeFlowsSurviveAFlood is the reproduction: an
// attacker who starts browser-login flows as fast as the server lets them
// must not push out a victim's pending flow. The store is full after
// MaxFlows; later requests are refused with 429 until flows expire, and
// the victim's login page still works.
func TestDischargeFlowsSurviveAFlood(t *testing.T) {
	const max = 20
	h := newHarness(t, func(c *Config) { c.MaxFlows = max; c.FlowTTL = time.Minute; c.TrustProxy = true })
	h.signup("ada@example.com", "correct horse", "")
	resp, victim, msg := h.initFlow(ticketOf(t, h.mint()), "192.0.2.1")
	if resp.StatusCode != http.StatusCreated || victim.UserURL == "" {
		t.Fatalf("victim's flow: %d %q", resp.StatusCode, msg)
	}
	h.clk.Advance(time.Second)

	// The attacker holds many tickets (one per session, say) and many
	// addresses, so that neither the per-ticket bound nor the address
	// limit is what stops them here.
	var refused int
	for i := range max + 30 {
		resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "198.51.100."+strconv.Itoa(i%250))
		switch resp.StatusCode {
		case http.StatusCreated:
		case http.StatusTooManyRequests:
			wantThrottled(t, "flood", resp, msg, time.Minute)
			refused++
		default:
			t.Fatalf("flood request %d: %d %q", i, resp.StatusCode, msg)
		}
	}
	if refused < 30 {
		t.Errorf("%d flood requests refused, want at least 30 (the store holds %d)", refused, max)
	}
	if code, body := getPage(t, victim.UserURL); code != http.StatusOK || !strings.Contains(body, "<form") {
		t.Fatalf("the victim's login page after the flood: %d, want 200\n%s", code, body)
	}
	if code, msg := h.do("GET", victim.PollURL, nil, nil); code != http.StatusAccepted {
		t.Fatalf("the victim's poll after the flood: %d %q, want 202", code, msg)
	}

	// Once the flows expire there is room again.
	h.clk.Advance(time.Minute)
	if resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "203.0.113.1"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the flows expired: %d %q", resp.StatusCode, msg)
	}
}

// TestDischargeFlowsPerTicket: one ticket opens at most
// tp.DefaultMaxFlowsPerTicket pending flows; the next is refused until
// one of them is collected or expires, and other tickets are unaffected.
func TestDischargeFlowsPerTicket(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.FlowTTL = time.Minute; c.TrustProxy = true })
	h.signup("ada@example.com", "correct horse", "")
	ticket := ticketOf(t, h.mint())
	var flows []api.UserInteractive
	for i := range tp.DefaultMaxFlowsPerTicket {
		resp, ui, msg := h.initFlow(ticket, "192.0.2."+strconv.Itoa(i))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("flow %d of one ticket: %d %q", i, resp.StatusCode, msg)
		}
		flows = append(flows, ui)
		h.clk.Advance(time.Second)
	}
	resp, _, msg := h.initFlow(ticket, "198.51.100.1")
	wantThrottled(t, "one flow too many for a ticket", resp, msg, time.Minute)
	if !strings.Contains(msg, "ticket") {
		t.Errorf("refusal %q does not say it is the ticket's bound", msg)
	}
	if resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "198.51.100.1"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another ticket: %d %q", resp.StatusCode, msg)
	}
	// Every flow of the ticket still works.
	for i, ui := range flows {
		if code, _ := getPage(t, ui.UserURL); code != http.StatusOK {
			t.Fatalf("flow %d's page: %d", i, code)
		}
	}
	// Finishing and collecting one makes room for another.
	if code, _ := formLogin(t, flows[0].UserURL, "ada@example.com", "correct horse"); code != http.StatusOK {
		t.Fatalf("login on flow 0: %d", code)
	}
	if code, msg := h.do("GET", flows[0].PollURL, nil, nil); code != http.StatusOK {
		t.Fatalf("collect flow 0: %d %q", code, msg)
	}
	if resp, _, msg := h.initFlow(ticket, "198.51.100.2"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after a collection: %d %q", resp.StatusCode, msg)
	}
}

// TestDischargeFlowsRateLimitedPerAddress: starting a flow takes from the
// same per-address bucket as logins and signups.
func TestDischargeFlowsRateLimitedPerAddress(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.AddressLimit = RateLimit{Burst: 3, Every: 10 * time.Second}
		c.TrustProxy = true
	})
	// A failed login from the address takes one attempt.
	resp := h.request("POST", "/aaa/v1/sessions", api.LoginRequest{Email: "x@example.com", Password: "wrong password"}, "X-Forwarded-For", "192.0.2.1")
	resp.Body.Close()
	for i := range 2 {
		if resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "192.0.2.1"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("flow %d: %d %q", i, resp.StatusCode, msg)
		}
	}
	resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "192.0.2.1")
	wantThrottled(t, "over the address limit", resp, msg, 10*time.Second)
	if resp.Header.Get("Retry-After") != "10" {
		t.Errorf("Retry-After %q, want 10", resp.Header.Get("Retry-After"))
	}
	// The address's logins are limited too now: one bucket.
	resp = h.request("POST", "/aaa/v1/sessions", api.LoginRequest{Email: "x@example.com", Password: "wrong password"}, "X-Forwarded-For", "192.0.2.1")
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("login after the flows: %d, want 429", resp.StatusCode)
	}
	// Another address is not limited.
	if resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "192.0.2.2"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another address: %d %q", resp.StatusCode, msg)
	}
	h.clk.Advance(10 * time.Second)
	if resp, _, msg := h.initFlow(ticketOf(t, h.mint()), "192.0.2.1"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the wait: %d %q", resp.StatusCode, msg)
	}
}

// TestWebLoginsSurviveAFlood: the browser logins of `caveat auth login
// --web` are never pushed out either; a full store answers 429.
func TestWebLoginsSurviveAFlood(t *testing.T) {
	const max = 20
	h := newHarness(t, func(c *Config) { c.MaxFlows = max; c.FlowTTL = time.Minute; c.TrustProxy = true })
	h.signup("ada@example.com", "correct horse", "")
	victim := h.startWebLogin()
	h.clk.Advance(time.Second)
	var refused int
	for i := range max + 30 {
		resp := h.request("POST", "/aaa/v1/sessions/web", nil, "X-Forwarded-For", "198.51.100."+strconv.Itoa(i%250))
		var out struct{ Error string }
		decodeJSON(resp, &out)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
		case http.StatusTooManyRequests:
			wantThrottled(t, "web flood", resp, out.Error, time.Minute)
			refused++
		default:
			t.Fatalf("web flood request %d: %d %q", i, resp.StatusCode, out.Error)
		}
	}
	if refused < 30 {
		t.Errorf("%d flood requests refused, want at least 30", refused)
	}
	if code, _ := getPage(t, victim.UserURL); code != http.StatusOK {
		t.Fatalf("the victim's page after the flood: %d, want 200", code)
	}
	if code, _ := formLogin(t, victim.UserURL, "ada@example.com", "correct horse"); code != http.StatusOK {
		t.Fatalf("the victim's login after the flood: %d", code)
	}
	if code, msg := h.do("GET", victim.PollURL, nil, nil); code != http.StatusOK {
		t.Fatalf("the victim's poll after the flood: %d %q", code, msg)
	}
	h.clk.Advance(time.Minute)
	h.startWebLogin() // room again once they expired
}
