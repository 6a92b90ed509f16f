package securitytest

// A role is read on every request: the authority reads a session's (or a
// named token's creator's) membership once per request and keeps it only
// for that request (authority/memberships.go, middleware.RequestScoper),
// so a demotion or a removal committed through one replica is obeyed by
// the very next request to another — by the authority's own endpoints,
// by the judging endpoints, and by the Machines API — with no settle
// window.

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
)

// status sends a request with an Authorization header and returns the
// status and the body, whatever its shape (the Machines API answers
// arrays).
func (s *testServer) status(method, path, header string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestRoleChangeReachesNextRequest(t *testing.T) {
	a := startServer(t, serverOptions{})
	b := startServer(t, serverOptions{replicaOf: a})
	ctx := context.Background()
	a.signup("ada@example.com", "ada's long password", "acme")
	a.signup("bob@example.com", "bob's long password", "bob-org")
	ada := a.login("ada@example.com", "ada's long password")
	bob := a.login("bob@example.com", "bob's long password")
	if _, err := ada.api.CreateApp(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	inv, err := ada.api.Invite(ctx, "acme", client.InviteRequest{Email: "bob@example.com", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	org, err := bob.api.AcceptInvitation(ctx, inv.Code)
	if err != nil {
		t.Fatal(err)
	}
	// Bob's org token, minted on replica B while he is an admin: it
	// carries no AllowedRoles, so only his current role keeps it from the
	// keys.
	code, out := b.do("POST", "/v1/tokens", bob.bundle, map[string]any{"profile": authority.ProfileOrg, "org": "acme", "expiry": "24h"})
	if code != http.StatusCreated {
		t.Fatalf("bob mints an org token on replica B: %d %v", code, out)
	}
	bobToken := out["token"].(string)

	type answers struct{ keys, judgedByName, tokenKeys, machines int }
	ask := func() answers {
		t.Helper()
		var got answers
		got.keys, _ = b.status("GET", "/v1/orgs/acme/keys", bob.bundle)
		got.judgedByName, _ = b.post("/v1/tokens/authorize", map[string]any{"header": bob.bundle,
			"access": map[string]any{"org_slug": "acme", "org_feature": authority.FeatureKeys, "action": "r"}})
		got.tokenKeys, _ = b.post("/v1/tokens/authorize", map[string]any{"header": bobToken,
			"access": map[string]any{"orgid": org.ID, "feature": authority.FeatureKeys, "action": "r"}})
		got.machines, _ = b.status("GET", "/v1/apps/web/machines", bob.bundle)
		return got
	}
	expect := func(when string, want answers) {
		t.Helper()
		// Twice: the second request is served from what replica B cached
		// of the first (the verified bundles), and must still read the
		// role afresh.
		for i := range 2 {
			if got := ask(); got != want {
				t.Fatalf("%s, request %d to replica B: keys, authorize by name (session), authorize (token), machines = %+v, want %+v",
					when, i+1, got, want)
			}
		}
	}
	expect("bob an admin", answers{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusOK})

	if _, err := ada.api.SetRole(ctx, "acme", "bob@example.com", "member"); err != nil {
		t.Fatal(err)
	}
	expect("bob demoted on replica A", answers{http.StatusForbidden, http.StatusForbidden, http.StatusForbidden, http.StatusOK})

	if _, err := ada.api.SetRole(ctx, "acme", "bob@example.com", "admin"); err != nil {
		t.Fatal(err)
	}
	expect("bob an admin again", answers{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusOK})

	if _, err := ada.api.RemoveMember(ctx, "acme", "bob@example.com", false); err != nil {
		t.Fatal(err)
	}
	// The removal revoked his token too; until replica B reads that in
	// the feed, his role (none) refuses it.
	got := ask()
	if got.keys != http.StatusNotFound || got.judgedByName != http.StatusNotFound || got.machines != http.StatusNotFound ||
		(got.tokenKeys != http.StatusForbidden && got.tokenKeys != http.StatusUnauthorized) {
		t.Fatalf("bob removed on replica A: keys, authorize by name (session), authorize (token), machines = %+v, want 404, 404, 403 or 401, 404", got)
	}
	a.clock.Advance(2 * authority.DefaultRevocationSettle)
	if code, body := b.post("/v1/tokens/authorize", map[string]any{"header": bobToken,
		"access": map[string]any{"orgid": org.ID, "action": "r"}}); code != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Fatalf("the token of a removed member, past the settle window: %d %s, want 401 revoked", code, body)
	}
}
