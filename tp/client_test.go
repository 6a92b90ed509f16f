package tp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/tp"
)

// TestCredentials: the Authorization value goes to the configured hostname
// (whatever its port and case), on init and poll requests, and to no other
// host. Two loopback servers are reached as a.test and b.test.
func TestCredentials(t *testing.T) {
	flows := make(chan tp.FlowID, 1)
	poll := func(_ context.Context, req *tp.Request) (tp.Decision, error) {
		flows <- req.Flow
		return tp.Poll(), nil
	}
	newHost := func(host string, decide tp.DecideFunc) *discharger {
		d := &discharger{t: t, key: caveat.NewEncryptionKey(), logs: new(fake.Buffer)}
		d.ts = httptest.NewServer(http.HandlerFunc(d.serve))
		t.Cleanup(d.ts.Close)
		_, port, _ := net.SplitHostPort(d.ts.Listener.Addr().String())
		d.setup("http://"+host+":"+port+"/v1", decide)
		return d
	}
	a := newHost("a.test", poll)
	b := newHost("b.test", immediate(t))
	m := mint(t, a, b)

	sl := &noSleep{onWait: func(int) {
		if err := a.srv.Complete(context.Background(), <-flows, user42()); err != nil {
			t.Error(err)
		}
	}}
	c := &tp.Client{
		HTTP:        &http.Client{Transport: hostDialer()},
		Credentials: map[string]string{"A.Test:1234": "Bearer for-a"},
		Sleep:       sl.sleep,
	}
	out, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out, a, b)

	paths, auths := a.seen()
	if len(auths) != 3 { // init, 202, 200
		t.Fatalf("a saw %d requests, want 3: %q", len(auths), paths)
	}
	for i, h := range auths {
		if h != "Bearer for-a" {
			t.Errorf("a's request %d (%s) had Authorization %q", i, paths[i], h)
		}
	}
	_, auths = b.seen()
	if len(auths) != 1 || auths[0] != "" {
		t.Fatalf("b saw Authorization %q, want one request without", auths)
	}
}

// TestCredentialsNotFollowingRedirects: a redirect to another host does not
// carry the credential.
func TestCredentialsNotFollowingRedirects(t *testing.T) {
	var got []string
	var mu sync.Mutex
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{"error": "go away"}`))
	}))
	defer target.Close()
	_, tport, _ := net.SplitHostPort(target.Listener.Addr().String())
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Redirect(w, r, "http://b.test:"+tport+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	_, rport, _ := net.SplitHostPort(redirector.Listener.Addr().String())

	m := mint(t)
	if err := m.Add3P(caveat.NewEncryptionKey(), "http://a.test:"+rport+"/v1"); err != nil {
		t.Fatal(err)
	}
	c := &tp.Client{HTTP: &http.Client{Transport: hostDialer()}, Credentials: map[string]string{"a.test": "Bearer secret"}}
	_, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if !errors.Is(err, tp.ErrRefused) {
		t.Fatalf("error %v, want the target's refusal", err)
	}
	if len(got) != 2 || got[0] != "Bearer secret" || got[1] != "" {
		t.Fatalf("Authorization headers %q, want the redirector only", got)
	}
}

// fakeDischarger is a hand-written third party, for answers tp.Server
// never gives. Its handler gets the opened ticket.
func fakeDischarger(t *testing.T, h func(w http.ResponseWriter, r *http.Request, tk *caveat.Ticket, d *discharger)) *discharger {
	t.Helper()
	d := &discharger{t: t, key: caveat.NewEncryptionKey()}
	d.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.paths = append(d.paths, r.URL.Path)
		d.mu.Unlock()
		var tk *caveat.Ticket
		if r.Method == "POST" {
			var req struct{ Ticket string }
			json.NewDecoder(r.Body).Decode(&req)
			raw, _ := base64.StdEncoding.DecodeString(req.Ticket)
			var err error
			if tk, err = caveat.OpenTicket(d.key, raw); err != nil {
				t.Errorf("fake discharger: %v", err)
			}
		}
		h(w, r, tk, d)
	}))
	t.Cleanup(d.ts.Close)
	d.loc = d.ts.URL + "/aaa/v1"
	return d
}

// dischargeFor builds a discharge for tk, optionally bound.
func dischargeFor(t testing.TB, tk *caveat.Ticket, loc string, binding []byte) string {
	t.Helper()
	dis, err := tk.Discharge(loc, user42())
	if err != nil {
		t.Fatal(err)
	}
	if binding != nil {
		b := caveat.BindToParentToken(binding)
		if err := dis.Add(&b); err != nil {
			t.Fatal(err)
		}
	}
	return dis.String()
}

// TestRelativeURLs: relative poll and user URLs are resolved against the
// init URL.
func TestRelativeURLs(t *testing.T) {
	var tickets sync.Map
	var visited string
	d := fakeDischarger(t, func(w http.ResponseWriter, r *http.Request, tk *caveat.Ticket, d *discharger) {
		switch {
		case r.Method == "POST":
			tickets.Store("t", tk)
			w.Write([]byte(`{"user_interactive": {"user_url": "../../login/abc", "poll_url": "/custom/poll/xyz"}}`))
		case r.URL.Path == "/custom/poll/xyz":
			tk, _ := tickets.Load("t")
			json.NewEncoder(w).Encode(map[string]string{"discharge": dischargeFor(t, tk.(*caveat.Ticket), d.loc, nil)})
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error": "not found"}`))
		}
	})
	m := mint(t)
	if err := m.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	c := &tp.Client{UserURL: func(_ context.Context, u string) error { visited = u; return nil }}
	out, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out)
	if want := d.ts.URL + "/aaa/v1/login/abc"; visited != want {
		t.Fatalf("user URL %q, want %q", visited, want)
	}
	if paths, _ := d.seen(); len(paths) != 2 || paths[1] != "/custom/poll/xyz" {
		t.Fatalf("requests %q", paths)
	}
}

// TestClientRejectsBadAnswers: answers that break the protocol fail with
// ErrProtocol (or ErrRefused), naming the step.
func TestClientRejectsBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		init   string // init answer body; "{discharge}" is replaced by a good discharge
		status int
		poll   string
		pollSt int
		want   error
		step   string
	}{
		{"html", "<html>bad gateway</html>", 502, "", 0, tp.ErrProtocol, "init"},
		{"empty object", "{}", 201, "", 0, tp.ErrProtocol, "init"},
		{"null", "null", 201, "", 0, tp.ErrProtocol, "init"},
		{"empty body", "", 204, "", 0, tp.ErrProtocol, "init"},
		{"wrong types", `{"discharge": 5}`, 201, "", 0, tp.ErrProtocol, "init"},
		{"garbage discharge", `{"discharge": "fm2_AAAA"}`, 201, "", 0, tp.ErrProtocol, "init"},
		{"bare base64 discharge", `{"discharge": "kw=="}`, 201, "", 0, tp.ErrProtocol, "init"},
		{"error with 201", `{"error": "nope", "discharge": "{discharge}"}`, 201, "", 0, tp.ErrRefused, "init"},
		{"ftp poll URL", `{"poll_url": "ftp://x/y"}`, 201, "", 0, tp.ErrProtocol, "init"},
		{"user interactive without poll URL", `{"user_interactive": {"user_url": "https://x/"}}`, 201, "", 0, tp.ErrProtocol, "init"},
		{"javascript user URL", `{"user_interactive": {"user_url": "javascript:alert(1)", "poll_url": "/p"}}`, 201, "", 0, tp.ErrProtocol, "init"},
		{"poll 404", `{"poll_url": "/p"}`, 201, `{"error": "not found"}`, 404, tp.ErrRefused, "poll"},
		{"poll failure", `{"poll_url": "/p"}`, 201, `{"error": "user said no"}`, 200, tp.ErrRefused, "poll"},
		{"poll empty", `{"poll_url": "/p"}`, 201, `{}`, 200, tp.ErrProtocol, "poll"},
		{"poll not JSON", `{"poll_url": "/p"}`, 201, `oops`, 500, tp.ErrProtocol, "poll"},
		{"poll garbage discharge", `{"poll_url": "/p"}`, 201, `{"discharge": "fm2_!!"}`, 200, tp.ErrProtocol, "poll"},
		{"oversized", `{"error": "` + strings.Repeat("x", 2<<20) + `"}`, 400, "", 0, tp.ErrProtocol, "init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := fakeDischarger(t, func(w http.ResponseWriter, r *http.Request, tk *caveat.Ticket, d *discharger) {
				if r.Method == "POST" {
					body := strings.Replace(tc.init, "{discharge}", dischargeFor(t, tk, d.loc, nil), 1)
					w.WriteHeader(tc.status)
					w.Write([]byte(body))
					return
				}
				w.WriteHeader(tc.pollSt)
				w.Write([]byte(tc.poll))
			})
			m := mint(t)
			if err := m.Add3P(d.key, d.loc); err != nil {
				t.Fatal(err)
			}
			c := &tp.Client{UserURL: func(context.Context, string) error { return nil }, Sleep: (&noSleep{}).sleep}
			out, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
			var e *tp.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Step != tc.step || e.Location != d.loc || out != "" {
				t.Fatalf("FetchDischarges: %q, %v; want %v at step %s", out, err, tc.want, tc.step)
			}
		})
	}
}

// TestDischargeForAnotherTicket: a discharge whose KID is not the ticket
// sent is refused.
func TestDischargeForAnotherTicket(t *testing.T) {
	elsewhere := mint(t)
	key := caveat.NewEncryptionKey()
	if err := elsewhere.Add3P(key, "https://x.example"); err != nil {
		t.Fatal(err)
	}
	tk, err := caveat.OpenTicket(key, elsewhere.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	wrong := dischargeFor(t, tk, "https://x.example", nil)
	d := fakeDischarger(t, func(w http.ResponseWriter, r *http.Request, _ *caveat.Ticket, _ *discharger) {
		json.NewEncoder(w).Encode(map[string]string{"discharge": wrong})
	})
	m := mint(t)
	if err := m.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	_, err = (&tp.Client{}).FetchDischarges(context.Background(), m.String(), firstParty)
	if !errors.Is(err, tp.ErrProtocol) || !strings.Contains(err.Error(), "another ticket") {
		t.Fatalf("error %v, want ErrProtocol about another ticket", err)
	}
}

// TestRequireBinding: a third party that ignores parent_binding (as the
// reference server does) is refused only when the client requires binding.
func TestRequireBinding(t *testing.T) {
	d := fakeDischarger(t, func(w http.ResponseWriter, r *http.Request, tk *caveat.Ticket, d *discharger) {
		json.NewEncoder(w).Encode(map[string]string{"discharge": dischargeFor(t, tk, d.loc, nil)})
	})
	m := mint(t)
	if err := m.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	_, err := (&tp.Client{RequireBinding: true}).FetchDischarges(context.Background(), m.String(), firstParty)
	if !errors.Is(err, tp.ErrProtocol) || !strings.Contains(err.Error(), "not bound") {
		t.Fatalf("error %v, want ErrProtocol: not bound", err)
	}
	out, err := (&tp.Client{}).FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, out)
}

// TestParentBindingSent: the init request carries the permission token's
// binding ID, and none for a proof parent (which cannot be bound to).
func TestParentBindingSent(t *testing.T) {
	var got []map[string]string
	var mu sync.Mutex
	d := &discharger{t: t, key: caveat.NewEncryptionKey()}
	d.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got = append(got, body)
		mu.Unlock()
		w.Write([]byte(`{"error": "no"}`))
	}))
	defer d.ts.Close()
	d.loc = d.ts.URL

	m := mint(t)
	if err := m.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	proof, err := caveat.Mint(rootKey, caveat.NewNonce([]byte("kid-p"), true), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    *caveat.Macaroon
		want string
	}{{m, b64(caveat.BindingID(m))}, {proof, ""}} {
		mu.Lock()
		got = nil
		mu.Unlock()
		(&tp.Client{}).FetchDischarges(context.Background(), tc.m.String(), firstParty)
		if len(got) != 1 || got[0]["parent_binding"] != tc.want || got[0]["ticket"] != caveat.EncodeTicket(tc.m.ThirdPartyTickets()[0].Ticket) {
			t.Fatalf("init bodies %v, want binding %q", got, tc.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	c := &tp.Client{}
	for _, h := range []string{"", "FlyV1 ", "Basic xyz", "fm2_!!!"} {
		if _, err := c.FetchDischarges(context.Background(), h, firstParty); err == nil {
			t.Errorf("FetchDischarges(%q) succeeded", h)
		}
	}
	m := mint(t)
	if err := m.Add3P(caveat.NewEncryptionKey(), "not a url"); err != nil {
		t.Fatal(err)
	}
	_, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	var e *tp.Error
	if !errors.As(err, &e) || e.Step != "init" || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("error %v", err)
	}
}

// TestTransportErrorHidesPollURL: a failing poll names the step but not the
// poll URL, which holds the poll secret.
func TestTransportErrorHidesPollURL(t *testing.T) {
	d := fakeDischarger(t, func(w http.ResponseWriter, r *http.Request, _ *caveat.Ticket, _ *discharger) {
		w.Write([]byte(`{"poll_url": "http://127.0.0.1:1/poll/0123456789abcdef0123456789abcdef"}`))
	})
	m := mint(t)
	if err := m.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	_, err := (&tp.Client{}).FetchDischarges(context.Background(), m.String(), firstParty)
	var e *tp.Error
	if !errors.As(err, &e) || e.Step != "poll" || strings.Contains(err.Error(), "0123456789abcdef") {
		t.Fatalf("error %v", err)
	}
}

func TestDefaultSleepBackoff(t *testing.T) {
	// The real sleep honours the interval settings: three polls 1 ms apart
	// doubling to a 2 ms cap take at least 1+2 ms, and far less than the
	// 1+2 s the defaults would take.
	var n atomic.Int32
	d := fakeDischarger(t, func(w http.ResponseWriter, r *http.Request, _ *caveat.Ticket, _ *discharger) {
		if r.Method == "POST" {
			w.Write([]byte(`{"poll_url": "/p"}`))
			return
		}
		if n.Add(1) < 3 {
			w.WriteHeader(202)
			return
		}
		w.Write([]byte(`{"error": "done waiting"}`))
	})
	m := mint(t)
	if err := m.Add3P(d.key, d.loc); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := &tp.Client{PollInterval: time.Millisecond, MaxPollInterval: 2 * time.Millisecond}
	_, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if el := time.Since(start); !errors.Is(err, tp.ErrRefused) || n.Load() != 3 || el < 3*time.Millisecond || el > 2500*time.Millisecond {
		t.Fatalf("%v after %d polls in %v", err, n.Load(), el)
	}
}
