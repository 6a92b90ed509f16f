package securitytest

// Revocation fails closed: a replica that did not revoke a token, whose
// view of the shared database fails now and then (the revocation feed, the
// registry, or both, as when PostgreSQL stops), never allows a token more
// than the settle window after its revocation. It may refuse anything
// while it cannot check (503), and may allow a live token; it must never
// allow a revoked one late.

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// downStore is the second replica's view of the shared SQLite database,
// whose feed and registry reads can be made to fail.
type downStore struct {
	*sqlite.DB
	feedDown, registryDown atomic.Bool
}

var errDatabaseDown = errors.New("connection refused")

func (d *downStore) RevocationsSince(ctx context.Context, after uint64, limit int) ([]store.Revocation, error) {
	if d.feedDown.Load() {
		return nil, errDatabaseDown
	}
	return d.DB.RevocationsSince(ctx, after, limit)
}

func (d *downStore) RevocationCursor(ctx context.Context) (uint64, error) {
	if d.feedDown.Load() {
		return 0, errDatabaseDown
	}
	return d.DB.RevocationCursor(ctx)
}

func (d *downStore) GetToken(ctx context.Context, id string) (store.Token, error) {
	if d.registryDown.Load() {
		return store.Token{}, errDatabaseDown
	}
	return d.DB.GetToken(ctx, id)
}

func TestRevocationFailsClosedAcrossReplicas(t *testing.T) {
	r := newRand(t)
	la := newLocalAuthority(t)
	ctx := context.Background()
	settle := authority.DefaultRevocationSettle
	ds := &downStore{DB: la.store}
	b, err := authority.New(authority.Config{Store: ds, Keyring: la.keyring, Location: la.location,
		LoginLocation: la.loginLocation, Now: la.clock.Now, RevocationPoll: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	type tok struct {
		id, header string
		revokedAt  time.Time // zero while live
	}
	var toks []*tok
	mint := func() {
		m, err := la.svc.Mint(ctx, la.admin, authority.MintRequest{Profile: authority.ProfileReadonly, OrgID: la.org.ID})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, &tok{id: m.Record.ID, header: "FlyV1 " + m.Token.String()})
	}
	for range 6 {
		mint()
	}
	allowed, refusedLate, unavailable := 0, 0, 0
	for i := range iterations(t, 400) {
		switch n := r.IntN(10); {
		case n < 2: // revoke a live token through the other replica
			live := toks[r.IntN(len(toks))]
			if live.revokedAt.IsZero() {
				if _, err := la.svc.Revoke(ctx, la.admin, live.id); err != nil {
					t.Fatal(err)
				}
				live.revokedAt = la.clock.Now()
			}
		case n < 3:
			ds.feedDown.Store(!ds.feedDown.Load())
		case n < 4:
			ds.registryDown.Store(!ds.registryDown.Load())
		case n < 5:
			mint()
		case n < 7:
			la.clock.Advance(time.Duration(r.Int64N(int64(3 * settle / 2))))
		default:
			time.Sleep(time.Duration(r.IntN(4)) * time.Millisecond) // let B's feed loop run
		}
		tk := toks[r.IntN(len(toks))]
		now := la.clock.Now()
		_, err := b.Authenticate(ctx, tk.header)
		status, _, _ := httpjson.StatusOf(err)
		switch {
		case err == nil:
			if !tk.revokedAt.IsZero() && now.Sub(tk.revokedAt) >= settle {
				t.Fatalf("step %d: replica B allowed token %s, revoked %s earlier (settle window %s; feed down %v, registry down %v)",
					i, tk.id, now.Sub(tk.revokedAt), settle, ds.feedDown.Load(), ds.registryDown.Load())
			}
			allowed++
		case status == http.StatusServiceUnavailable:
			unavailable++
		case status == http.StatusUnauthorized:
			if tk.revokedAt.IsZero() {
				t.Fatalf("step %d: a live token refused as unauthenticated: %v", i, err)
			}
			refusedLate++
		default:
			t.Fatalf("step %d: %v", i, err)
		}
	}
	t.Logf("allowed %d, refused as revoked %d, unavailable (503) %d", allowed, refusedLate, unavailable)
	if allowed == 0 || refusedLate == 0 || unavailable == 0 {
		t.Fatal("the sequence did not reach every outcome: it tested too little")
	}
}

// TestRevocationFeedNeedsAToken: the feed lists every organization's
// revoked token ids, so only a valid token (any kind, any organization)
// reads it; none, garbage, an expired or a revoked token get a 401.
func TestRevocationFeedNeedsAToken(t *testing.T) {
	s := startServer(t, serverOptions{})
	ctx := context.Background()
	s.signup("ada@example.com", "correct horse battery", "acme")
	ada := s.login("ada@example.com", "correct horse battery")
	short, err := ada.api.CreateToken(ctx, client.CreateTokenRequest{Profile: authority.ProfileReadonly, Org: "acme", Expiry: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := ada.api.CreateToken(ctx, client.CreateTokenRequest{Profile: authority.ProfileReadonly, Org: "acme", Expiry: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := s.do("DELETE", "/v1/tokens/"+revoked.ID, ada.bundle, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	if code, out := s.do("GET", "/v1/tokens/revocations", short.Header, nil); code != http.StatusOK || out["revocations"] == nil {
		t.Fatalf("feed with a valid token: %d %v", code, out)
	}
	if code, _ := s.do("GET", "/v1/tokens/revocations", ada.bundle, nil); code != http.StatusOK {
		t.Fatalf("feed with a session: %d", code)
	}
	s.clock.Advance(2 * time.Hour)
	for what, header := range map[string]string{"no token": "", "garbage": "FlyV1 fm2_AAAA", "an expired token": short.Header, "a revoked token": revoked.Header} {
		if code, out := s.do("GET", "/v1/tokens/revocations", header, nil); code != http.StatusUnauthorized {
			t.Errorf("feed with %s: %d %v, want 401", what, code, out)
		}
	}
}
