package authority

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// plainUser creates a user who belongs to no organization.
func (h *harness) plainUser(email string) store.User {
	h.t.Helper()
	u, err := h.db.CreateUser(context.Background(), store.NewUser{Email: email, PasswordHash: "x", CreatedAt: h.clk.Now()})
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// invite invites email to acme with the admin's session and returns the
// code.
func (h *harness) invite(admin, email, role string) string {
	h.t.Helper()
	code, out := h.do("POST", "/v1/orgs/acme/invitations", admin, map[string]string{"email": email, "role": role})
	if code != 201 {
		h.t.Fatalf("invite %s: %d %v", email, code, out)
	}
	return out["code"].(string)
}

func (h *harness) join(session, code string) (int, string) {
	h.t.Helper()
	status, out := h.do("POST", "/v1/invitations/accept", session, map[string]string{"code": code})
	msg, _ := out["error"].(string)
	return status, msg
}

func TestInvitations(t *testing.T) {
	h := newHarness(t)
	admin, o := h.user("ada@example.com", "acme")
	adminH, _ := h.login(admin.ID, time.Hour)
	bob := h.plainUser("Bob@Example.com")
	bobH, _ := h.login(bob.ID, time.Hour)
	eve := h.plainUser("eve@example.com")
	eveH, _ := h.login(eve.ID, time.Hour)

	code, out := h.do("POST", "/v1/orgs/acme/invitations", adminH, map[string]string{"email": "bob@example.com", "expiry": "48h"})
	if code != 201 {
		t.Fatalf("invite: %d %v", code, out)
	}
	bobCode := out["code"].(string)
	if !invitation.ValidCode(bobCode) || out["url"] != testLogin+invitation.Path+bobCode || out["role"] != "member" ||
		out["expires_at"] != h.clk.Now().Add(48*time.Hour).UTC().Format(time.RFC3339) {
		t.Fatalf("invitation: %v", out)
	}
	// Stored as a hash only.
	inv, err := h.db.GetInvitation(context.Background(), invitation.CodeHash(bobCode))
	if err != nil || strings.Contains(fmt.Sprintf("%+v", inv), bobCode) {
		t.Fatalf("stored invitation: %+v %v", inv, err)
	}

	for _, tc := range []struct {
		name string
		body map[string]string
		want int
	}{
		{"pending already", map[string]string{"email": "BOB@example.com"}, 409},
		{"member already", map[string]string{"email": "ada@example.com"}, 409},
		{"not an email", map[string]string{"email": "bob"}, 400},
		{"role", map[string]string{"email": "carol@example.com", "role": "owner"}, 400},
		{"expiry too long", map[string]string{"email": "carol@example.com", "expiry": "1000h"}, 400},
		{"expiry unparsable", map[string]string{"email": "carol@example.com", "expiry": "7d"}, 400},
	} {
		if code, out := h.do("POST", "/v1/orgs/acme/invitations", adminH, tc.body); code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, out, tc.want)
		}
	}

	// Only the invited email's account may accept; malformed and unknown
	// codes are refused before anything else.
	if code, msg := h.join(eveH, bobCode); code != 403 || !strings.Contains(msg, "another email") {
		t.Fatalf("eve accepts bob's invitation: %d %s", code, msg)
	}
	if code, msg := h.join(bobH, "cvi1_nope"); code != 400 {
		t.Fatalf("malformed code: %d %s", code, msg)
	}
	if code, msg := h.join(bobH, invitation.NewCode()); code != 404 || !strings.Contains(msg, "no such invitation") {
		t.Fatalf("unknown code: %d %s", code, msg)
	}
	if code, msg := h.join(bobH, bobCode); code != 200 {
		t.Fatalf("bob accepts: %d %s", code, msg)
	}
	if code, msg := h.join(bobH, bobCode); code != 409 || !strings.Contains(msg, "already used") {
		t.Fatalf("bob accepts again: %d %s", code, msg)
	}
	code, out = h.do("GET", "/v1/orgs/acme/members", bobH, nil)
	if code != 200 || len(out["members"].([]any)) != 2 {
		t.Fatalf("members, as bob: %d %v", code, out)
	}
	if m := out["members"].([]any)[1].(map[string]any); m["email"] != "Bob@Example.com" || m["role"] != "member" {
		t.Fatalf("bob as listed: %v", m)
	}

	// Expired, and cancelled: refused, saying so.
	eveCode := h.invite(adminH, "eve@example.com", "admin")
	h.clk.Advance(DefaultInvitationExpiry)
	eveH, _ = h.login(eve.ID, time.Hour)
	if code, msg := h.join(eveH, eveCode); code != 410 || !strings.Contains(msg, "expired") {
		t.Fatalf("expired invitation: %d %s", code, msg)
	}
	adminH, _ = h.login(admin.ID, time.Hour)
	code, out = h.do("GET", "/v1/orgs/acme/invitations", adminH, nil)
	if code != 200 || len(out["invitations"].([]any)) != 1 || out["invitations"].([]any)[0].(map[string]any)["expired"] != true {
		t.Fatalf("invitations: %d %v", code, out)
	}
	eveCode = h.invite(adminH, "eve@example.com", "admin") // the expired one gives way
	if code, out := h.do("POST", "/v1/orgs/acme/invitations/cancel", adminH, map[string]string{"invitation": "EVE@example.com"}); code != 200 {
		t.Fatalf("cancel: %d %v", code, out)
	}
	if code, msg := h.join(eveH, eveCode); code != 409 || !strings.Contains(msg, "cancelled") {
		t.Fatalf("cancelled invitation: %d %s", code, msg)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/invitations/cancel", adminH, map[string]string{"invitation": "eve@example.com"}); code != 404 {
		t.Fatalf("cancel again: %d %v", code, out)
	}

	// A member may read the invitations but neither invite nor cancel;
	// a named token, even an admin's, neither invites nor accepts.
	bobH, _ = h.login(bob.ID, time.Hour)
	if code, out := h.do("GET", "/v1/orgs/acme/invitations", bobH, nil); code != 200 {
		t.Fatalf("invitations, as a member: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/invitations", bobH, map[string]string{"email": "x@example.com"}); code != 403 {
		t.Fatalf("a member invites: %d %v", code, out)
	}
	_, out = h.do("POST", "/v1/tokens", adminH, map[string]string{"profile": "org", "org": "acme"})
	orgTok := out["token"].(string)
	if code, out := h.do("POST", "/v1/orgs/acme/invitations", orgTok, map[string]string{"email": "x@example.com"}); code != 403 {
		t.Fatalf("a named token invites: %d %v", code, out)
	}
	carol := h.plainUser("carol@example.com")
	carolCode := h.invite(adminH, "carol@example.com", "member")
	if code, _ := h.join(orgTok, carolCode); code != 403 {
		t.Fatalf("a named token accepts: %d", code)
	}
	carolH, _ := h.login(carol.ID, time.Hour)
	if code, msg := h.join(carolH, carolCode); code != 200 {
		t.Fatalf("carol accepts: %d %s", code, msg)
	}
	if _, err := h.db.GetMembership(context.Background(), o.ID, carol.ID); err != nil {
		t.Fatal(err)
	}
}

func TestMemberRoles(t *testing.T) {
	h := newHarness(t)
	admin, o := h.user("ada@example.com", "acme")
	adminH, _ := h.login(admin.ID, time.Hour)
	bob := h.plainUser("bob@example.com")
	bobH, _ := h.login(bob.ID, time.Hour)
	if code, msg := h.join(bobH, h.invite(adminH, "bob@example.com", "member")); code != 200 {
		t.Fatalf("join: %d %s", code, msg)
	}

	// The last admin cannot be demoted, removed or leave.
	for _, tc := range []struct{ path, body string }{
		{"/v1/orgs/acme/members/role", `{"member": "ada@example.com", "role": "member"}`},
		{"/v1/orgs/acme/members/remove", `{"member": "ada@example.com"}`},
		{"/v1/orgs/acme/leave", ``},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		if code, out := h.do("POST", tc.path, adminH, body); code != 409 || !strings.Contains(out["error"].(string), "last admin") {
			t.Errorf("%s: %d %v, want 409 naming the last admin", tc.path, code, out)
		}
	}
	// A member changes no role.
	if code, out := h.do("POST", "/v1/orgs/acme/members/role", bobH, map[string]string{"member": "bob@example.com", "role": "admin"}); code != 403 {
		t.Fatalf("a member promotes themselves: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/members/remove", bobH, map[string]string{"member": "ada@example.com"}); code != 403 {
		t.Fatalf("a member removes the admin: %d %v", code, out)
	}
	for _, tc := range []struct {
		body map[string]string
		want int
	}{
		{map[string]string{"member": "nobody@example.com", "role": "admin"}, 404},
		{map[string]string{"member": "bob@example.com", "role": "root"}, 400},
		{map[string]string{"role": "admin"}, 400},
		{map[string]string{"member": fmt.Sprint(bob.ID), "role": "admin"}, 200},
	} {
		if code, out := h.do("POST", "/v1/orgs/acme/members/role", adminH, tc.body); code != tc.want {
			t.Errorf("set role %v: %d %v, want %d", tc.body, code, out, tc.want)
		}
	}
	// Two admins: now Ada may leave, and Bob is the last.
	if code, out := h.do("POST", "/v1/orgs/acme/leave", adminH, nil); code != 200 || out["email"] != "ada@example.com" {
		t.Fatalf("leave: %d %v", code, out)
	}
	if code, out := h.do("GET", "/v1/orgs/acme/members", adminH, nil); code != 404 {
		t.Fatalf("members after leaving: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/members/role", bobH, map[string]string{"member": "bob@example.com", "role": "member"}); code != 409 {
		t.Fatalf("the last admin demotes themselves: %d %v", code, out)
	}
	m, err := h.db.GetMembership(context.Background(), o.ID, bob.ID)
	if err != nil || m.Role != store.RoleAdmin {
		t.Fatalf("bob: %+v %v", m, err)
	}
}

// TestRemovalReachesTokens: a removed member's tokens are refused on the
// next request, and their session no longer reaches the organization;
// with keep_tokens, the tokens work on, created by the admin.
func TestRemovalReachesTokens(t *testing.T) {
	h := newHarness(t)
	admin, o := h.user("ada@example.com", "acme")
	adminH, _ := h.login(admin.ID, time.Hour)
	code, out := h.do("POST", "/v1/apps", adminH, map[string]string{"app_name": "web", "org_slug": "acme"})
	if code != 201 {
		t.Fatalf("app: %d %v", code, out)
	}
	app := uint64(out["id"].(float64))
	mintAs := func(session string) (string, string) {
		code, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "deploy", "org": "acme", "app": "web"})
		if code != 201 {
			t.Fatalf("mint: %d %v", code, out)
		}
		return out["token"].(string), out["id"].(string)
	}
	access := `{"orgid": ` + u64(o.ID) + `, "appid": ` + u64(app) + `, "action": "r"}`
	for _, keep := range []bool{false, true} {
		email := fmt.Sprintf("member-%v@example.com", keep)
		u := h.plainUser(email)
		uH, _ := h.login(u.ID, time.Hour)
		if code, msg := h.join(uH, h.invite(adminH, email, "member")); code != 200 {
			t.Fatalf("join: %d %s", code, msg)
		}
		tok, id := mintAs(uH)
		if code, msg := h.authorize(tok, access); code != 200 {
			t.Fatalf("the member's token: %d %s", code, msg)
		}
		code, out := h.do("POST", "/v1/orgs/acme/members/remove", adminH, map[string]any{"member": email, "keep_tokens": keep})
		if code != 200 {
			t.Fatalf("remove: %d %v", code, out)
		}
		toks := out["tokens"].([]any)
		if len(toks) != 1 || toks[0].(map[string]any)["id"] != id || (out["kept"] == true) != keep {
			t.Fatalf("removal's tokens: %v", out)
		}
		code, msg := h.authorize(tok, access)
		switch {
		case !keep && (code != 401 || !strings.Contains(msg, "revoked")):
			t.Fatalf("the removed member's token: %d %s", code, msg)
		case keep && code != 200:
			t.Fatalf("the kept token: %d %s", code, msg)
		}
		if keep {
			rec, err := h.db.GetToken(context.Background(), id)
			if err != nil || rec.CreatedBy != admin.ID || rec.Revoked() {
				t.Fatalf("kept token: %+v %v", rec, err)
			}
		}
		// The session loses the organization at once.
		if code, out := h.do("GET", "/v1/apps?org_slug=acme", uH, nil); code != 404 {
			t.Fatalf("the removed member's session lists apps: %d %v", code, out)
		}
		if code, msg := h.authorize(uH, access); code != 403 {
			t.Fatalf("the removed member's session is authorized: %d %s", code, msg)
		}
	}
}

// TestDemotionReachesTokens: an admin's org token does what only admins
// may until its creator is demoted, then at once no longer; a session
// attenuated to r cannot demote. It fails if middleware.CheckAccess trusts a named
// token's organization alone.
func TestDemotionReachesTokens(t *testing.T) {
	h := newHarness(t)
	admin, o := h.user("ada@example.com", "acme")
	adminH, _ := h.login(admin.ID, time.Hour)
	carol := h.plainUser("carol@example.com")
	carolH, _ := h.login(carol.ID, time.Hour)
	if code, msg := h.join(carolH, h.invite(adminH, "carol@example.com", "admin")); code != 200 {
		t.Fatalf("join: %d %s", code, msg)
	}
	code, out := h.do("POST", "/v1/tokens", carolH, map[string]string{"profile": "org", "org": "acme"})
	if code != 201 {
		t.Fatalf("carol's org token: %d %v", code, out)
	}
	tok := out["token"].(string)
	keys := `{"orgid": ` + u64(o.ID) + `, "feature": "keys", "action": "r"}`
	member := `{"orgid": ` + u64(o.ID) + `, "action": "r"}`
	if code, msg := h.authorize(tok, keys); code != 200 {
		t.Fatalf("an admin's token, admin-only feature: %d %s", code, msg)
	}
	code, out = h.authenticated(tok)
	if ms := out["memberships"].([]any); code != 200 || len(ms) != 1 || ms[0].(map[string]any)["role"] != "admin" {
		t.Fatalf("authenticate: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/members/role", adminH, map[string]string{"member": "carol@example.com", "role": "member"}); code != 200 {
		t.Fatalf("demote: %d %v", code, out)
	}
	if code, msg := h.authorize(tok, keys); code != 403 || !strings.Contains(msg, "now a member") {
		t.Fatalf("the demoted admin's token, admin-only feature: %d %s", code, msg)
	}
	if code, msg := h.authorize(tok, member); code != 200 {
		t.Fatalf("the demoted admin's token, a member's access: %d %s", code, msg)
	}
	code, out = h.authenticated(tok)
	if ms := out["memberships"].([]any); code != 200 || ms[0].(map[string]any)["role"] != "member" {
		t.Fatalf("authenticate after the demotion: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/members/role", adminH, map[string]string{"member": "carol@example.com", "role": "admin"}); code != 200 {
		t.Fatalf("promote: %d %v", code, out)
	}
	if code, msg := h.authorize(tok, keys); code != 200 {
		t.Fatalf("promoted again: %d %s", code, msg)
	}
}

// raceStore removes the minting user from the organization just before
// the token is registered, after the authority checked the membership:
// the removal does not see the token.
type raceStore struct{ *sqlite.DB }

func (r raceStore) CreateToken(ctx context.Context, t store.Token) error {
	if _, err := r.DB.RemoveMemberWithTokens(ctx, store.Removal{OrgID: t.OrgID, UserID: t.CreatedBy, At: t.CreatedAt}); err != nil {
		return err
	}
	return r.DB.CreateToken(ctx, t)
}

// TestMintDuringRemoval: a token registered after its creator's removal
// revoked their tokens is revoked too, and the mint refused.
func TestMintDuringRemoval(t *testing.T) {
	h := newHarness(t)
	_, o := h.user("ada@example.com", "acme")
	bob := h.plainUser("bob@example.com")
	if err := h.db.AddMember(context.Background(), store.Membership{OrgID: o.ID, UserID: bob.ID, Role: store.RoleMember, CreatedAt: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Store: raceStore{h.db}, Keyring: h.kr, Location: testLocation, LoginLocation: testLogin, Now: h.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Mint(context.Background(), &Principal{UserID: bob.ID, SessionID: "bob"}, MintRequest{Profile: ProfileReadonly, OrgID: o.ID})
	if err == nil || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("mint during removal: %v", err)
	}
	toks, _, err := h.db.ListTokens(context.Background(), store.TokenFilter{OrgID: o.ID}, store.Page{Limit: 10})
	if err != nil || len(toks) != 1 || !toks[0].Revoked() {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
}
