package securitytest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
)

// TestCrossOrganization: a token of organization A never authorizes an
// access that names organization B.
//
// On a real server (SQLite), alice administers A and A2 and bob
// administers B; each has apps. The tokens of A are named tokens of every
// mint profile and alice's sessions (a session is not tied to one
// organization: it is its user's memberships that must keep it out of B).
// Each case attenuates one of them with random caveats from the registry,
// which name A, A2, B, the wildcard organization 0 and apps of both, and
// asks the authority about random accesses, each once naming A and once
// naming B: every access naming B must be refused. The accesses naming A
// are the control: some must be allowed, or the test shows nothing.
//
// One case is one attenuated token and 6 accesses (12 requests); the short
// form runs 60 cases.
func TestCrossOrganization(t *testing.T) {
	r := newRand(t)
	s := startServer(t, serverOptions{})
	ctx := context.Background()

	s.signup("alice@a.test", "alice's password", "org-a")
	s.signup("bob@b.test", "bob's password", "org-b")
	alice := s.login("alice@a.test", "alice's password")
	bob := s.login("bob@b.test", "bob's password")
	a2, err := alice.api.CreateOrganization(ctx, "org-a2")
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := alice.api.Organizations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var orgA uint64
	for _, o := range orgs {
		if o.Slug == "org-a" {
			orgA = o.ID
		}
	}
	bOrgs, err := bob.api.Organizations(ctx)
	if err != nil || len(bOrgs) != 1 {
		t.Fatalf("bob's organizations: %v %v", bOrgs, err)
	}
	orgB := bOrgs[0].ID
	if orgA == 0 || orgA == orgB || a2.ID == orgB {
		t.Fatalf("organizations: A %d, A2 %d, B %d", orgA, a2.ID, orgB)
	}

	var apps []uint64
	appsOf := map[string][]client.App{}
	for _, c := range []struct {
		who  *session
		org  string
		name string
	}{{alice, "org-a", "a-web"}, {alice, "org-a", "a-worker"}, {alice, "org-a2", "a2-web"}, {bob, "org-b", "b-web"}, {bob, "org-b", "b-db"}} {
		app, err := c.who.api.CreateApp(ctx, c.org, c.name)
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, app.ID)
		appsOf[c.org] = append(appsOf[c.org], app)
	}
	w := newWorld(s.clock.Now(), []uint64{orgA, a2.ID, orgB, 4242}, apps, []uint64{alice.User.ID, bob.User.ID})

	// The tokens of A: every profile, and alice's sessions.
	type base struct {
		what   string
		header string
	}
	var bases []base
	for _, p := range authority.Profiles {
		req := client.CreateTokenRequest{Profile: p, Org: "org-a", Expiry: "24h"}
		if p == authority.ProfileDeploy || p == authority.ProfileMachineExec {
			req.App = pick(r, appsOf["org-a"]).Name
		}
		if p == authority.ProfileMachineExec && chance(r, 0.5) {
			req.Commands = []client.Command{{Args: pick(r, w.commands), Exact: chance(r, 0.5)}}
		}
		tok, err := alice.api.CreateToken(ctx, req)
		if err != nil {
			t.Fatalf("create %s token: %v", p, err)
		}
		bases = append(bases, base{"named token, profile " + p, tok.Header})
	}
	bases = append(bases, base{"alice's session", alice.bundle},
		base{"alice's second session", s.login("alice@a.test", "alice's password").bundle})

	cases := iterations(t, 60)
	const perCase = 6
	allowedA := 0
	refusedB := map[int]int{}
	failures := 0
	for i := range cases {
		b := bases[i%len(bases)]
		header := attenuated(t, r, w, b.header, s.tokenLocation(), r.IntN(4))
		for range perCase {
			a := randomAccess(r, w, orgA)
			if code, _ := s.authorize(header, a); code == http.StatusOK {
				allowedA++
			}
			aB := withOrg(a, orgB)
			code, body := s.authorize(header, aB)
			if code == http.StatusOK {
				t.Errorf("case %d: %s attenuated to %s is allowed %s in organization B (%d)\n%s",
					i, b.what, describeHeader(t, header, s.tokenLocation()), describeAccess(aB), orgB, body)
				if failures++; failures == 20 {
					t.Fatal("stopping after 20 failures")
				}
				continue
			}
			refusedB[code]++
		}
	}
	t.Logf("%d cases, %d accesses each way: %d naming A allowed; naming B: %d refused with 403, %d with 401, none allowed",
		cases, cases*perCase, allowedA, refusedB[http.StatusForbidden], refusedB[http.StatusUnauthorized])
	if allowedA == 0 {
		t.Error("no access naming A was allowed: the cases test nothing")
	}
}

// TestCrossOrganizationByName: asked by name (Fly's shape of
// POST /v1/tokens/authorize), another organization and its apps are
// unknown to a token of A: 404, with the very answer a name that exists
// nowhere gets, never an allow and never a 403 that would confirm them.
// Accesses naming A are the control.
func TestCrossOrganizationByName(t *testing.T) {
	r := newRand(t)
	s := startServer(t, serverOptions{})
	ctx := context.Background()
	s.signup("alice@a.test", "alice's password", "org-a")
	s.signup("bob@b.test", "bob's password", "org-b")
	alice := s.login("alice@a.test", "alice's password")
	bob := s.login("bob@b.test", "bob's password")
	for _, c := range []struct {
		who       *session
		org, name string
	}{{alice, "org-a", "web"}, {bob, "org-b", "web"}, {bob, "org-b", "db"}} {
		if _, err := c.who.api.CreateApp(ctx, c.org, c.name); err != nil {
			t.Fatal(err)
		}
	}
	bases := []string{alice.bundle}
	for _, p := range authority.Profiles {
		req := client.CreateTokenRequest{Profile: p, Org: "org-a", Expiry: "24h"}
		if p == authority.ProfileDeploy || p == authority.ProfileMachineExec {
			req.App = "web"
		}
		tok, err := alice.api.CreateToken(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, tok.Header)
	}
	w := newWorld(s.clock.Now(), []uint64{1, 2}, nil, nil)
	ask := func(header string, access map[string]any) (int, string) {
		t.Helper()
		code, body := s.post("/v1/tokens/authorize", map[string]any{"header": header, "access": access})
		if code == http.StatusInternalServerError {
			t.Fatalf("authorize by name: %d %s", code, body)
		}
		return code, body
	}
	allowedA := 0
	for i := range iterations(t, 60) {
		header := bases[i%len(bases)]
		if chance(r, 0.5) {
			header = attenuated(t, r, w, header, s.tokenLocation(), 1+r.IntN(2))
		}
		access := map[string]any{"action": randomAction(r).String()}
		switch r.IntN(3) {
		case 0:
			access["app_name"] = pick(r, []string{"web", "db"})
		case 1:
			access["org_feature"] = pick(r, w.features)
		}
		access["org_slug"] = "org-b"
		code, body := ask(header, access)
		access["org_slug"] = "org-nowhere"
		codeNowhere, bodyNowhere := ask(header, access)
		if code == http.StatusUnauthorized && codeNowhere == http.StatusUnauthorized {
			continue // an attenuation that broke the token: nothing to compare
		}
		want := strings.ReplaceAll(bodyNowhere, "org-nowhere", "org-b")
		if code != http.StatusNotFound || body != want {
			t.Fatalf("case %d: a token of A asking by name about B: %d %s; an unknown name gets %d %s", i, code, body, codeNowhere, bodyNowhere)
		}
		access["org_slug"] = "org-a"
		if access["app_name"] == "db" {
			access["app_name"] = "web"
		}
		if code, _ := ask(header, access); code == http.StatusOK {
			allowedA++
		}
	}
	if allowedA == 0 {
		t.Error("no access naming A by name was allowed: the cases test nothing")
	}
}
