package authority

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
	"github.com/caveatdev/caveat/store/sqlite/sqlitetest"
)

const (
	testLocation = "https://caveat.test/v1"
	testLogin    = "https://caveat.test/aaa/v1"
)

type harness struct {
	t   *testing.T
	db  *sqlite.DB
	clk *fake.Clock
	svc *Service
	srv *httptest.Server
	kr  *keyring.Keyring
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db, _ := sqlitetest.Open(t)
	clk := fake.NewClock(time.Unix(1764000000, 0))
	kr := keyring.NewKeyring(keyring.NewMasterKey(), db, clk.Now)
	svc, err := New(Config{Store: db, Keyring: kr, Location: testLocation, LoginLocation: testLogin, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(httpjson.Routes(mux))
	t.Cleanup(srv.Close)
	return &harness{t: t, db: db, clk: clk, svc: svc, srv: srv, kr: kr}
}

// user signs up a user who is admin of a new organization with a root key.
func (h *harness) user(email, org string) (store.User, store.Organization) {
	h.t.Helper()
	u, o, err := h.db.CreateUserWithOrganization(context.Background(), store.Signup{
		User:             store.NewUser{Email: email, PasswordHash: "x", CreatedAt: h.clk.Now()},
		OrganizationSlug: org,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.EnsureRootKey(context.Background(), o.ID); err != nil {
		h.t.Fatal(err)
	}
	return u, o
}

// login does what the identity service and the client do: a session, and
// its login discharge (valid ttl), bound to it. It returns the header.
func (h *harness) login(uid uint64, ttl time.Duration) (header string, sessionID string) {
	h.t.Helper()
	now := h.clk.Now()
	s, err := h.kr.MintSession(uid, now, now.Add(30*24*time.Hour), testLocation, testLogin)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.db.CreateSession(context.Background(), store.Session{ID: s.ID, UserID: uid, CreatedAt: now, ExpiresAt: s.Expires}); err != nil {
		h.t.Fatal(err)
	}
	return "FlyV1 " + s.Token.String() + "," + h.discharge(s.Token, uid, ttl), s.ID
}

func (h *harness) discharge(perm *caveat.Macaroon, uid uint64, ttl time.Duration) string {
	h.t.Helper()
	tk, err := caveat.OpenTicket(h.kr.LoginTicketKey(), perm.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		h.t.Fatal(err)
	}
	att := auth.FlyioUserID(uid)
	d, err := tk.Discharge(testLogin, caveat.NewValidityWindow(h.clk.Now(), ttl), &att)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.Bind(perm); err != nil {
		h.t.Fatal(err)
	}
	return d.String()
}

// do makes a request and decodes the JSON answer.
func (h *harness) do(method, path, header string, body any) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode >= 500 {
		h.t.Errorf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return resp.StatusCode, out
}

func (h *harness) authorize(header, access string) (int, string) {
	h.t.Helper()
	code, out := h.do("POST", "/v1/tokens/authorize", "", map[string]any{"header": header, "access": json.RawMessage(access)})
	msg, _ := out["error"].(string)
	return code, msg
}

func TestTokenLifecycle(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, 10*time.Minute)

	code, out := h.do("POST", "/v1/apps", session, map[string]string{"app_name": "workers", "org_slug": "acme"})
	if code != 201 {
		t.Fatalf("create app: %d %v", code, out)
	}
	appID := uint64(out["id"].(float64))
	code, out = h.do("POST", "/v1/tokens", session, map[string]string{"profile": "deploy", "name": "autoscaler", "org": "acme", "app": "workers", "expiry": "1h"})
	if code != 201 {
		t.Fatalf("create token: %d %v", code, out)
	}
	deploy, id := out["token"].(string), out["id"].(string)
	if !strings.HasPrefix(deploy, "FlyV1 fm2_") || out["profile"] != "deploy" {
		t.Fatalf("token %v", out)
	}

	access := func(app uint64, extra string) string {
		return `{"orgid": ` + u64(o.ID) + `, "appid": ` + u64(app) + extra + `}`
	}
	// The deploy token stands on its own after the session's discharge
	// has expired.
	h.clk.Advance(30 * time.Minute)
	if code, msg := h.authorize(deploy, access(appID, `, "machine": "m1", "action": "rwcdC"`)); code != 200 {
		t.Fatalf("deploy token: %d %s", code, msg)
	}
	if code, msg := h.authorize(session, access(appID, `, "action": "r"`)); code != 401 || !strings.Contains(msg, "ValidityWindow") {
		t.Fatalf("session with an expired discharge: %d %s", code, msg)
	}
	if code, msg := h.authorize(deploy, access(appID+1, `, "action": "r"`)); code != 403 || !strings.Contains(msg, "Apps") {
		t.Fatalf("another app: %d %s", code, msg)
	}
	if code, msg := h.authorize(deploy, `{"orgid": 999, "appid": 1, "action": "r"}`); code != 403 || !strings.Contains(msg, "Organization") {
		t.Fatalf("another org: %d %s", code, msg)
	}

	// Attenuated offline to rC on machines.
	b, _ := caveat.ParseBundle(deploy)
	if err := b.Tokens[0].Add(mustCaveats(t, `[{"type":"Machines","body":{"machines":{"":"rC"}}}]`)...); err != nil {
		t.Fatal(err)
	}
	narrow := b.Header()
	if code, msg := h.authorize(narrow, access(appID, `, "machine": "m1", "action": "C"`)); code != 200 {
		t.Fatalf("rC token starting a machine: %d %s", code, msg)
	}
	if code, msg := h.authorize(narrow, access(appID, `, "machine": "m1", "action": "d"`)); code != 403 ||
		!strings.Contains(msg, "(Machines)") || !strings.Contains(msg, "permitted: rC") {
		t.Fatalf("rC token destroying a machine: %d %s", code, msg)
	}

	// The registry lists it; revocation takes effect on the next request,
	// for the attenuated token too.
	session, _ = h.login(u.ID, 10*time.Minute)
	code, out = h.do("GET", "/v1/tokens?org=acme&app=workers", session, nil)
	if code != 200 || len(out["tokens"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, out)
	}
	if lu := out["tokens"].([]any)[0].(map[string]any)["last_used_at"]; lu == nil {
		t.Errorf("last_used_at not recorded: %v", out)
	}
	code, out = h.do("DELETE", "/v1/tokens/"+id, session, nil)
	if code != 200 || out["revoked"] != true {
		t.Fatalf("revoke: %d %v", code, out)
	}
	for _, hdr := range []string{deploy, narrow} {
		if code, msg := h.authorize(hdr, access(appID, `, "action": "r"`)); code != 401 || !strings.Contains(msg, "revoked") {
			t.Fatalf("revoked token: %d %s", code, msg)
		}
	}
	code, out = h.do("DELETE", "/v1/tokens/"+id, session, nil)
	if code != 200 || out["revoked"] != false {
		t.Fatalf("second revoke: %d %v", code, out)
	}
}

func TestSessionChecks(t *testing.T) {
	h := newHarness(t)
	u, _ := h.user("ada@example.com", "acme")
	header, sid := h.login(u.ID, 10*time.Minute)
	if code, out := h.do("GET", "/v1/orgs", header, nil); code != 200 || len(out["organizations"].([]any)) != 1 {
		t.Fatalf("orgs: %d %v", code, out)
	}
	// Without its discharge.
	perm := header[:strings.Index(header, ",")]
	if code, out := h.do("GET", "/v1/orgs", perm, nil); code != 401 || !strings.Contains(out["error"].(string), "discharge") {
		t.Fatalf("no discharge: %d %v", code, out)
	}
	// A discharge attesting another user does not count.
	b, _ := caveat.ParseBundle(header)
	forged := "FlyV1 " + b.Tokens[0].String() + "," + h.discharge(&b.Tokens[0], u.ID+1, time.Minute)
	if code, out := h.do("GET", "/v1/orgs", forged, nil); code != 401 || !strings.Contains(out["error"].(string), "another user") {
		t.Fatalf("other user's discharge: %d %v", code, out)
	}
	// Logged out through another process: the cached verification lasts
	// SessionCacheTTL at most.
	if _, err := h.db.RevokeSession(context.Background(), sid, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(DefaultSessionCacheTTL)
	if code, out := h.do("GET", "/v1/orgs", header, nil); code != 401 || !strings.Contains(out["error"].(string), "logged out") {
		t.Fatalf("revoked session: %d %v", code, out)
	}
	// Logged out in this process: at once.
	header2, sid2 := h.login(u.ID, 10*time.Minute)
	if code, _ := h.do("GET", "/v1/orgs", header2, nil); code != 200 {
		t.Fatal("second session refused")
	}
	if _, err := h.db.RevokeSession(context.Background(), sid2, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	h.svc.EvictSession(sid2)
	if code, out := h.do("GET", "/v1/orgs", header2, nil); code != 401 {
		t.Fatalf("session revoked and evicted here: %d %v", code, out)
	}
}

func TestWhoMayMint(t *testing.T) {
	h := newHarness(t)
	admin, o := h.user("ada@example.com", "acme")
	outsider, _ := h.user("eve@example.com", "evil")
	member, err := h.db.CreateUser(context.Background(), store.NewUser{Email: "bob@example.com", PasswordHash: "x", CreatedAt: h.clk.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.AddMember(context.Background(), store.Membership{OrgID: o.ID, UserID: member.ID, Role: store.RoleMember, CreatedAt: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	adminH, _ := h.login(admin.ID, time.Hour)
	memberH, _ := h.login(member.ID, time.Hour)
	outsiderH, _ := h.login(outsider.ID, time.Hour)
	if code, out := h.do("POST", "/v1/apps", adminH, map[string]string{"app_name": "web", "org_slug": "acme"}); code != 201 {
		t.Fatalf("app: %d %v", code, out)
	}
	for _, tc := range []struct {
		name, header string
		body         map[string]string
		status       int
	}{
		{"admin org", adminH, map[string]string{"profile": "org", "org": "acme"}, 201},
		{"member org", memberH, map[string]string{"profile": "org", "org": "acme"}, 403},
		{"member deploy", memberH, map[string]string{"profile": "deploy", "org": "acme", "app": "web"}, 201},
		{"member readonly", memberH, map[string]string{"profile": "readonly", "org": "acme"}, 201},
		{"outsider", outsiderH, map[string]string{"profile": "readonly", "org": "acme"}, 404},
		{"unknown profile", adminH, map[string]string{"profile": "root", "org": "acme"}, 400},
		{"deploy without app", adminH, map[string]string{"profile": "deploy", "org": "acme"}, 400},
		{"bad expiry", adminH, map[string]string{"profile": "org", "org": "acme", "expiry": "forever"}, 400},
		{"no such app", adminH, map[string]string{"profile": "deploy", "org": "acme", "app": "nope"}, 404},
	} {
		if code, out := h.do("POST", "/v1/tokens", tc.header, tc.body); code != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, code, out, tc.status)
		}
	}
	// A named token cannot mint, not even a narrower token.
	_, out := h.do("POST", "/v1/tokens", adminH, map[string]string{"profile": "org", "org": "acme"})
	org := out["token"].(string)
	if code, out := h.do("POST", "/v1/tokens", org, map[string]string{"profile": "readonly", "org": "acme"}); code != 403 {
		t.Errorf("token minting a token: %d %v", code, out)
	}
	// The member cannot revoke the admin's token; the admin can revoke the member's.
	if code, _ := h.do("DELETE", "/v1/tokens/"+out["id"].(string), memberH, nil); code == 200 {
		t.Errorf("member revoked the admin's token")
	}
	// A token can revoke itself.
	if code, out := h.do("POST", "/v1/tokens/revoke", org, nil); code != 200 || out["revoked"] != true {
		t.Errorf("self revocation: %d %v", code, out)
	}
}

func TestKeyRotationKeepsOldTokens(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	s, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", s, map[string]string{"profile": "readonly", "org": "acme"})
	old := out["token"].(string)
	code, out := h.do("POST", "/v1/orgs/acme/rotate-key", s, nil)
	if code != 200 {
		t.Fatalf("rotate: %d %v", code, out)
	}
	_, out = h.do("POST", "/v1/tokens", s, map[string]string{"profile": "readonly", "org": "acme"})
	fresh := out["token"].(string)
	ob, _ := caveat.ParseBundle(old)
	nb, _ := caveat.ParseBundle(fresh)
	if bytes.Equal(ob.Tokens[0].Nonce.KID, nb.Tokens[0].Nonce.KID) {
		t.Fatal("new tokens still use the old key")
	}
	acc := `{"orgid": ` + u64(o.ID) + `, "action": "r"}`
	for _, hdr := range []string{old, fresh} {
		if code, msg := h.authorize(hdr, acc); code != 200 {
			t.Fatalf("after rotation: %d %s", code, msg)
		}
	}
	code, out = h.do("GET", "/v1/orgs/acme/keys", s, nil)
	if keys, _ := out["keys"].([]any); code != 200 || len(keys) != 2 {
		t.Fatalf("keys: %d %v", code, out)
	}
	oldKID := hex.EncodeToString(ob.Tokens[0].Nonce.KID)
	newKID := hex.EncodeToString(nb.Tokens[0].Nonce.KID)
	if code, out := h.do("POST", "/v1/orgs/acme/retire-key", s, map[string]string{"kid": newKID}); code != 409 {
		t.Fatalf("retiring the active key: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/retire-key", old, map[string]string{"kid": oldKID}); code != 403 {
		t.Fatalf("a named token retiring a key: %d %v", code, out)
	}
	if code, out := h.do("POST", "/v1/orgs/acme/retire-key", s, map[string]string{"kid": oldKID}); code != 200 {
		t.Fatalf("retire: %d %v", code, out)
	}
	if code, msg := h.authorize(old, acc); code != 401 || !strings.Contains(msg, "retired") {
		t.Fatalf("token of a retired key: %d %s", code, msg)
	}
	if code, msg := h.authorize(fresh, acc); code != 200 {
		t.Fatalf("token of the active key after retirement: %d %s", code, msg)
	}
}

// TestVerifyingKeyOrganization: a bundle holding a genuine token of one
// organization and, after it, a forged token of another for the same
// location. The first verifies, and it is its key's organization that must
// match its record: the organization was once noted as keys were looked up,
// and every token's key is looked up before any is resolved, so the forged
// token's organization was compared and the genuine token refused.
func TestVerifyingKeyOrganization(t *testing.T) {
	h := newHarness(t)
	ua, oa := h.user("ada@example.com", "acme")
	ub, _ := h.user("bob@example.com", "beta")
	sa, _ := h.login(ua.ID, time.Hour)
	sb, _ := h.login(ub.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", sa, map[string]string{"profile": "readonly", "org": "acme"})
	genuine := out["token"].(string)
	_, out = h.do("POST", "/v1/tokens", sb, map[string]string{"profile": "readonly", "org": "beta"})
	forged := tamperTail(t, out["token"].(string))

	header := genuine + "," + strings.TrimPrefix(forged, "FlyV1 ")
	acc := `{"orgid": ` + u64(oa.ID) + `, "action": "r"}`
	if code, msg := h.authorize(header, acc); code != 200 {
		t.Fatalf("genuine token followed by a forged one: %d %s", code, msg)
	}
	// The judging endpoint returns the token that verified.
	js, _ := json.Marshal(map[string]string{"header": header})
	resp, err := http.Post(h.srv.URL+"/v1/tokens/authenticate", "application/json", bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var verified []struct {
		OrgID           uint64 `json:"org_id"`
		PermissionToken string `json:"permission_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&verified); err != nil || resp.StatusCode != 200 || len(verified) != 1 {
		t.Fatalf("authenticate: %d %+v %v", resp.StatusCode, verified, err)
	}
	if want := strings.TrimPrefix(genuine, "FlyV1 fm2_"); verified[0].PermissionToken != want || verified[0].OrgID != oa.ID {
		t.Errorf("authenticate: %+v, want organization %d and permission_token %q", verified[0], oa.ID, want)
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	u, _ := h.user("ada@example.com", "acme")
	s, _ := h.login(u.ID, time.Hour)
	for _, tc := range []struct {
		method, path, header string
		body                 any
		status               int
	}{
		{"GET", "/v1/orgs", "", nil, 401},
		{"GET", "/v1/orgs", "FlyV1 fm2_AAAA", nil, 401},
		{"GET", "/v1/orgs", "Bearer not a token", nil, 401},
		{"POST", "/v1/orgs", s, `{"slug": `, 400},
		{"POST", "/v1/orgs", s, `{"slug": "x", "admin": 1}`, 400},
		{"POST", "/v1/orgs", s, `{"slug": "Bad Slug"}`, 400},
		{"POST", "/v1/orgs", s, `{"slug": "acme"}`, 409},
		{"POST", "/v1/orgs", s, `{"slug": "` + strings.Repeat("a", 70000) + `"}`, 413},
		{"POST", "/v1/tokens/authorize", "", `{"header": "x"}`, 400},
		{"POST", "/v1/tokens/authorize", "", `{"header": "x", "access": {"orgid": "one"}}`, 400},
		{"POST", "/v1/tokens/authorize", "", `{"header": "x", "access": {"orgid": 1}}`, 401},
		{"POST", "/v1/tokens/authenticate", "", `[]`, 400},
		{"DELETE", "/v1/tokens/not-a-uuid", s, nil, 400},
		{"DELETE", "/v1/tokens/0f5a1d2e-0000-4000-8000-000000000001", s, nil, 404},
		{"GET", "/v1/tokens", s, nil, 400},
		{"GET", "/v1/apps?org_slug=nope", s, nil, 404},
		{"PUT", "/v1/orgs", s, nil, 405},
		{"GET", "/v1/nothing", s, nil, 404},
	} {
		if code, out := h.do(tc.method, tc.path, tc.header, tc.body); code != tc.status || out["error"] == "" {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.path, code, out, tc.status)
		}
	}
}

func mustCaveats(t *testing.T, js string) []caveat.Caveat {
	t.Helper()
	cs, err := caveat.ParseJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func u64(v uint64) string { return strings.TrimSpace(string(must(json.Marshal(v)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestDenialKeepsItsClass: a refusal is a Denied *fault.Error (answered
// 403) whose cause is the caveat's error, so that callers can tell the
// classes apart.
func TestDenialKeepsItsClass(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	s, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", s, map[string]string{"profile": "readonly", "org": "acme"})
	ro := out["token"].(string)
	_, err := h.svc.Authorize(context.Background(), ro, &flyio.Access{OrgID: &o.ID, Action: resset.ActionWrite})
	if status, _, _ := httpjson.StatusOf(err); status != 403 || fault.CodeOf(err) != fault.Denied || !errors.Is(err, caveat.ErrUnauthorizedForAction) {
		t.Fatalf("write with a readonly token: %#v", err)
	}
	var de *caveat.DeniedError
	if !errors.As(err, &de) || de.Caveat != "Organization" {
		t.Fatalf("the denial does not name its caveat: %v", err)
	}
	if fe, _ := fault.As(err); len(fe.Denials) != 1 || fe.Denials[0].Caveat != "Organization" {
		t.Fatalf("the denial does not carry the caveat's refusal: %#v", fe)
	}
}

// TestRevokedRefusalCached: a revoked token's refusal is remembered, so a
// replayed revoked token is refused without reading the registry again.
func TestRevokedRefusalCached(t *testing.T) {
	h := newHarness(t)
	u, _ := h.user("ada@example.com", "acme")
	s, _ := h.login(u.ID, time.Hour)
	_, out := h.do("POST", "/v1/tokens", s, map[string]string{"profile": "readonly", "org": "acme"})
	tok, id := out["token"].(string), out["id"].(string)
	if code, _ := h.do("DELETE", "/v1/tokens/"+id, s, nil); code != 200 {
		t.Fatal("revoke failed")
	}
	ctx := context.Background()
	if _, err := h.svc.Authenticate(ctx, tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	h.db.Close() // the registry is gone: only the remembered refusal can answer
	if _, err := h.svc.Authenticate(ctx, tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token, registry closed: %v", err)
	}
}
