package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
)

func status(err error) int {
	s, _, _ := httpjson.StatusOf(err)
	return s
}

// counting counts the authenticate requests sent to the authority.
type counting struct{ n atomic.Int64 }

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/tokens/authenticate" {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func authenticators(t *testing.T, w *servertest.World) (map[string]middleware.Authenticator, *client.Remote, *counting) {
	cnt := &counting{}
	remote := client.NewRemote(client.RemoteConfig{URL: w.Srv.URL(), FeedToken: w.Feed, HTTP: &http.Client{Transport: cnt}})
	return map[string]middleware.Authenticator{"remote": remote, "local": w.Srv.LocalAuthenticator()}, remote, cnt
}

func TestAuthenticators(t *testing.T) {
	w := servertest.Start(t)
	auths, _, _ := authenticators(t, w)
	ctx := context.Background()
	b, _ := caveat.ParseBundle(w.Deploy)
	if err := b.Tokens[0].Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead | resset.ActionControl}}); err != nil {
		t.Fatal(err)
	}
	narrow := b.Header()
	for name, auth := range auths {
		t.Run(name, func(t *testing.T) {
			p, err := auth.Principal(ctx, narrow)
			if err != nil {
				t.Fatal(err)
			}
			if p.TokenID() != w.DeployID || p.OrgID() != w.OrgID {
				t.Errorf("principal %s %d", p.TokenID(), p.OrgID())
			}
			if err := p.Allow(ctx, w.Access(w.AppID, "m1", "C")); err != nil {
				t.Errorf("start: %v", err)
			}
			err = p.Allow(ctx, w.Access(w.AppID, "m1", "d"))
			if me := (*middleware.Error)(nil); !errors.As(err, &me) || me.Code != fault.Denied || len(me.Denials) == 0 {
				t.Errorf("destroy: %v, want a *middleware.Error of code Denied with the caveats' denials", err)
			}
			if status(err) != 403 || !strings.Contains(err.Error(), "(Machines)") || !strings.Contains(err.Error(), "permitted: rC") {
				t.Errorf("destroy: %v", err)
			}
			if err := p.Allow(ctx, w.Access(w.OtherApp, "m1", "r")); status(err) != 403 || !strings.Contains(err.Error(), "(Apps)") {
				t.Errorf("other app: %v", err)
			}
			other := &flyio.Access{OrgID: flyio.Ptr(w.OrgID + 100), Action: resset.ActionRead}
			if err := p.Allow(ctx, other); status(err) != 403 {
				t.Errorf("other org: %v", err)
			}
			for _, bad := range []string{"", "FlyV1 fm2_AAAA", w.Deploy[:len(w.Deploy)-8]} {
				_, err := auth.Principal(ctx, bad)
				// As a caller outside the module sees it, too.
				var me *middleware.Error
				if status(err) != 401 || !errors.As(err, &me) || me.Code != fault.Unauthenticated {
					t.Errorf("bad bundle %q: %v", bad, err)
				}
			}
			// A session: the user is admin of the org.
			sp, err := auth.Principal(ctx, w.Session)
			if err != nil {
				t.Fatal(err)
			}
			if sp.OrgID() != 0 || sp.UserID() == 0 {
				t.Errorf("session principal org %d user %d", sp.OrgID(), sp.UserID())
			}
			if err := sp.Allow(ctx, w.Access(w.OtherApp, "m9", "rwcdC")); err != nil {
				t.Errorf("admin session: %v", err)
			}
			if err := sp.Allow(ctx, &flyio.Access{OrgID: flyio.Ptr(w.OrgID + 100)}); status(err) != 403 {
				t.Errorf("session, another org: %v", err)
			}
		})
	}
}

func TestRemoteCacheAndRevocation(t *testing.T) {
	w := servertest.Start(t)
	cnt := &counting{}
	// A clock that stands still: the cache is served only while the feed
	// was confirmed current within the settle window.
	now := time.Now()
	remote := client.NewRemote(client.RemoteConfig{URL: w.Srv.URL(), FeedToken: w.Feed, HTTP: &http.Client{Transport: cnt},
		Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := remote.Principal(ctx, w.Deploy); err != nil {
			t.Fatal(err)
		}
	}
	if n := cnt.n.Load(); n != 1 {
		t.Fatalf("5 authentications made %d calls to the authority, want 1", n)
	}
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if remote.Len() != 1 {
		t.Fatalf("cache holds %d", remote.Len())
	}
	if _, err := w.Admin.RevokeToken(ctx, w.DeployID); err != nil {
		t.Fatal(err)
	}
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if remote.Len() != 0 {
		t.Fatal("the revoked token is still cached")
	}
	if _, err := remote.Principal(ctx, w.Deploy); status(err) != 401 || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestRemoteRunEvictsWithinAPoll(t *testing.T) {
	w := servertest.Start(t)
	remote := client.NewRemote(client.RemoteConfig{URL: w.Srv.URL(), FeedToken: w.Feed, PollInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go remote.Run(ctx)
	if _, err := remote.Principal(ctx, w.Deploy); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Admin.RevokeToken(ctx, w.DeployID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := remote.Principal(ctx, w.Deploy)
		if status(err) == 401 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation not seen after 5 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRemoteBranchRevocation: a branch revocation reaches Remote through
// the same feed as a token's; Remote evicts every cached verification of
// the token, and the authority then refuses the revoked branch and
// accepts its parent.
func TestRemoteBranchRevocation(t *testing.T) {
	w := servertest.Start(t)
	_, remote, cnt := authenticators(t, w)
	ctx := context.Background()
	b, _ := caveat.ParseBundle(w.Deploy)
	if err := b.Tokens[0].Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead}}); err != nil {
		t.Fatal(err)
	}
	child := b.Header()
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{w.Deploy, child} {
		if _, err := remote.Principal(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if remote.Len() != 2 {
		t.Fatalf("cache holds %d bundles, want the parent and the child", remote.Len())
	}
	r, err := w.Admin.RevokeBranch(ctx, child)
	if err != nil || !r.Revoked || r.ID != w.DeployID {
		t.Fatalf("revoke branch: %+v %v", r, err)
	}
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if remote.Len() != 0 {
		t.Fatalf("after the branch's feed entry the cache holds %d bundles of its token, want none", remote.Len())
	}
	calls := cnt.n.Load()
	if _, err := remote.Principal(ctx, child); status(err) != 401 || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked branch: %v", err)
	}
	if _, err := remote.Principal(ctx, w.Deploy); err != nil {
		t.Fatalf("the parent of a revoked branch: %v", err)
	}
	if n := cnt.n.Load() - calls; n != 2 {
		t.Fatalf("%d calls to the authority after the eviction, want 2 (both verified afresh)", n)
	}
}

// TestRemoteRelaysOnlyTheAuthoritysMessages: a 4xx answer that is not the
// authority's JSON error (a proxy's or a firewall's page in front of it)
// is relayed with its status and the status's text, as middleware.Remote
// did before it moved here, never with the page: that text is not the
// authority's to show, and may name the infrastructure or echo the
// request. The authority's own refusals keep their messages.
func TestRemoteRelaysOnlyTheAuthoritysMessages(t *testing.T) {
	var asJSON atomic.Bool
	authority := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asJSON.Load() {
			httpjson.Write(w, http.StatusUnauthorized, map[string]string{"error": "invalid token: the authority says why"})
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("<html><body>Request blocked by waf-7.internal.example (rule 942100)</body></html>"))
	}))
	t.Cleanup(authority.Close)
	remote := client.NewRemote(client.RemoteConfig{URL: authority.URL})
	ctx := context.Background()

	_, err := remote.Principal(ctx, "FlyV1 fm2_AAAA")
	if status(err) != http.StatusForbidden {
		t.Fatalf("a proxy's 403 page: %v (status %d), want the 403 relayed", err, status(err))
	}
	if _, msg, _ := httpjson.StatusOf(err); msg != http.StatusText(http.StatusForbidden) || strings.Contains(err.Error(), "waf-7") {
		t.Errorf("a proxy's 403 page is relayed as %q (%v), want %q and nothing of the page", msg, err, http.StatusText(http.StatusForbidden))
	}

	asJSON.Store(true)
	_, err = remote.Principal(ctx, "FlyV1 fm2_AAAA")
	if _, msg, _ := httpjson.StatusOf(err); status(err) != http.StatusUnauthorized || msg != "invalid token: the authority says why" {
		t.Errorf("the authority's refusal: %v (status %d, message %q)", err, status(err), msg)
	}
}

// TestRemoteKeepsPagesOutOfItsErrors: when the authority cannot be asked
// (a 5xx from a proxy in front of it), Remote's error — which the
// middleware's users log (machines does, as "cannot check the token") —
// says the status, not the answer's text, as middleware.Remote did: a
// proxy or debugging server that echoes the request would otherwise put
// the caller's token, or Remote's feed token, into the logs.
func TestRemoteKeepsPagesOutOfItsErrors(t *testing.T) {
	authority := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "upstream failed for %s %s (Authorization: %s) body: %s", r.Method, r.URL.Path, r.Header.Get("Authorization"), body)
	}))
	t.Cleanup(authority.Close)
	const token, feed = "FlyV1 fm2_callersSecretToken", "FlyV1 fm2_feedSecretToken"
	remote := client.NewRemote(client.RemoteConfig{URL: authority.URL, FeedToken: feed})
	ctx := context.Background()
	_, err := remote.Principal(ctx, token)
	if err == nil || status(err) != 0 {
		t.Fatalf("authenticate through a failing proxy: %v, want a failure to ask (no status)", err)
	}
	if strings.Contains(err.Error(), "SecretToken") || !strings.Contains(err.Error(), "502") {
		t.Errorf("authenticate through a failing proxy: the error is %q; want the status and nothing of the answer", err)
	}
	err = remote.Poll(ctx)
	if err == nil || strings.Contains(err.Error(), "SecretToken") || !strings.Contains(err.Error(), "502") {
		t.Errorf("the feed through a failing proxy: the error is %q; want the status and nothing of the answer", err)
	}
}
