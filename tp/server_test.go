package tp_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/tp"
)

// TestServerRejects sends the server every kind of bad request: each gets a
// 4xx with a JSON {"error"} naming the problem, and Decide is never called.
func TestServerRejects(t *testing.T) {
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		t.Error("Decide called for a bad request")
		return tp.Refuse(403, "no"), nil
	})
	m := mint(t, d)
	good := d.ticket(t, m)

	// A ticket sealed for another third party.
	other := caveat.NewEncryptionKey()
	m2 := mint(t)
	if err := m2.Add3P(other, d.loc, &auth.ConfineUser{ID: 1}); err != nil {
		t.Fatal(err)
	}
	foreign := caveat.EncodeTicket(m2.ThirdPartyTickets()[0].Ticket)

	initURL := tp.InitURL(d.loc)
	pollURL := initURL + "/poll/" + strings.Repeat("ab", 16)
	for _, tc := range []struct {
		name, method, url, ctype, body string
		status                         int
		want                           string
	}{
		{"get on init", "GET", initURL, "", "", 405, "use POST"},
		{"put on init", "PUT", initURL, "application/json", initBody(good), 405, "use POST"},
		{"post on poll", "POST", pollURL, "application/json", "{}", 405, "use GET"},
		{"delete on poll", "DELETE", pollURL, "", "", 405, "use GET"},
		{"other path", "POST", d.loc + "/elsewhere", "application/json", initBody(good), 404, "not found"},
		{"empty body", "POST", initURL, "application/json", "", 400, "empty"},
		{"garbage", "POST", initURL, "application/json", "ticket please", 400, "invalid JSON"},
		{"truncated", "POST", initURL, "application/json", `{"ticket": "`, 400, "invalid JSON"},
		{"array", "POST", initURL, "application/json", `["` + good + `"]`, 400, "invalid JSON"},
		{"two values", "POST", initURL, "application/json", initBody(good) + "{}", 400, "after the value"},
		{"unknown field", "POST", initURL, "application/json", `{"ticket": "` + good + `", "tikcet": 1}`, 400, `unknown field "tikcet"`},
		{"ticket as bytes array", "POST", initURL, "application/json", `{"ticket": [1, 2]}`, 400, `"ticket"`},
		{"missing ticket", "POST", initURL, "application/json", `{}`, 400, `missing "ticket"`},
		{"ticket not base64", "POST", initURL, "application/json", initBody("not base64!"), 400, "base64"},
		{"ticket unpadded", "POST", initURL, "application/json", initBody(strings.TrimRight(good, "=") + "A"), 400, "base64"},
		{"ticket damaged", "POST", initURL, "application/json", initBody("AAAA" + good[4:]), 400, "does not decrypt"},
		{"ticket short", "POST", initURL, "application/json", initBody("AAAA"), 400, "does not decrypt"},
		{"foreign ticket", "POST", initURL, "application/json", initBody(foreign), 400, "does not decrypt"},
		{"binding not base64", "POST", initURL, "application/json", `{"ticket": "` + good + `", "parent_binding": "%%"}`, 400, "parent_binding"},
		{"binding too short", "POST", initURL, "application/json", `{"ticket": "` + good + `", "parent_binding": "AAAA"}`, 400, "16 to 32 bytes"},
		{"binding too long", "POST", initURL, "application/json", `{"ticket": "` + good + `", "parent_binding": "` + b64(make([]byte, 33)) + `"}`, 400, "16 to 32 bytes"},
		{"form post", "POST", initURL, "application/x-www-form-urlencoded", "ticket=" + good, 415, "application/json"},
		{"text post", "POST", initURL, "text/plain", initBody(good), 415, "application/json"},
		{"oversized", "POST", initURL, "application/json", `{"ticket": "` + strings.Repeat("A", tp.MaxRequestBody) + `"}`, 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, tc.method, tc.url, tc.ctype, tc.body)
			msg, _ := a.body["error"].(string)
			if a.status != tc.status || !strings.Contains(msg, tc.want) {
				t.Fatalf("answer %d %s, want %d with %q", a.status, a.raw, tc.status, tc.want)
			}
			if a.contentType != "application/json" || len(a.body) != 1 {
				t.Fatalf("answer %q %s, want a JSON object with only \"error\"", a.contentType, a.raw)
			}
			if tc.status == 405 {
				if a := do(t, tc.method, tc.url, tc.ctype, tc.body); a.status != 405 {
					t.Fatal("405 not repeatable")
				}
			}
		})
	}
	// A request without a content type is accepted (it reaches Decide).
	called := false
	d2 := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		called = true
		return tp.Refuse(451, ""), nil
	})
	a := do(t, "POST", tp.InitURL(d2.loc), "", initBody(d2.ticket(t, mint(t, d2))))
	if !called || a.status != 451 || a.body["error"] != "unavailable for legal reasons" {
		t.Fatalf("answer %d %s (Decide called: %v)", a.status, a.raw, called)
	}
}

func TestAllowHeader(t *testing.T) {
	d := newDischarger(t, "aaa", immediate(t))
	for _, tc := range []struct{ method, url, allow string }{
		{"GET", tp.InitURL(d.loc), "POST"},
		{"POST", tp.InitURL(d.loc) + "/poll/" + strings.Repeat("0", 32), "GET"},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tc.method, tc.url, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
	}
}

func TestRefuseStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		msg    string
		want   int
	}{{401, "log in", 401}, {200, "x", 403}, {302, "x", 403}, {0, "", 403}, {429, "slow down", 429}} {
		d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
			return tp.Refuse(tc.status, tc.msg), nil
		})
		a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d))))
		if msg, _ := a.body["error"].(string); a.status != tc.want || msg == "" || tc.msg != "" && msg != tc.msg {
			t.Errorf("Refuse(%d, %q) answered %d %s", tc.status, tc.msg, a.status, a.raw)
		}
	}
}

// TestThrottle: the application's rate limit answers 429 with
// Retry-After in whole seconds, rounded up.
func TestThrottle(t *testing.T) {
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		return tp.Throttle(1500*time.Millisecond, "slow down"), nil
	})
	a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d))))
	if a.status != 429 || a.header.Get("Retry-After") != "2" || a.body["error"] != "slow down" {
		t.Errorf("Throttle answered %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
}

// TestServerStoreFull: when the store has no room, an init request that
// would start a flow gets 429 with Retry-After, and the pending flows are
// still there; immediate discharges need no room and still work.
func TestServerStoreFull(t *testing.T) {
	clk := newClock()
	var immediately atomic.Bool
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		if !immediately.Load() {
			return tp.UserInteractive(), nil
		}
		return tp.Discharge(user42()), nil
	}, func(c *tp.Config) { c.Now = clk.Now; c.FlowTTL = time.Minute; c.Store = tp.NewMemoryStore(2, clk.Now) })
	var polls []string
	for range 2 {
		a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d))))
		ui, _ := a.body["user_interactive"].(map[string]any)
		if a.status != 201 || ui == nil {
			t.Fatalf("init: %d %s", a.status, a.raw)
		}
		polls = append(polls, ui["poll_url"].(string))
		clk.Advance(10 * time.Second)
	}
	a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d))))
	msg, _ := a.body["error"].(string)
	if a.status != 429 || a.header.Get("Retry-After") != "40" || !strings.Contains(msg, "maximum of 2 pending flows") {
		t.Errorf("init on a full store: %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.raw)
	}
	for _, u := range polls {
		if a := do(t, "GET", u, "", ""); a.status != 202 {
			t.Errorf("a pending flow after the refusal: %d %s", a.status, a.raw)
		}
	}
	immediately.Store(true)
	if a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d)))); a.status != 201 || a.body["discharge"] == nil {
		t.Errorf("immediate discharge with a full store: %d %s", a.status, a.raw)
	}
}

func TestNewServerConfig(t *testing.T) {
	decide := immediate(t)
	key := []caveat.EncryptionKey{caveat.NewEncryptionKey()}
	for _, tc := range []struct {
		name string
		cfg  tp.Config
		ok   bool
	}{
		{"ok", tp.Config{Location: "https://auth.example/aaa/v1", Keys: key, Decide: decide}, true},
		{"path user prefix", tp.Config{Location: "https://auth.example", Keys: key, Decide: decide, UserURLPrefix: "/login/"}, true},
		{"not a URL", tp.Config{Location: "auth.example", Keys: key, Decide: decide}, false},
		{"ftp", tp.Config{Location: "ftp://auth.example", Keys: key, Decide: decide}, false},
		{"query", tp.Config{Location: "https://auth.example/?x=1", Keys: key, Decide: decide}, false},
		{"no keys", tp.Config{Location: "https://auth.example", Decide: decide}, false},
		{"no decide", tp.Config{Location: "https://auth.example", Keys: key}, false},
		{"relative user prefix", tp.Config{Location: "https://auth.example", Keys: key, Decide: decide, UserURLPrefix: "login/"}, false},
	} {
		_, err := tp.NewServer(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestUserURLPrefixPath: a path prefix becomes an absolute user URL on the
// location's host.
func TestUserURLPrefixPath(t *testing.T) {
	d := newDischarger(t, "aaa", func(context.Context, *tp.Request) (tp.Decision, error) {
		return tp.UserInteractive(), nil
	}, func(c *tp.Config) { c.UserURLPrefix = "/aaa/v1/sign-in?flow=" })
	a := do(t, "POST", tp.InitURL(d.loc), "application/json", initBody(d.ticket(t, mint(t, d))))
	ui, _ := a.body["user_interactive"].(map[string]any)
	u, _ := ui["user_url"].(string)
	if a.status != 201 || !strings.HasPrefix(u, d.ts.URL+"/aaa/v1/sign-in?flow=") || len(u) != len(d.ts.URL+"/aaa/v1/sign-in?flow=")+32 {
		t.Fatalf("answer %d %s", a.status, a.raw)
	}
	if p, _ := ui["poll_url"].(string); !pollURLRE.MatchString(p) {
		t.Fatalf("poll URL %q", p)
	}
}

// TestKeyRotation: tickets sealed under an older key still open.
func TestKeyRotation(t *testing.T) {
	old := caveat.NewEncryptionKey()
	d := newDischarger(t, "aaa", immediate(t), func(c *tp.Config) {
		c.Keys = []caveat.EncryptionKey{caveat.NewEncryptionKey(), old}
	})
	d.key = old
	m := mint(t, d)
	out, err := (&tp.Client{}).FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out, d)
}

// TestValidity: Config.Validity puts a ValidityWindow into every discharge,
// from the server's clock.
func TestValidity(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	d := newDischarger(t, "aaa", immediate(t), func(c *tp.Config) {
		c.Validity = 10 * time.Minute
		c.Now = func() time.Time { return now }
	})
	m := mint(t, d)
	out, err := (&tp.Client{}).FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	dis := newDischarges(t, m, out)[0]
	at, _, ok := dis.Expiry()
	if !ok || !at.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("discharge expires %v (%v), want %v", at, ok, now.Add(10*time.Minute))
	}
	mustVerify(t, out, d)
	var vw *caveat.ValidityWindow
	for _, c := range dis.Caveats {
		if c.Type == caveat.TypeValidityWindow {
			v, err := c.Decode()
			if err != nil {
				t.Fatal(err)
			}
			vw = v.(*caveat.ValidityWindow)
		}
	}
	// A first party whose clock is 30 s behind accepts it, and the window
	// does not reach back further than a few minutes.
	if vw == nil || vw.NotBefore > now.Add(-30*time.Second).Unix() || vw.NotBefore < now.Add(-5*time.Minute).Unix() {
		t.Fatalf("discharge window %+v, now %d", vw, now.Unix())
	}
}
