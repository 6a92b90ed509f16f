package authority

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/testenv"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// faultyStore is a replica's view of a shared database whose revocation
// feed, and then whose registry, can fail, as when PostgreSQL stops.
type faultyStore struct {
	*sqlite.DB
	feedDown     atomic.Bool // RevocationsSince and RevocationCursor fail
	registryDown atomic.Bool // GetToken and GetSession fail
	feedReads    atomic.Int64
	feedFailures atomic.Int64
	registryRead atomic.Int64
}

var errDown = errors.New("connection refused")

func (f *faultyStore) RevocationsSince(ctx context.Context, after uint64, limit int) ([]store.Revocation, error) {
	if f.feedDown.Load() {
		f.feedFailures.Add(1)
		return nil, errDown
	}
	defer f.feedReads.Add(1)
	return f.DB.RevocationsSince(ctx, after, limit)
}

func (f *faultyStore) RevocationCursor(ctx context.Context) (uint64, error) {
	if f.feedDown.Load() {
		return 0, errDown
	}
	return f.DB.RevocationCursor(ctx)
}

func (f *faultyStore) GetToken(ctx context.Context, id string) (store.Token, error) {
	f.registryRead.Add(1)
	if f.registryDown.Load() {
		return store.Token{}, errDown
	}
	return f.DB.GetToken(ctx, id)
}

func (f *faultyStore) GetSession(ctx context.Context, id string) (store.Session, error) {
	f.registryRead.Add(1)
	if f.registryDown.Load() {
		return store.Session{}, errDown
	}
	return f.DB.GetSession(ctx, id)
}

// TestRevocationFailsClosed is finding 7 of issue 14 on one replica, with
// its clock and its store's faults injected: a token revoked through
// another replica while this one's feed is down is refused once the feed
// is older than the settle window (1 s by default), and while the registry
// is down too, a cached token is answered 503, never allowed.
func TestRevocationFailsClosed(t *testing.T) {
	h := newHarness(t) // replica A: mints and revokes
	u, _ := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	mint := func() (string, string) {
		code, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
		if code != http.StatusCreated {
			t.Fatalf("mint: %d %v", code, out)
		}
		return out["token"].(string), out["id"].(string)
	}
	revokedTok, revokedID := mint()
	keptTok, _ := mint()

	// Replica B, on the same database, follows the feed.
	fs := &faultyStore{DB: h.db}
	clk := fake.NewClock(h.clk.Now())
	b, err := New(Config{Store: fs, Keyring: h.kr, Location: testLocation, LoginLocation: testLogin, Now: clk.Now,
		RevocationPoll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitFor(t, "B has read the feed", func() bool { return fs.feedReads.Load() >= 2 })

	for _, tok := range []string{revokedTok, keptTok, session} {
		if _, err := b.Authenticate(ctx, tok); err != nil {
			t.Fatalf("B refuses a valid bundle: %v", err)
		}
	}
	reads := fs.registryRead.Load()
	if _, err := b.Authenticate(ctx, keptTok); err != nil || fs.registryRead.Load() != reads {
		t.Fatalf("B did not serve a verified token from its cache (%v, %d registry reads)", err, fs.registryRead.Load()-reads)
	}

	// B's feed goes down; then the token is revoked through A.
	fs.feedDown.Store(true)
	failures := fs.feedFailures.Load()
	testenv.WaitFor(t, "B's feed has failed", func() bool { return fs.feedFailures.Load() > failures })
	if code, out := h.do("DELETE", "/v1/tokens/"+revokedID, session, nil); code != http.StatusOK {
		t.Fatalf("revoke through A: %d %v", code, out)
	}
	// Within the settle window B still serves its cache.
	clk.Advance(500 * time.Millisecond)
	reads = fs.registryRead.Load()
	if _, err := b.Authenticate(ctx, keptTok); err != nil || fs.registryRead.Load() != reads {
		t.Fatalf("within the settle window, B did not serve its cache (%v)", err)
	}

	// Past it, B checks afresh and sees the revocation.
	clk.Advance(500 * time.Millisecond)
	if p, err := b.Authenticate(ctx, revokedTok); err == nil {
		t.Fatalf("B allowed token %s, revoked a second ago while its feed was down", p.TokenID())
	} else if status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token, feed down: %v, want 401 revoked", err)
	}

	// The registry goes down too: nothing can be checked, so nothing is
	// allowed; the revoked token's refusal is final and remembered.
	fs.registryDown.Store(true)
	for name, tok := range map[string]string{"named token": keptTok, "session": session} {
		if _, err := b.Authenticate(ctx, tok); status(err) != http.StatusServiceUnavailable {
			t.Errorf("%s, feed and registry down: %v, want a 503", name, err)
		}
	}
	if _, err := b.Authenticate(ctx, revokedTok); status(err) != http.StatusUnauthorized {
		t.Errorf("revoked token, feed and registry down: %v, want its remembered 401", err)
	}
	mux := http.NewServeMux()
	b.Register(mux)
	srv := httptest.NewServer(httpjson.Routes(mux))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/orgs", nil)
	req.Header.Set("Authorization", keptTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Error, "retry") {
		t.Errorf("GET /v1/orgs through B, everything down: %d %q, want 503 with a JSON error", resp.StatusCode, body.Error)
	}

	// The database is back: B confirms its feed and serves its cache again.
	fs.feedDown.Store(false)
	fs.registryDown.Store(false)
	confirmed := fs.feedReads.Load()
	testenv.WaitFor(t, "B has read the feed again", func() bool { return fs.feedReads.Load() >= confirmed+2 })
	if _, err := b.Authenticate(ctx, keptTok); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	reads = fs.registryRead.Load()
	if _, err := b.Authenticate(ctx, keptTok); err != nil || fs.registryRead.Load() != reads {
		t.Fatalf("after the outage, B did not serve its cache again (%v)", err)
	}
}

func status(err error) int {
	s, _, _ := httpjson.StatusOf(err)
	return s
}
