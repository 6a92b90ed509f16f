package tp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
)

// fuzzFixture is a server with one key and a token whose third-party
// caveat it can discharge.
type fuzzFixture struct {
	srv    *Server
	key    caveat.EncryptionKey
	ticket []byte
	loc    string
}

func newFuzzFixture(tb testing.TB) *fuzzFixture {
	tb.Helper()
	fx := &fuzzFixture{key: caveat.EncryptionKey{1, 2, 3}, loc: "https://auth.example/aaa/v1"}
	srv, err := NewServer(Config{
		Location: fx.loc,
		Keys:     []caveat.EncryptionKey{fx.key},
		Decide: func(_ context.Context, r *Request) (Decision, error) {
			// Every kind of decision, chosen by the body's length.
			switch r.HTTP.ContentLength % 4 {
			case 0:
				return Poll(), nil
			case 1:
				return UserInteractive(), nil
			case 2:
				return Refuse(401, "no"), nil
			}
			return Discharge(), nil
		},
		UserURLPrefix: "/aaa/v1/login/",
		Log:           slog.New(slog.DiscardHandler),
		Validity:      time.Minute,
	})
	if err != nil {
		tb.Fatal(err)
	}
	fx.srv = srv
	m, err := caveat.Mint(caveat.SigningKey("root"), caveat.NewNonce([]byte("k"), false), "https://api.example/v1")
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Add3P(fx.key, fx.loc, &caveat.ValidityWindow{NotBefore: 1, NotAfter: 2}); err != nil {
		tb.Fatal(err)
	}
	fx.ticket = m.ThirdPartyTickets()[0].Ticket
	return fx
}

// FuzzServerInit posts arbitrary bodies to the init endpoint. Whatever the
// body, the answer is JSON with exactly one field, never a 5xx, and a
// discharge is for the ticket that was sent.
func FuzzServerInit(f *testing.F) {
	fx := newFuzzFixture(f)
	good := caveat.EncodeTicket(fx.ticket)
	for _, seed := range []string{
		// The same request at four lengths, for the four decisions.
		`{"ticket": "` + good + `"}`,
		`{"ticket": "` + good + `"} `,
		`{"ticket": "` + good + `"}  `,
		`{"ticket": "` + good + `"}   `,
		`{"ticket": "` + good + `", "parent_binding": "AAAAAAAAAAAAAAAAAAAAAA=="}`,
		`{"ticket": "` + good + `", "parent_binding": "AAAA"}`,
		`{"ticket": "` + good[:len(good)-4] + `"}`,
		`{"ticket": "AAAA"}`,
		`{"ticket": ""}`,
		`{"ticket": null}`,
		`{"ticket": 5}`,
		`{"tikcet": "x"}`,
		`{}`,
		`[]`,
		`null`,
		``,
		`{"ticket": "` + good + `"} {}`,
		`{"ticket": "\u0000"}`,
		"\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", fx.loc+InitPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 200 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &fields); err != nil || len(fields) != 1 {
			t.Fatalf("answer %d %s is not a one-field object", rec.Code, rec.Body)
		}
		r, err := decodeResponse(rec.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case rec.Code == http.StatusCreated && r.Discharge != "":
			var in initRequest
			json.Unmarshal(body, &in)
			ticket, _, err := in.decode()
			if err != nil {
				t.Fatalf("discharged a request that does not decode: %v", err)
			}
			if _, err := checkDischarge(r.Discharge, job{ticket: ticket}, false); err != nil {
				t.Fatal(err)
			}
		case rec.Code == http.StatusCreated && (r.PollURL != "" || r.UserInteractive != nil):
		case rec.Code >= 400 && r.Error != "":
		default:
			t.Fatalf("answer %d %s", rec.Code, rec.Body)
		}
	})
}

// fuzzTransport answers the init request with init and every poll with
// poll, and counts the polls.
type fuzzTransport struct {
	init, poll []byte
	status     int
}

func (ft *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, status := ft.init, 201
	if r.Method == http.MethodGet {
		body, status = ft.poll, ft.status
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(body)), Header: http.Header{}, Request: r}, nil
}

// FuzzClientAnswer gives the client arbitrary init and poll answers. It
// must not panic or loop, and whatever it accepts is a discharge of the
// ticket it sent, appended to the bundle.
func FuzzClientAnswer(f *testing.F) {
	fx := newFuzzFixture(f)
	m, err := caveat.Mint(caveat.SigningKey("root"), caveat.NewNonce([]byte("k"), false), "https://api.example/v1")
	if err != nil {
		f.Fatal(err)
	}
	if err := m.Add3P(fx.key, fx.loc); err != nil {
		f.Fatal(err)
	}
	t0, err := caveat.OpenTicket(fx.key, m.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		f.Fatal(err)
	}
	d, _ := t0.Discharge(fx.loc)
	dis := d.String()
	for _, s := range []struct {
		init, poll string
		status     int
	}{
		{`{"discharge": "` + dis + `"}`, ``, 0},
		{`{"poll_url": "/p"}`, `{"discharge": "` + dis + `"}`, 200},
		{`{"poll_url": "https://auth.example/p"}`, `{"error": "not ready"}`, 202},
		{`{"user_interactive": {"user_url": "/u", "poll_url": "/p"}}`, `{"discharge": "` + dis + `"}`, 200},
		{`{"poll_url": "/p"}`, `{"error": "not found"}`, 404},
		{`{"error": "no"}`, ``, 0},
		{`{}`, ``, 0},
		{`{"discharge": "fm2_AAAA"}`, ``, 0},
		{`{"poll_url": ":"}`, ``, 0},
		{`not json`, ``, 0},
	} {
		f.Add([]byte(s.init), []byte(s.poll), s.status)
	}
	header := m.String()
	f.Fuzz(func(t *testing.T, init, poll []byte, status int) {
		if status < 100 || status > 999 {
			status = 200
		}
		sleeps := 0
		c := &Client{
			HTTP:    &http.Client{Transport: &fuzzTransport{init: init, poll: poll, status: status}},
			UserURL: func(context.Context, string) error { return nil },
			Sleep: func(context.Context, time.Duration) error {
				if sleeps++; sleeps > 3 {
					return errors.New("enough")
				}
				return nil
			},
		}
		out, err := c.FetchDischarges(context.Background(), header, "https://api.example/v1")
		if err != nil {
			var e *Error
			if out != "" || !errors.As(err, &e) || e.Location != fx.loc {
				t.Fatalf("%q, %v", out, err)
			}
			return
		}
		got, ok := strings.CutPrefix(out, header+",")
		if !ok {
			t.Fatalf("bundle %q does not extend the input", out)
		}
		dm, err := caveat.Parse(got)
		if err != nil || !bytes.Equal(dm.Nonce.KID, m.ThirdPartyTickets()[0].Ticket) {
			t.Fatalf("accepted %q (%v)", got, err)
		}
	})
}

// FuzzDecodeResponse: decoding an answer never panics, and what decodes
// re-encodes to the same answer.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"error": "not ready"}`,
		`{"discharge": "fm2_AAAA"}`,
		`{"poll_url": "https://x/p"}`,
		`{"user_interactive": {"user_url": "https://x/u", "poll_url": "https://x/p"}}`,
		`{"user_interactive": null, "extra": [1, 2]}`,
		` {"error": "\u00e9"} `,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeResponse(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeResponse(b)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %+v → %s → %+v (%v)", r, b, r2, err)
		}
	})
}
