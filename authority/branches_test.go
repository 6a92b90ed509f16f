package authority

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// TestChildCannotRevokeParent is the review's reproduction: a child of a
// deploy token, narrowed to read-only, revoked its parent (and every copy
// and sibling of it) with POST /v1/tokens/revoke, which revoked by token
// id. Now it revokes exactly its own branch: the child and its
// descendants are refused, the parent and a sibling keep working; and it
// cannot revoke by id (DELETE /v1/tokens/{id}) either.
func TestChildCannotRevokeParent(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	code, out := h.do("POST", "/v1/apps", session, map[string]string{"app_name": "workers", "org_slug": "acme"})
	if code != 201 {
		t.Fatalf("create app: %d %v", code, out)
	}
	appID := uint64(out["id"].(float64))
	code, out = h.do("POST", "/v1/tokens", session, map[string]string{"profile": "deploy", "org": "acme", "app": "workers", "expiry": "24h"})
	if code != 201 {
		t.Fatalf("create token: %d %v", code, out)
	}
	parent, id := out["token"].(string), out["id"].(string)

	child := attenuate(t, parent, mustCaveats(t, `[{"type":"Machines","body":{"machines":{"":"r"}}},`+
		`{"type":"Organization","body":{"id":`+u64(o.ID)+`,"mask":"r"}}]`)...)
	grandchild := attenuate(t, child, mustCaveats(t, `[{"type":"Machines","body":{"machines":{"m1":"r"}}}]`)...)
	sibling := attenuate(t, parent, mustCaveats(t, `[{"type":"Machines","body":{"machines":{"":"rC"}}}]`)...)

	read := `{"orgid": ` + u64(o.ID) + `, "appid": ` + u64(appID) + `, "machine": "m1", "action": "r"}`
	stop := `{"orgid": ` + u64(o.ID) + `, "appid": ` + u64(appID) + `, "machine": "m1", "action": "C"}`
	if code, msg := h.authorize(child, stop); code != 403 {
		t.Fatalf("the read-only child stopping a machine: %d %s", code, msg)
	}

	// By id: refused, even for its own id.
	if code, out := h.do("DELETE", "/v1/tokens/"+id, child, nil); code != 403 {
		t.Fatalf("child revoking by id: %d %v, want 403", code, out)
	}
	// Itself: its own branch.
	code, out = h.do("POST", "/v1/tokens/revoke", child, nil)
	if code != 200 || out["revoked"] != true || out["id"] != id {
		t.Fatalf("child revoking itself: %d %v", code, out)
	}

	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"parent", parent, 200},
		{"sibling", sibling, 200},
		{"child", child, 401},
		{"grandchild", grandchild, 401},
	} {
		code, msg := h.authorize(tc.header, read)
		if code != tc.want {
			t.Errorf("%s after the child revoked itself: %d %s, want %d", tc.name, code, msg, tc.want)
		}
		if tc.want == 401 && !strings.Contains(msg, "revoked") {
			t.Errorf("%s refused without saying it was revoked: %s", tc.name, msg)
		}
	}
	if code, msg := h.authorize(sibling, stop); code != 200 {
		t.Errorf("the sibling stopping a machine: %d %s", code, msg)
	}
	// The registry shows the token unrevoked, with one revoked branch.
	code, out = h.do("GET", "/v1/tokens?org=acme", session, nil)
	if code != 200 {
		t.Fatalf("list: %d %v", code, out)
	}
	tok := out["tokens"].([]any)[0].(map[string]any)
	if tok["revoked_at"] != nil || tok["revoked_branches"] != float64(1) {
		t.Fatalf("listed token %v, want not revoked, with one revoked branch", tok)
	}
}

// TestSelfRevocationNamesItsBranch: the branch a token revokes is the
// binding id of its own final tail, and revoking it again through the
// registry is idempotent.
func TestSelfRevocationNamesItsBranch(t *testing.T) {
	h := newHarness(t)
	u, _ := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
	parent := out["token"].(string)
	child := attenuate(t, parent, &flyio.Organization{ID: 1, Mask: resset.ActionRead | resset.ActionWrite})
	if child == parent {
		t.Fatal("the child is its parent")
	}
	b, _ := caveat.ParseBundle(child)
	want := hex.EncodeToString(caveat.BindingID(&b.Tokens[0]))

	code, out := h.do("POST", "/v1/tokens/revoke", child, nil)
	if code != 200 || out["branch"] != want || out["revoked"] != true {
		t.Fatalf("self revocation: %d %v, want branch %s", code, out, want)
	}
	// Presented again by its creator: already revoked.
	code, out = h.do("POST", "/v1/tokens/revoke-branch", session, map[string]string{"token": child})
	if code != 200 || out["branch"] != want || out["revoked"] != false {
		t.Fatalf("revoking the revoked branch again: %d %v", code, out)
	}
	bs, err := h.db.ListRevokedBranches(context.Background(), out["id"].(string))
	if err != nil || len(bs) != 1 || bs[0].RevokedBy != 0 {
		t.Fatalf("recorded branches %+v (%v), want one, revoked by the branch itself", bs, err)
	}
	// A session has no branch to revoke.
	if code, out := h.do("POST", "/v1/tokens/revoke", session, nil); code != 400 {
		t.Fatalf("session revoking itself: %d %v", code, out)
	}
}

// TestWhoMayRevokeBranches: an admin of the token's organization and the
// token's creator can revoke any branch of it by presenting that branch;
// a member who is not its creator, a user of another organization and a
// named token cannot; a branch token that does not verify is refused
// before anything is recorded.
func TestWhoMayRevokeBranches(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	admin, o := h.user("ada@example.com", "acme")
	outsider, _ := h.user("eve@example.com", "evil")
	var members []store.User
	for _, email := range []string{"bob@example.com", "cy@example.com"} {
		m, err := h.db.CreateUser(ctx, store.NewUser{Email: email, PasswordHash: "x", CreatedAt: h.clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.db.AddMember(ctx, store.Membership{OrgID: o.ID, UserID: m.ID, Role: store.RoleMember, CreatedAt: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
		members = append(members, m)
	}
	adminH, _ := h.login(admin.ID, time.Hour)
	bobH, _ := h.login(members[0].ID, time.Hour)
	cyH, _ := h.login(members[1].ID, time.Hour)
	outsiderH, _ := h.login(outsider.ID, time.Hour)

	// Bob's token and two branches of it.
	_, out := h.do("POST", "/v1/tokens", bobH, map[string]string{"profile": "readonly", "org": "acme"})
	bobTok, bobID := out["token"].(string), out["id"].(string)
	// (Caveats the token lacks: one it has already would be skipped, and
	// the "branch" would be the token itself.)
	branchA := attenuate(t, bobTok, &flyio.Organization{ID: o.ID, Mask: resset.ActionRead | resset.ActionWrite})
	branchB := attenuate(t, bobTok, &flyio.Organization{ID: o.ID, Mask: resset.ActionRead | resset.ActionCreate})
	read := `{"orgid": ` + u64(o.ID) + `, "action": "r"}`

	revoke := func(who, branch string) (int, map[string]any) {
		return h.do("POST", "/v1/tokens/revoke-branch", who, map[string]string{"token": branch})
	}
	for _, tc := range []struct{ name, header string }{
		{"a member who is not the creator", cyH},
		{"a user of another organization", outsiderH},
		{"a named token (bob's own)", bobTok},
		{"the branch itself", branchA},
	} {
		if code, out := revoke(tc.header, branchA); code != 403 {
			t.Errorf("%s revoking a branch of bob's token: %d %v, want 403", tc.name, code, out)
		}
	}
	if code, msg := h.authorize(branchA, read); code != 200 {
		t.Fatalf("branch A after refused revocations: %d %s", code, msg)
	}

	// Invalid branch tokens: 400, nothing recorded.
	tampered := tamperTail(t, branchA)
	foreign, err := caveat.Mint(caveat.NewSigningKey(), caveat.NewNonce(mustBundle(t, bobTok).Tokens[0].Nonce.KID, false), testLocation)
	if err != nil {
		t.Fatal(err)
	}
	kid, key, err := h.kr.MintingKey(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := caveat.Mint(key, caveat.NewNonce(kid, false), "https://other.test/v1")
	if err != nil {
		t.Fatal(err)
	}
	unregistered, err := caveat.Mint(key, caveat.NewNonce(kid, false), testLocation)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token, want string }{
		{"empty", "", `"token" is required`},
		{"malformed", "FlyV1 fm2_nope", "branch token: malformed"},
		{"tampered tail", tampered, "branch token: invalid"},
		{"signed by another key under the same key id", "FlyV1 " + foreign.String(), "branch token: invalid"},
		{"for another location", "FlyV1 " + elsewhere.String(), "branch token: invalid"},
		{"not in the registry", "FlyV1 " + unregistered.String(), "branch token: unknown token"},
		{"two permission tokens", branchA + "," + strings.TrimPrefix(branchB, "FlyV1 "), "2 permission tokens"},
		{"a session", adminH, "a session has no branches"},
	} {
		code, out := revoke(adminH, tc.token)
		msg, _ := out["error"].(string)
		if code != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %v, want 400 with %q", tc.name, code, out, tc.want)
		}
	}
	if bs, err := h.db.ListRevokedBranches(ctx, bobID); err != nil || len(bs) != 0 {
		t.Fatalf("after refused revocations: %+v %v, want none recorded", bs, err)
	}

	// The admin revokes branch A, the creator branch B; the token itself
	// keeps working.
	code, out := revoke(adminH, branchA)
	if code != 200 || out["revoked"] != true || out["id"] != bobID {
		t.Fatalf("admin revoking branch A: %d %v", code, out)
	}
	code, out = revoke(bobH, branchB)
	if code != 200 || out["revoked"] != true {
		t.Fatalf("creator revoking branch B: %d %v", code, out)
	}
	for _, tc := range []struct {
		name, header string
		want         int
	}{{"token", bobTok, 200}, {"branch A", branchA, 401}, {"branch B", branchB, 401}} {
		if code, msg := h.authorize(tc.header, read); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, msg, tc.want)
		}
	}
	bs, err := h.db.ListRevokedBranches(ctx, bobID)
	if err != nil || len(bs) != 2 {
		t.Fatalf("recorded branches: %+v %v", bs, err)
	}
	by := map[uint64]bool{}
	for _, b := range bs {
		by[b.RevokedBy] = true
	}
	if !by[admin.ID] || !by[members[0].ID] {
		t.Fatalf("revoked by %v, want the admin %d and the creator %d", by, admin.ID, members[0].ID)
	}
}

// TestRevokeBranchCaveatsFirst: a session whose caveats do not allow
// deleting the organization's tokens cannot revoke a branch of them, not
// even as the admin who created them (the operation table's rule).
func TestRevokeBranchCaveatsFirst(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
	tok := out["token"].(string)
	readOnly := attenuate(t, session, &flyio.Organization{ID: o.ID, Mask: resset.ActionRead})
	code, out := h.do("POST", "/v1/tokens/revoke-branch", readOnly, map[string]string{"token": tok})
	if msg, _ := out["error"].(string); code != 403 || !strings.Contains(msg, "Organization") {
		t.Fatalf("read-only session revoking a branch: %d %v, want 403 naming the caveat", code, out)
	}
}

// TestBranchWithThirdPartyCaveat: a branch that added a third-party
// caveat verifies only with its discharge, like any token: without it
// the revocation is refused and says why; with it, it is recorded.
func TestBranchWithThirdPartyCaveat(t *testing.T) {
	h := newHarness(t)
	u, _ := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
	b := mustBundle(t, out["token"].(string))
	tpKey := caveat.NewEncryptionKey()
	if err := b.Tokens[0].Add3P(tpKey, "https://approver.test"); err != nil {
		t.Fatal(err)
	}
	branch := b.Header()
	code, out := h.do("POST", "/v1/tokens/revoke-branch", session, map[string]string{"token": branch})
	if msg, _ := out["error"].(string); code != 400 || !strings.Contains(msg, "discharge") {
		t.Fatalf("branch without its discharge: %d %v", code, out)
	}
	ticket, err := caveat.OpenTicket(tpKey, b.Tokens[0].ThirdPartyTickets()[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ticket.Discharge("https://approver.test")
	if err != nil {
		t.Fatal(err)
	}
	code, out = h.do("POST", "/v1/tokens/revoke-branch", session, map[string]string{"token": branch + "," + d.String()})
	if code != 200 || out["revoked"] != true {
		t.Fatalf("branch with its discharge: %d %v", code, out)
	}
}

// TestRevokedBranchesBound: past store.MaxRevokedBranches a token's next
// branch revocation is a 409 that points to revoking the whole token,
// which still works.
func TestRevokedBranchesBound(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, _ := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
	tok, id := out["token"].(string), out["id"].(string)
	for i := range store.MaxRevokedBranches {
		var b store.BranchID
		copy(b[:], fmt.Sprintf("branch %d", i))
		if _, err := h.db.RevokeBranch(ctx, store.RevokedBranch{TokenID: id, Branch: b, RevokedAt: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	child := attenuate(t, tok, &flyio.Organization{ID: 1, Mask: resset.ActionRead | resset.ActionWrite})
	code, out := h.do("POST", "/v1/tokens/revoke", child, nil)
	if msg, _ := out["error"].(string); code != 409 || !strings.Contains(msg, "revoke the whole token") {
		t.Fatalf("a branch past the bound: %d %v", code, out)
	}
	// The token verifies with a full set (and the child too: its branch
	// was not recorded).
	read := `{"orgid": 1, "action": "r"}`
	if code, msg := h.authorize(child, read); code != 200 {
		t.Fatalf("child with %d revoked branches elsewhere: %d %s", store.MaxRevokedBranches, code, msg)
	}
	if code, out := h.do("DELETE", "/v1/tokens/"+id, session, nil); code != 200 || out["revoked"] != true {
		t.Fatalf("revoking the token whole: %d %v", code, out)
	}
}

// countingStore counts the registry reads of verifications.
type countingStore struct {
	Store
	gets atomic.Int64
}

func (c *countingStore) GetToken(ctx context.Context, id string) (store.Token, error) {
	c.gets.Add(1)
	return c.Store.GetToken(ctx, id)
}

// TestRegistryReadsBounded: the registry record of a named token is read
// once per verification and reused after it; a bundle of many forged
// permission tokens under a real key id costs at most maxRegistryReads
// reads and is refused.
func TestRegistryReadsBounded(t *testing.T) {
	h := newHarness(t)
	u, _ := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
	tok := out["token"].(string)

	cs := &countingStore{Store: h.db}
	svc, err := New(Config{Store: cs, Keyring: h.kr, Location: testLocation, LoginLocation: testLogin, Now: h.clk.Now, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := cs.gets.Load(); n != 1 {
		t.Fatalf("one verification read the registry %d times, want once", n)
	}

	kid := mustBundle(t, tok).Tokens[0].Nonce.KID
	var forged []string
	for range 2 * maxRegistryReads {
		m, err := caveat.Mint(caveat.NewSigningKey(), caveat.NewNonce(kid, false), testLocation)
		if err != nil {
			t.Fatal(err)
		}
		forged = append(forged, m.String())
	}
	cs.gets.Store(0)
	_, err = svc.Authenticate(ctx, "FlyV1 "+strings.Join(forged, ",")+","+strings.TrimPrefix(tok, "FlyV1 "))
	if err == nil || !strings.Contains(err.Error(), "more than") || status(err) != http.StatusUnauthorized {
		t.Fatalf("bundle of forged tokens: %v, want a 401 naming the bound", err)
	}
	if n := cs.gets.Load(); n > maxRegistryReads {
		t.Fatalf("%d registry reads for one bundle, the bound is %d", n, maxRegistryReads)
	}
}

// tamperTail flips a bit of the last byte of a token's encoding (its
// tail's).
func tamperTail(t *testing.T, header string) string {
	t.Helper()
	payload := strings.TrimPrefix(header, "FlyV1 fm2_")
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	return "FlyV1 fm2_" + base64.StdEncoding.EncodeToString(raw)
}

func mustBundle(t *testing.T, header string) *caveat.Bundle {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBranchSetCacheStaysCurrent: the revoked-branch sets kept between
// verifications never hide a newer revocation, even with the verification
// cache off and no revocation feed running (a replica whose feed is
// behind): the count read with the token's record decides.
func TestBranchSetCacheStaysCurrent(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": "acme"})
	tok := out["token"].(string)
	var branches []string
	for _, mask := range []resset.Action{resset.ActionWrite, resset.ActionCreate, resset.ActionDelete} {
		branches = append(branches, attenuate(t, tok, &flyio.Organization{ID: o.ID, Mask: resset.ActionRead | mask}))
	}
	// Another replica: same store and keys, no cache, no feed.
	other, err := New(Config{Store: h.db, Keyring: h.kr, Location: testLocation, LoginLocation: testLogin, Now: h.clk.Now, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, b := range branches {
		if code, out := h.do("POST", "/v1/tokens/revoke-branch", session, map[string]string{"token": b}); code != 200 {
			t.Fatalf("revoke branch %d: %d %v", i, code, out)
		}
		// Revoked ones refused; the next still accepted (its set cached).
		for j, b := range branches {
			_, err := other.Authenticate(ctx, b)
			if j <= i && (err == nil || !strings.Contains(err.Error(), "revoked")) {
				t.Fatalf("after revoking %d branches: branch %d: %v, want refused", i+1, j, err)
			}
			if j > i && err != nil {
				t.Fatalf("after revoking %d branches: branch %d: %v", i+1, j, err)
			}
		}
	}
	if _, err := other.Authenticate(ctx, tok); err != nil {
		t.Fatalf("the token itself: %v", err)
	}
}
