// Package servertest starts a caveat server with an organization, two
// apps and tokens in it, for the tests of the packages that authenticate
// against one (middleware, client's Remote) and must not each build their
// own.
package servertest

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/server"
)

// World is a running server: organization "acme" with apps "web" and
// "other", whose admin is logged in.
type World struct {
	Srv *server.Server
	// Admin is a client with the admin's session.
	Admin *client.Client
	// Session is the admin's session bundle, discharge included.
	Session string
	// Deploy is a deploy token for app "web", DeployID its id.
	Deploy, DeployID string
	// Feed is a readonly token, for client.Remote's revocation feed.
	Feed                   string
	OrgID, AppID, OtherApp uint64
}

// CheapArgon2 keeps password hashing fast in tests; production uses
// identity.DefaultArgon2Params.
var CheapArgon2 = identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Run starts a server with cfg and runs it until the test ends, failing
// the test if it cannot start or does not stop cleanly. An empty Listen
// is a free port on 127.0.0.1, a zero Argon2 is CheapArgon2 and a nil
// Logger discards, so that callers spell out only what their test is
// about.
func Run(t testing.TB, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Argon2 == (identity.Argon2Params{}) {
		cfg.Argon2 = CheapArgon2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return s
}

// Start starts the server (stopped when the test ends), signs up and logs
// in, and creates the apps and the tokens.
func Start(t testing.TB) *World {
	t.Helper()
	s := Run(t, server.Config{DataDir: t.TempDir(), Signup: true})
	ctx := context.Background()
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
	w := &World{Srv: s, Session: bundle, Admin: client.New(s.URL(), &http.Client{Transport: tr})}
	web, err := w.Admin.CreateApp(ctx, "acme", "web")
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.Admin.CreateApp(ctx, "acme", "other")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := w.Admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "deploy", Org: "acme", App: "web", Expiry: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	w.Deploy, w.DeployID, w.OrgID, w.AppID, w.OtherApp = tok.Header, tok.ID, web.OrgID, web.ID, other.ID
	feed, err := w.Admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "revocation-feed"})
	if err != nil {
		t.Fatal(err)
	}
	w.Feed = feed.Header
	return w
}

// Access is the access to a machine of an app of the organization, with
// an action such as "rC".
func (w *World) Access(app uint64, machine, action string) *flyio.Access {
	return &flyio.Access{OrgID: flyio.Ptr(w.OrgID), AppID: flyio.Ptr(app), Machine: flyio.Ptr(machine), Action: resset.ParseAction(action)}
}
