package client

// Unit tests of the discharge-renewing Transport, on a fake clock
// (testing/synctest: time moves only when every goroutine waits, so a
// discharge's ten minutes pass at once) and a fake network: the login
// service and the API are one in-memory RoundTripper.

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
)

const (
	fakeBase  = "https://caveat.test"
	fakeLogin = fakeBase + "/aaa/v1"
)

// fakeServer is the authority's API and its login discharger, without a
// network. Discharges last dischargeTTL; the API answers 200 to a bundle
// that verifies and is unexpired, 401 otherwise.
type fakeServer struct {
	t            *testing.T
	key          caveat.SigningKey
	ticketKey    caveat.EncryptionKey
	dischargeTTL time.Duration

	mu         sync.Mutex
	discharges int      // discharges issued
	down       bool     // the discharger fails
	refuseNext bool     // the API refuses the next request once, as after a server-side change
	bodies     []string // request bodies the API received
	secrets    []string // Authorization of discharge requests
}

func newFakeServer(t *testing.T) *fakeServer {
	return &fakeServer{t: t, key: caveat.NewSigningKey(), ticketKey: caveat.NewEncryptionKey(), dischargeTTL: 10 * time.Minute}
}

// session mints a session-like token: a permission token with the login
// third-party caveat, and no discharge.
func (s *fakeServer) session() string {
	s.t.Helper()
	m, err := caveat.Mint(s.key, caveat.NewNonce([]byte{1}, false), fakeBase+"/v1", caveat.NewValidityWindow(time.Now(), 30*24*time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := m.Add3P(s.ticketKey, fakeLogin, &auth.ConfineUser{ID: 7}); err != nil {
		s.t.Fatal(err)
	}
	return "FlyV1 " + m.String()
}

func (s *fakeServer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.URL.Path == "/aaa/v1/.well-known/macfly/3p" {
		return s.discharge(req, body), nil
	}
	s.bodies = append(s.bodies, string(body))
	if s.refuseNext {
		s.refuseNext = false
		return answer(http.StatusUnauthorized, `{"error":"discharge refused here"}`), nil
	}
	b, err := caveat.ParseBundle(req.Header.Get("Authorization"))
	if err != nil {
		return answer(http.StatusUnauthorized, `{"error":"malformed"}`), nil
	}
	trusted := caveat.TrustedThirdParties{fakeLogin: {s.ticketKey}}
	if _, err := b.Verify(fakeBase+"/v1", caveat.StaticKey(s.key), trusted); err != nil {
		return answer(http.StatusUnauthorized, `{"error":"invalid"}`), nil
	}
	for i := range b.Tokens {
		if e := b.Expiry(i); !e.Never() && time.Now().After(e.At) {
			return answer(http.StatusUnauthorized, `{"error":"expired"}`), nil
		}
	}
	return answer(http.StatusOK, `{}`), nil
}

func (s *fakeServer) discharge(req *http.Request, body []byte) *http.Response {
	s.secrets = append(s.secrets, req.Header.Get("Authorization"))
	if s.down {
		return answer(http.StatusServiceUnavailable, `{"error":"down"}`)
	}
	var in struct {
		Ticket        string `json:"ticket"`
		ParentBinding string `json:"parent_binding"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return answer(http.StatusBadRequest, `{"error":"bad body"}`)
	}
	raw, _ := base64.StdEncoding.DecodeString(in.Ticket)
	tk, err := caveat.OpenTicket(s.ticketKey, raw)
	if err != nil {
		return answer(http.StatusBadRequest, `{"error":"bad ticket"}`)
	}
	uid := auth.FlyioUserID(7)
	d, err := tk.Discharge(fakeLogin, caveat.NewValidityWindow(time.Now(), s.dischargeTTL), &uid)
	if err != nil {
		s.t.Error(err)
		return answer(http.StatusInternalServerError, `{"error":"internal"}`)
	}
	if in.ParentBinding != "" {
		binding, _ := base64.StdEncoding.DecodeString(in.ParentBinding)
		b := caveat.BindToParentToken(binding)
		if err := d.AddRaw(caveat.Encode(&b)); err != nil {
			s.t.Error(err)
		}
	}
	s.discharges++
	return answer(http.StatusCreated, `{"discharge":"`+d.String()+`"}`)
}

func answer(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body))}
}

func (s *fakeServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discharges
}

// get sends a GET through the transport and returns the status.
func get(t *testing.T, tr *Transport) int {
	t.Helper()
	req, _ := http.NewRequest("GET", fakeBase+"/v1/orgs", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func newTestTransport(s *fakeServer, bundle, secret string) (*Transport, *[]string) {
	tr := NewTransport(fakeBase, bundle, secret)
	tr.Base = s
	var renewed []string
	tr.OnRenew = func(b string) { renewed = append(renewed, b) }
	return tr, &renewed
}

func TestTransportFetchesAndRenews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer(t)
		tr, renewed := newTestTransport(s, s.session(), "cvs1_secret")

		// The first request fetches the missing discharge, with the secret.
		if code := get(t, tr); code != 200 || s.count() != 1 || len(*renewed) != 1 {
			t.Fatalf("first request: %d, %d discharges, %d renewals", code, s.count(), len(*renewed))
		}
		if s.secrets[0] != "Bearer cvs1_secret" {
			t.Errorf("the discharge request's credential: %q", s.secrets[0])
		}
		// The discharge is bound to the token it was fetched for.
		b, _ := caveat.ParseBundle(tr.Bundle())
		if len(b.Tokens) != 2 {
			t.Fatalf("bundle after the first request has %d tokens", len(b.Tokens))
		}
		bound := false
		for _, c := range b.Tokens[1].Caveats {
			bound = bound || c.Type == caveat.TypeBindToParentToken
		}
		if !bound {
			t.Error("the discharge is not bound to its parent")
		}

		// While it is fresh, no discharge is fetched.
		time.Sleep(5 * time.Minute)
		if code := get(t, tr); code != 200 || s.count() != 1 {
			t.Fatalf("within the discharge's life: %d, %d discharges", code, s.count())
		}
		// Within the margin (a minute, a third of ten minutes being more),
		// it is renewed before the request goes out.
		time.Sleep(4*time.Minute + 30*time.Second)
		if code := get(t, tr); code != 200 || s.count() != 2 || len(*renewed) != 2 {
			t.Fatalf("within the margin: %d, %d discharges, %d renewals", code, s.count(), len(*renewed))
		}
		// Long after, a request still works: renewed again.
		time.Sleep(time.Hour)
		if code := get(t, tr); code != 200 || s.count() != 3 {
			t.Fatalf("an hour later: %d, %d discharges", code, s.count())
		}
	})
}

func TestTransportShortDischarges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Two-second discharges: renewed a third of their life before the
		// end, not a minute before (which would be always).
		s := newFakeServer(t)
		s.dischargeTTL = 3 * time.Second
		tr, _ := newTestTransport(s, s.session(), "cvs1_secret")
		get(t, tr)
		time.Sleep(time.Second)
		if get(t, tr); s.count() != 1 {
			t.Fatalf("a second into a 3 s discharge: %d discharges, want 1", s.count())
		}
		time.Sleep(1500 * time.Millisecond)
		if code := get(t, tr); code != 200 || s.count() != 2 {
			t.Fatalf("2.5 s into a 3 s discharge: %d, %d discharges, want a renewal", code, s.count())
		}
	})
}

func TestTransportRetriesOnceAfter401(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer(t)
		tr, _ := newTestTransport(s, s.session(), "cvs1_secret")
		get(t, tr)
		// The server refuses once (a discharge cut short server-side): the
		// transport renews and sends the request again, body included.
		s.refuseNext = true
		req, _ := http.NewRequest("POST", fakeBase+"/v1/apps", strings.NewReader(`{"app_name":"w"}`))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || s.count() != 2 {
			t.Fatalf("after a 401: %d, %d discharges", resp.StatusCode, s.count())
		}
		if n := len(s.bodies); n < 2 || s.bodies[n-1] != `{"app_name":"w"}` || s.bodies[n-2] != `{"app_name":"w"}` {
			t.Fatalf("the retried request's body: %q", s.bodies)
		}
		// Without a secret there is nothing to renew with: the 401 stands.
		named, _ := newTestTransport(s, tr.Bundle(), "")
		s.refuseNext = true
		if code := get(t, named); code != 401 || s.count() != 2 {
			t.Fatalf("a 401 without a secret: %d, %d discharges", code, s.count())
		}
	})
}

func TestTransportKeepsAValidDischargeWhenTheDischargerIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer(t)
		tr, _ := newTestTransport(s, s.session(), "cvs1_secret")
		get(t, tr)
		s.down = true
		// Within the margin but not expired: the old discharge still works.
		time.Sleep(9*time.Minute + 30*time.Second)
		if code := get(t, tr); code != 200 {
			t.Fatalf("discharger down, discharge valid: %d", code)
		}
		// Expired, and no way to renew: a clear error, no request sent.
		time.Sleep(time.Minute)
		req, _ := http.NewRequest("GET", fakeBase+"/v1/orgs", nil)
		if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "renewing the login discharge") {
			t.Fatalf("discharger down, discharge expired: %v", err)
		}
	})
}

func TestTransportNamedTokenAsIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer(t)
		m, err := caveat.Mint(s.key, caveat.NewNonce([]byte{1}, false), fakeBase+"/v1", caveat.NewValidityWindow(time.Now(), time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		header := "FlyV1 " + m.String()
		tr, renewed := newTestTransport(s, header, "")
		if code := get(t, tr); code != 200 || s.count() != 0 || len(*renewed) != 0 || tr.Bundle() != header {
			t.Fatalf("named token: %d, %d discharges, %d renewals", code, s.count(), len(*renewed))
		}
		// A malformed bundle is an error before anything is sent.
		bad, _ := newTestTransport(s, "FlyV1 fm2_abc", "")
		req, _ := http.NewRequest("GET", fakeBase+"/v1/orgs", nil)
		if _, err := bad.RoundTrip(req); err == nil {
			t.Fatal("a malformed bundle was sent")
		}
	})
}
