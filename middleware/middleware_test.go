package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/server"
)

type world struct {
	srv          *server.Server
	admin        *client.Client // logged in
	session      string         // the session bundle
	deploy       string         // a deploy token for app "web"
	deployID     string
	feed         string // a readonly token for Remote's revocation feed
	orgID, appID uint64
	otherApp     uint64
}

// setup starts a server, signs up and logs in, and creates two apps and a
// deploy token for the first.
func setup(t *testing.T) *world {
	t.Helper()
	s, err := server.New(context.Background(), server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Signup: true,
		Argon2: identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	anon := client.New(s.URL(), nil)
	if _, err := anon.Signup(ctx, "ada@example.com", "correct horse battery", "acme"); err != nil {
		t.Fatal(err)
	}
	sess, err := anon.Login(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tr := client.NewTransport(s.URL(), "FlyV1 "+sess.Token, sess.Secret)
	bundle, err := tr.Renew(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{srv: s, session: bundle, admin: client.New(s.URL(), &http.Client{Transport: tr})}
	web, err := w.admin.CreateApp(ctx, "acme", "web")
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.admin.CreateApp(ctx, "acme", "other")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := w.admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "deploy", Org: "acme", App: "web", Expiry: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	w.deploy, w.deployID, w.orgID, w.appID, w.otherApp = tok.Header, tok.ID, web.OrgID, web.ID, other.ID
	feed, err := w.admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "revocation-feed"})
	if err != nil {
		t.Fatal(err)
	}
	w.feed = feed.Header
	return w
}

func (w *world) access(app uint64, machine, action string) *flyio.Access {
	return &flyio.Access{OrgID: flyio.Ptr(w.orgID), AppID: flyio.Ptr(app), Machine: flyio.Ptr(machine), Action: resset.ParseAction(action)}
}

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

func authenticators(t *testing.T, w *world) (map[string]middleware.Authenticator, *middleware.Remote, *counting) {
	cnt := &counting{}
	remote := middleware.NewRemote(middleware.RemoteConfig{URL: w.srv.URL(), FeedToken: w.feed, HTTP: &http.Client{Transport: cnt}})
	return map[string]middleware.Authenticator{"remote": remote, "local": w.srv.LocalAuthenticator()}, remote, cnt
}

func TestAuthenticators(t *testing.T) {
	w := setup(t)
	auths, _, _ := authenticators(t, w)
	ctx := context.Background()
	b, _ := caveat.ParseBundle(w.deploy)
	if err := b.Tokens[0].Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead | resset.ActionControl}}); err != nil {
		t.Fatal(err)
	}
	narrow := b.Header()
	for name, auth := range auths {
		t.Run(name, func(t *testing.T) {
			p, err := auth.Authenticate(ctx, narrow)
			if err != nil {
				t.Fatal(err)
			}
			if p.TokenID() != w.deployID || p.OrgID() != w.orgID {
				t.Errorf("principal %s %d", p.TokenID(), p.OrgID())
			}
			if err := p.Allow(ctx, w.access(w.appID, "m1", "C")); err != nil {
				t.Errorf("start: %v", err)
			}
			err = p.Allow(ctx, w.access(w.appID, "m1", "d"))
			if status(err) != 403 || !strings.Contains(err.Error(), "(Machines)") || !strings.Contains(err.Error(), "permitted: rC") {
				t.Errorf("destroy: %v", err)
			}
			if err := p.Allow(ctx, w.access(w.otherApp, "m1", "r")); status(err) != 403 || !strings.Contains(err.Error(), "(Apps)") {
				t.Errorf("other app: %v", err)
			}
			other := &flyio.Access{OrgID: flyio.Ptr(w.orgID + 100), Action: resset.ActionRead}
			if err := p.Allow(ctx, other); status(err) != 403 {
				t.Errorf("other org: %v", err)
			}
			for _, bad := range []string{"", "FlyV1 fm2_AAAA", w.deploy[:len(w.deploy)-8]} {
				if _, err := auth.Authenticate(ctx, bad); status(err) != 401 {
					t.Errorf("bad bundle %q: %v", bad, err)
				}
			}
			// A session: the user is admin of the org.
			sp, err := auth.Authenticate(ctx, w.session)
			if err != nil {
				t.Fatal(err)
			}
			if sp.OrgID() != 0 || sp.UserID() == 0 {
				t.Errorf("session principal org %d user %d", sp.OrgID(), sp.UserID())
			}
			if err := sp.Allow(ctx, w.access(w.otherApp, "m9", "rwcdC")); err != nil {
				t.Errorf("admin session: %v", err)
			}
			if err := sp.Allow(ctx, &flyio.Access{OrgID: flyio.Ptr(w.orgID + 100)}); status(err) != 403 {
				t.Errorf("session, another org: %v", err)
			}
		})
	}
}

func TestRemoteCacheAndRevocation(t *testing.T) {
	w := setup(t)
	cnt := &counting{}
	// A clock that stands still: the cache is served only while the feed
	// was confirmed current within the settle window.
	now := time.Now()
	remote := middleware.NewRemote(middleware.RemoteConfig{URL: w.srv.URL(), FeedToken: w.feed, HTTP: &http.Client{Transport: cnt},
		Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := remote.Authenticate(ctx, w.deploy); err != nil {
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
	if _, err := w.admin.RevokeToken(ctx, w.deployID); err != nil {
		t.Fatal(err)
	}
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if remote.Len() != 0 {
		t.Fatal("the revoked token is still cached")
	}
	if _, err := remote.Authenticate(ctx, w.deploy); status(err) != 401 || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestRemoteRunEvictsWithinAPoll(t *testing.T) {
	w := setup(t)
	remote := middleware.NewRemote(middleware.RemoteConfig{URL: w.srv.URL(), FeedToken: w.feed, PollInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go remote.Run(ctx)
	if _, err := remote.Authenticate(ctx, w.deploy); err != nil {
		t.Fatal(err)
	}
	if _, err := w.admin.RevokeToken(ctx, w.deployID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := remote.Authenticate(ctx, w.deploy)
		if status(err) == 401 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation not seen after 5 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRequire(t *testing.T) {
	w := setup(t)
	auth := w.srv.LocalAuthenticator()
	h := middleware.Require(auth, func(r *http.Request) (*flyio.Access, error) {
		if r.URL.Query().Get("bad") != "" {
			return nil, errors.New("bad machine id")
		}
		app := w.appID
		if r.URL.Query().Get("other") != "" {
			app = w.otherApp
		}
		return w.access(app, r.URL.Query().Get("m"), r.URL.Query().Get("a")), nil
	}, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p := middleware.FromContext(r.Context())
		httpjson.Write(rw, 200, map[string]string{"token": p.TokenID()})
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		query, header string
		status        int
		want          string
	}{
		{"?m=m1&a=r", w.deploy, 200, w.deployID},
		{"?m=m1&a=r", "", 401, "no token"},
		{"?m=m1&a=r", "Bearer fm2_garbage", 401, "malformed"},
		{"?m=m1&a=r&bad=1", w.deploy, 400, "bad machine id"},
		{"?m=m1&a=r&other=1", w.deploy, 403, "caveat 1 (Apps): unauthorized for resource"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.query, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]string
		if json.Unmarshal(body, &m) != nil || resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s", tc.query, resp.StatusCode, body)
		}
	}
}
