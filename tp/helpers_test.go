package tp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/tp"
)

// firstParty is the location of the permission tokens in these tests.
const firstParty = "https://api.example.test/v1"

// rootKey signs every permission token in these tests.
var rootKey = caveat.SigningKey(bytes.Repeat([]byte{7}, 32))

// discharger is a tp.Server on a loopback httptest server, at the path
// /<name>/v1, with user pages under /<name>/v1/login/.
type discharger struct {
	t    testing.TB
	ts   *httptest.Server
	loc  string
	key  caveat.EncryptionKey
	srv  *tp.Server
	logs *fake.Buffer

	mu      sync.Mutex
	paths   []string // request paths seen, in order
	auth    []string // Authorization headers seen, in order
	tickets []string // base64 tickets minted for this discharger
	user    http.HandlerFunc
	others  map[string]http.Handler // path prefix → another discharger on this host
}

type option func(*tp.Config)

// newDischarger starts a discharger at /<name>/v1 on a new loopback server.
func newDischarger(t testing.TB, name string, decide tp.DecideFunc, opts ...option) *discharger {
	t.Helper()
	d := &discharger{t: t, key: caveat.NewEncryptionKey(), logs: new(fake.Buffer)}
	d.ts = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.ts.Close)
	d.setup(d.ts.URL+"/"+name+"/v1", decide, opts...)
	return d
}

func (d *discharger) setup(loc string, decide tp.DecideFunc, opts ...option) {
	d.t.Helper()
	d.loc = loc
	cfg := tp.Config{
		Location:      loc,
		Keys:          []caveat.EncryptionKey{d.key},
		Decide:        decide,
		UserURLPrefix: strings.TrimSuffix(loc, "/") + "/login/",
		Log:           slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := tp.NewServer(cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	d.srv = srv
	d.t.Cleanup(d.checkLogs)
}

func (d *discharger) serve(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.paths = append(d.paths, r.URL.Path)
	d.auth = append(d.auth, r.Header.Get("Authorization"))
	user := d.user
	var other http.Handler
	for prefix, h := range d.others {
		if strings.HasPrefix(r.URL.Path, prefix) {
			other = h
		}
	}
	d.mu.Unlock()
	if other != nil {
		other.ServeHTTP(w, r)
		return
	}
	if i := strings.Index(r.URL.Path, "/login/"); i >= 0 && user != nil {
		user(w, r)
		return
	}
	d.srv.ServeHTTP(w, r)
}

// addOnSameHost starts a second discharger at /<name>/v1 on d's host.
func (d *discharger) addOnSameHost(name string, decide tp.DecideFunc) *discharger {
	d.t.Helper()
	o := &discharger{t: d.t, ts: d.ts, key: caveat.NewEncryptionKey(), logs: new(fake.Buffer)}
	o.setup(d.ts.URL+"/"+name+"/v1", decide)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.others == nil {
		d.others = make(map[string]http.Handler)
	}
	d.others["/"+name+"/"] = http.HandlerFunc(o.serve)
	return o
}

func (d *discharger) setUser(h http.HandlerFunc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.user = h
}

func (d *discharger) seen() (paths, auth []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.paths...), append([]string(nil), d.auth...)
}

// checkLogs fails the test if a ticket, a discharge or a poll path was
// logged.
func (d *discharger) checkLogs() {
	logs := d.logs.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.tickets {
		if strings.Contains(logs, t) {
			d.t.Errorf("a ticket was logged: %s", logs)
		}
	}
	for _, bad := range []string{"fm2_", "/poll/"} {
		if strings.Contains(logs, bad) {
			d.t.Errorf("%q was logged: %s", bad, logs)
		}
	}
}

// addCaveat adds a third-party caveat for this discharger to m, with a
// ConfineUser(42) ticket caveat.
func (d *discharger) addCaveat(t testing.TB, m *caveat.Macaroon) {
	t.Helper()
	if err := m.Add3P(d.key, d.loc, &auth.ConfineUser{ID: 42}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range m.ThirdPartyTickets() {
		if tk.Location == d.loc {
			d.mu.Lock()
			d.tickets = append(d.tickets, caveat.EncodeTicket(tk.Ticket))
			d.mu.Unlock()
		}
	}
}

// ticket returns the base64 ticket of this discharger's caveat in m.
func (d *discharger) ticket(t testing.TB, m *caveat.Macaroon) string {
	t.Helper()
	for _, tk := range m.ThirdPartyTickets() {
		if tk.Location == d.loc {
			return caveat.EncodeTicket(tk.Ticket)
		}
	}
	t.Fatalf("no ticket for %s", d.loc)
	return ""
}

// mint returns a permission token for firstParty with a third-party caveat
// for each discharger.
func mint(t testing.TB, ds ...*discharger) *caveat.Macaroon {
	t.Helper()
	m, err := caveat.Mint(rootKey, caveat.NewNonce([]byte("kid-1"), false), firstParty,
		&caveat.ValidityWindow{NotBefore: 0, NotAfter: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		d.addCaveat(t, m)
	}
	return m
}

// trusted maps each discharger's location to its key.
func trusted(ds ...*discharger) caveat.TrustedThirdParties {
	tr := caveat.TrustedThirdParties{}
	for _, d := range ds {
		tr[d.loc] = []caveat.EncryptionKey{d.key}
	}
	return tr
}

// mustVerify verifies header for firstParty and returns the caveats.
func mustVerify(t testing.TB, header string, ds ...*discharger) caveat.CaveatSet {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatalf("parse %q: %v", header, err)
	}
	v, err := b.Verify(firstParty, caveat.StaticKey(rootKey), trusted(ds...))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return v.Caveats
}

// attested returns the FlyioUserID attestations in cs.
func attested(t testing.TB, cs caveat.CaveatSet) []uint64 {
	t.Helper()
	var ids []uint64
	for _, c := range cs {
		if c.Type != auth.TypeFlyioUserID {
			continue
		}
		v, err := c.Decode()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, uint64(*v.(*auth.FlyioUserID)))
	}
	return ids
}

// wantConfineUser fails unless cs is exactly [ConfineUser(42)].
func wantConfineUser(t testing.TB, cs caveat.CaveatSet) {
	t.Helper()
	if len(cs) != 1 || cs[0].Type != auth.TypeConfineUser {
		t.Fatalf("ticket caveats %v, want [ConfineUser]", cs)
	}
	v, err := cs[0].Decode()
	if err != nil || v.(*auth.ConfineUser).ID != 42 {
		t.Fatalf("ticket caveat %v %v, want ConfineUser 42", v, err)
	}
}

// newDischarges returns the tokens of header that are not in before.
func newDischarges(t testing.TB, before *caveat.Macaroon, header string) []*caveat.Macaroon {
	t.Helper()
	var out []*caveat.Macaroon
	for _, s := range strings.Split(caveat.StripScheme(header), ",") {
		if s == before.String() {
			continue
		}
		m, err := caveat.Parse(s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// bindingOf returns the BindToParentToken bytes of d, or nil.
func bindingOf(t testing.TB, d *caveat.Macaroon) []byte {
	t.Helper()
	for _, c := range d.Caveats {
		if c.Type == caveat.TypeBindToParentToken {
			v, err := c.Decode()
			if err != nil {
				t.Fatal(err)
			}
			return []byte(*v.(*caveat.BindToParentToken))
		}
	}
	return nil
}

// noSleep is a Client.Sleep that returns at once, recording the waits.
type noSleep struct {
	mu     sync.Mutex
	waits  []time.Duration
	onWait func(n int)
}

func (s *noSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	n := len(s.waits)
	f := s.onWait
	s.mu.Unlock()
	if f != nil {
		f(n)
	}
	return ctx.Err()
}

// answer is a decoded protocol answer with its status and content type.
type answer struct {
	status      int
	header      http.Header
	contentType string
	body        map[string]any
	raw         string
}

// do sends a raw request to the discharger.
func do(t testing.TB, method, url, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, contentType: resp.Header.Get("Content-Type"), raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s %s: answer %d %q is not a JSON object: %v", method, url, resp.StatusCode, raw, err)
	}
	return a
}

// initBody is an init request for ticket.
func initBody(ticket string) string {
	b, _ := json.Marshal(map[string]string{"ticket": ticket})
	return string(b)
}

// hostDialer returns a transport that dials 127.0.0.1 whatever the host, so
// that tests can use distinct hostnames (a.test, b.test) for loopback
// servers.
func hostDialer() *http.Transport {
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, "127.0.0.1:"+port)
	}}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
