package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/internal/testenv"
	"github.com/caveatdev/caveat/middleware"
)

// faultyAuthority is a proxy to the authority whose revocation feed, and
// then whose authenticate endpoint, can fail, as when the service cannot
// reach it.
type faultyAuthority struct {
	*httptest.Server
	feedDown, authDown atomic.Bool
	// feedReads counts the feed requests that arrived while the feed was
	// up. Remote reads the feed one request at a time, so when request n+1
	// arrives, Remote has applied the answer to request n (evicted what it
	// named, confirmed the feed if it was the end): a count taken when a
	// request is answered would run ahead of Remote.
	feedReads, feedFails   atomic.Int64
	authenticateCalls      atomic.Int64
	feedWithoutCredentials atomic.Int64
	proxy                  *httputil.ReverseProxy
}

func newFaultyAuthority(t *testing.T, target string) *faultyAuthority {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyAuthority{proxy: httputil.NewSingleHostReverseProxy(u)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/tokens/revocations":
			if r.Header.Get("Authorization") == "" {
				f.feedWithoutCredentials.Add(1)
			}
			if f.feedDown.Load() {
				f.feedFails.Add(1)
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
			f.feedReads.Add(1)
		case "/v1/tokens/authenticate":
			f.authenticateCalls.Add(1)
			if f.authDown.Load() {
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
		}
		f.proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// TestRemoteFailsClosed is finding 7 of issue 14 for Remote (then middleware.Remote),
// with its clock and the authority's faults injected: a token revoked
// while Remote cannot read the revocation feed is refused once the feed is
// older than the settle window (1 s by default); while the authority
// cannot be reached at all, a cached token is answered 503, never allowed.
func TestRemoteFailsClosed(t *testing.T) {
	w := servertest.Start(t)
	ctx := context.Background()
	keep, err := w.Admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	fa := newFaultyAuthority(t, w.Srv.URL())
	clk := fake.NewClock(time.Now())
	remote := client.NewRemote(client.RemoteConfig{URL: fa.URL, FeedToken: w.Feed, Now: clk.Now,
		PollInterval: 5 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { remote.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.WaitFor(t, "Remote has read the feed", func() bool { return fa.feedReads.Load() >= 3 })
	if n := fa.feedWithoutCredentials.Load(); n != 0 {
		t.Errorf("Remote read the feed %d times without its feed token", n)
	}

	for _, h := range []string{w.Deploy, keep.Header, w.Session} {
		if _, err := remote.Principal(ctx, h); err != nil {
			t.Fatalf("Remote refuses a valid bundle: %v", err)
		}
	}
	calls := fa.authenticateCalls.Load()
	if _, err := remote.Principal(ctx, keep.Header); err != nil || fa.authenticateCalls.Load() != calls {
		t.Fatalf("Remote did not serve a verified token from its cache (%v)", err)
	}

	// The feed fails; then the deploy token is revoked.
	fa.feedDown.Store(true)
	fails := fa.feedFails.Load()
	testenv.WaitFor(t, "Remote's feed has failed", func() bool { return fa.feedFails.Load() > fails })
	if _, err := w.Admin.RevokeToken(ctx, w.DeployID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(500 * time.Millisecond)
	calls = fa.authenticateCalls.Load()
	if _, err := remote.Principal(ctx, keep.Header); err != nil || fa.authenticateCalls.Load() != calls {
		t.Fatalf("within the settle window, Remote did not serve its cache (%v)", err)
	}

	// Past the window, Remote asks the authority, which knows.
	clk.Advance(500 * time.Millisecond)
	if p, err := remote.Principal(ctx, w.Deploy); err == nil {
		t.Fatalf("Remote allowed token %s, revoked a second ago while its feed was down", p.TokenID())
	} else if status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token, feed down: %v, want 401 revoked", err)
	}

	// The authority is unreachable: nothing is allowed, and Require
	// answers 503 with a JSON error.
	fa.authDown.Store(true)
	for name, h := range map[string]string{"named token": keep.Header, "session": w.Session} {
		if _, err := remote.Principal(ctx, h); err == nil || status(err) != 0 {
			t.Errorf("%s, authority unreachable: %v, want an error that is not a client's", name, err)
		}
	}
	srv := httptest.NewServer(middleware.Require(remote, func(*http.Request) (*flyio.Access, error) {
		return w.Access(w.AppID, "m1", "r"), nil
	}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("a request was served while nothing could be checked")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", keep.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error == "" {
		t.Errorf("Require, authority unreachable: %d %q, want 503 with a JSON error", resp.StatusCode, body.Error)
	}

	// The authority is back: the cache is served again.
	fa.feedDown.Store(false)
	fa.authDown.Store(false)
	reads := fa.feedReads.Load()
	// Two answers applied after the outage (the revocation of the deploy
	// token, then the feed's end): the third request proves it.
	testenv.WaitFor(t, "Remote has read the feed again", func() bool { return fa.feedReads.Load() >= reads+3 })
	if _, err := remote.Principal(ctx, keep.Header); err != nil {
		t.Fatal(err)
	}
	calls = fa.authenticateCalls.Load()
	if _, err := remote.Principal(ctx, keep.Header); err != nil || fa.authenticateCalls.Load() != calls {
		t.Fatalf("after the outage, Remote did not serve its cache again (%v)", err)
	}
}

// TestRemoteFeedToken: without a feed token, or with one the authority
// refuses, Remote cannot follow the feed, says so, and serves nothing from
// its cache.
func TestRemoteFeedToken(t *testing.T) {
	w := servertest.Start(t)
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }

	none := client.NewRemote(client.RemoteConfig{URL: w.Srv.URL(), Now: clock})
	if err := none.Run(ctx); err == nil || !strings.Contains(err.Error(), "FeedToken") {
		t.Errorf("Run without a feed token: %v", err)
	}
	if err := none.Poll(ctx); err == nil {
		t.Error("Poll without a feed token succeeded")
	}

	feed, err := w.Admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "feed"})
	if err != nil {
		t.Fatal(err)
	}
	fa := newFaultyAuthority(t, w.Srv.URL())
	rm := client.NewRemote(client.RemoteConfig{URL: fa.URL, FeedToken: feed.Header, Now: clock})
	if err := rm.Poll(ctx); err != nil {
		t.Fatalf("Poll with a valid feed token: %v", err)
	}
	if _, err := w.Admin.RevokeToken(ctx, feed.ID); err != nil {
		t.Fatal(err)
	}
	if err := rm.Poll(ctx); status(err) != http.StatusUnauthorized {
		t.Fatalf("Poll with a revoked feed token: %v, want the authority's 401", err)
	}
	// The feed was confirmed by the first Poll: let the window pass.
	now = now.Add(client.DefaultSettleWindow)
	for range 3 {
		if _, err := rm.Principal(ctx, w.Deploy); err != nil {
			t.Fatal(err)
		}
	}
	if n := fa.authenticateCalls.Load(); n != 3 {
		t.Errorf("with its feed token refused, Remote served from its cache: %d authenticate calls for 3 requests", n)
	}
}

// TestRemoteByteBound: Remote's cache counts what each verified bundle
// holds and stays within RemoteConfig.CacheBytes, however many entries
// CacheSize would allow.
func TestRemoteByteBound(t *testing.T) {
	w := servertest.Start(t)
	ctx := context.Background()
	now := time.Now()
	const bound = 32 << 10
	rm := client.NewRemote(client.RemoteConfig{URL: w.Srv.URL(), FeedToken: w.Feed, CacheBytes: bound,
		Now: func() time.Time { return now }})
	if err := rm.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<10)
	for i := range 40 {
		b, err := caveat.ParseBundle(w.Deploy)
		if err != nil {
			t.Fatal(err)
		}
		body := msgpack.AppendBin(nil, append(big, byte(i)))
		if err := b.Tokens[0].AddRaw(caveat.RawCaveat{Type: caveat.CaveatType(1 << 40), Body: body}); err != nil {
			t.Fatal(err)
		}
		if _, err := rm.Principal(ctx, b.Header()); err != nil {
			t.Fatal(err)
		}
		if rm.Bytes() > bound {
			t.Fatalf("after %d bundles Remote's cache counts %d bytes, over its bound of %d", i+1, rm.Bytes(), bound)
		}
	}
	if n := rm.Len(); n == 0 || n >= 40 || rm.Bytes() < int64(n)*2<<10 {
		t.Errorf("%d entries, %d bytes: want some but not all of 40 entries of more than 2 KiB each", n, rm.Bytes())
	}
}
