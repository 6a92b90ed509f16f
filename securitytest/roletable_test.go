package securitytest

// The role column of the operation table, row by row: what a member's
// session, an admin's named token (an org token, which carries no
// AllowedRoles) and a member's named token get, against an admin's
// session as the control. TestOperationTable checks the caveats' column
// with an admin's session; this checks who, caveats allowing, may.

import (
	"context"
	"fmt"
	"testing"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

func TestOperationRoles(t *testing.T) {
	s := startServer(t, serverOptions{})
	ctx := context.Background()
	s.signup("ada@example.com", "ada's long password", "acme")
	s.signup("bob@example.com", "bob's long password", "bob-org")
	ada := s.login("ada@example.com", "ada's long password")
	bob := s.login("bob@example.com", "bob's long password")
	for _, name := range []string{"web", "worker"} {
		if _, err := ada.api.CreateApp(ctx, "acme", name); err != nil {
			t.Fatal(err)
		}
	}
	orgs, err := ada.api.Organizations(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("organizations: %v %v", orgs, err)
	}
	acme := orgs[0].ID
	invite := func(who *session, slug, email string) string {
		t.Helper()
		inv, err := who.api.Invite(ctx, slug, client.InviteRequest{Email: email})
		if err != nil {
			t.Fatalf("invite %s to %s: %v", email, slug, err)
		}
		return inv.Code
	}
	if _, err := bob.api.AcceptInvitation(ctx, invite(ada, "acme", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	token := func(who *session, profile, app string) (id, header string) {
		t.Helper()
		tok, err := who.api.CreateToken(ctx, client.CreateTokenRequest{Profile: profile, Org: "acme", App: app, Expiry: "24h"})
		if err != nil {
			t.Fatalf("create %s token: %v", profile, err)
		}
		return tok.ID, tok.Header
	}

	principalSessions := []*session{ada, bob}
	n := 0
	fresh := func(prefix string) string { n++; return fmt.Sprintf("%s-%d", prefix, n) }
	newMember := func() string {
		email := fresh("member") + "@example.com"
		u, err := s.srv.Store().CreateUser(ctx, store.NewUser{Email: email, PasswordHash: "not a real hash", CreatedAt: s.clock.Now()})
		if err == nil {
			err = s.srv.Store().AddMember(ctx, store.Membership{OrgID: acme, UserID: u.ID, Role: store.RoleMember, CreatedAt: s.clock.Now()})
		}
		if err != nil {
			t.Fatal(err)
		}
		return email
	}
	// Keys to retire, one for each principal's attempt, none of which
	// signed the principals' tokens.
	var spare []string
	for range 5 {
		if _, out := s.do("POST", "/v1/orgs/acme/rotate-key", ada.bundle, nil); out["kid"] == nil {
			t.Fatalf("rotate: %v", out)
		}
	}
	_, keys := s.do("GET", "/v1/orgs/acme/keys", ada.bundle, nil)
	for _, k := range keys["keys"].([]any) {
		if k := k.(map[string]any); k["state"] == "rotated" {
			spare = append(spare, k["kid"].(string))
		}
	}
	_, adaOrg := token(ada, authority.ProfileOrg, "")
	_, bobReadonly := token(bob, authority.ProfileReadonly, "")
	// The principals, in the order of the answers below.
	principals := []struct{ what, header string }{
		{"an admin's session", ada.bundle},
		{"a member's session", bob.bundle},
		{"an admin's org token", adaOrg},
		{"a member's readonly token", bobReadonly},
	}
	rotated := func() string {
		if len(spare) == 0 {
			t.Fatal("no rotated key left to retire")
		}
		kid := spare[0]
		spare = spare[1:]
		return kid
	}
	// joinable is an organization of Carol's with an open invitation for
	// who (and one who belongs to, for leaving); a token of acme is given
	// Bob's invitation.
	s.signup("carol@example.com", "carol's long password", "carol-org")
	carol := s.login("carol@example.com", "carol's long password")
	joinable := func(who *session, join bool) (slug, code string) {
		slug = fresh("carol")
		if _, err := carol.api.CreateOrganization(ctx, slug); err != nil {
			t.Fatal(err)
		}
		code = invite(carol, slug, who.User.Email)
		if join {
			if _, err := who.api.AcceptInvitation(ctx, code); err != nil {
				t.Fatal(err)
			}
		}
		return slug, code
	}

	const (
		ok = true
		no = false
	)
	type row struct {
		// do makes the row's request as the principal (index i).
		do func(i int, h string) (int, map[string]any)
		// want: whether each principal is allowed.
		want [4]bool
	}
	rows := map[string]row{
		"list organizations": {func(_ int, h string) (int, map[string]any) { return s.do("GET", "/v1/orgs", h, nil) }, [4]bool{ok, ok, ok, ok}},
		"create organization": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/orgs", h, map[string]any{"slug": fresh("org")})
		}, [4]bool{ok, ok, no, no}},
		"list apps": {func(_ int, h string) (int, map[string]any) { return s.do("GET", "/v1/apps?org_slug=acme", h, nil) }, [4]bool{ok, ok, ok, ok}},
		"create app": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/apps", h, map[string]any{"app_name": fresh("app"), "org_slug": "acme"})
		}, [4]bool{ok, ok, ok, no}},
		"list tokens": {func(_ int, h string) (int, map[string]any) { return s.do("GET", "/v1/tokens?org=acme", h, nil) }, [4]bool{ok, ok, ok, ok}},
		"create token (org, readonly)": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/tokens", h, map[string]any{"profile": "org", "org": "acme", "expiry": "1h"})
		}, [4]bool{ok, no, no, no}},
		"create token (deploy, machine-exec)": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/tokens", h, map[string]any{"profile": "deploy", "org": "acme", "app": "worker", "expiry": "1h"})
		}, [4]bool{ok, ok, no, no}},
		"revoke token by id": {func(_ int, h string) (int, map[string]any) {
			id, _ := token(ada, authority.ProfileReadonly, "")
			return s.do("DELETE", "/v1/tokens/"+id, h, nil)
		}, [4]bool{ok, no, no, no}},
		"revoke a branch": {func(_ int, h string) (int, map[string]any) {
			_, header := token(ada, authority.ProfileReadonly, "")
			branch := attenuateHeader(t, header, &flyio.Organization{ID: 0, Mask: resset.ActionRead})
			return s.do("POST", "/v1/tokens/revoke-branch", h, map[string]any{"token": branch})
		}, [4]bool{ok, no, no, no}},
		"list keys":  {func(_ int, h string) (int, map[string]any) { return s.do("GET", "/v1/orgs/acme/keys", h, nil) }, [4]bool{ok, no, no, no}},
		"rotate key": {func(_ int, h string) (int, map[string]any) { return s.do("POST", "/v1/orgs/acme/rotate-key", h, nil) }, [4]bool{ok, no, no, no}},
		"retire key": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/orgs/acme/retire-key", h, map[string]any{"kid": rotated()})
		}, [4]bool{ok, no, no, no}},
		"list members":     {func(_ int, h string) (int, map[string]any) { return s.do("GET", "/v1/orgs/acme/members", h, nil) }, [4]bool{ok, ok, ok, ok}},
		"list invitations": {func(_ int, h string) (int, map[string]any) { return s.do("GET", "/v1/orgs/acme/invitations", h, nil) }, [4]bool{ok, ok, ok, ok}},
		"invite": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/orgs/acme/invitations", h, map[string]any{"email": fresh("invited") + "@example.com"})
		}, [4]bool{ok, no, no, no}},
		"cancel an invitation": {func(_ int, h string) (int, map[string]any) {
			email := fresh("cancelled") + "@example.com"
			invite(ada, "acme", email)
			return s.do("POST", "/v1/orgs/acme/invitations/cancel", h, map[string]any{"invitation": email})
		}, [4]bool{ok, no, no, no}},
		"change a member's role": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/orgs/acme/members/role", h, map[string]any{"member": newMember(), "role": "admin"})
		}, [4]bool{ok, no, no, no}},
		"remove a member": {func(_ int, h string) (int, map[string]any) {
			return s.do("POST", "/v1/orgs/acme/members/remove", h, map[string]any{"member": newMember()})
		}, [4]bool{ok, no, no, no}},
		// A user's own acts on their own membership of one of Carol's
		// organizations; the tokens, of acme, try to leave acme.
		"leave": {func(i int, h string) (int, map[string]any) {
			slug := "acme"
			if i < 2 {
				slug, _ = joinable(principalSessions[i], true)
			}
			return s.do("POST", "/v1/orgs/"+slug+"/leave", h, nil)
		}, [4]bool{ok, ok, no, no}},
		"accept an invitation": {func(i int, h string) (int, map[string]any) {
			_, code := joinable(principalSessions[min(i, 1)], false)
			return s.do("POST", "/v1/invitations/accept", h, map[string]any{"code": code})
		}, [4]bool{ok, ok, no, no}},
	}
	noAccess := map[string]bool{"revoke the presented token": true, "authenticate": true, "authorize": true, "operation table": true}
	for _, op := range authority.Operations {
		if noAccess[op.Name] {
			continue
		}
		rw, found := rows[op.Name]
		if !found {
			t.Errorf("row %q of the operation table has no check in this test: add one", op.Name)
			continue
		}
		for i, p := range principals {
			code, out := rw.do(i, p.header)
			allowed := code >= 200 && code < 300
			if allowed != rw.want[i] {
				t.Errorf("%s, %s (role %q): %d %v, want allowed %v", op.Name, p.what, op.Role, code, out, rw.want[i])
			}
			if !allowed && code >= 500 {
				t.Errorf("%s, %s: %d %v, want a refusal", op.Name, p.what, code, out)
			}
		}
	}
}
