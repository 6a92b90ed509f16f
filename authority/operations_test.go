package authority

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/keyring"

	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// attenuate adds caveats to the permission token of a header.
func attenuate(t *testing.T, header string, cs ...caveat.Caveat) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tokens[0].Add(cs...); err != nil {
		t.Fatal(err)
	}
	return b.Header()
}

// The review's reproductions: a session attenuated to read-only was
// refused minting but allowed to list, rotate and retire keys and to
// create organizations; with c only, it minted an org token that carried
// none of its caveats.
func TestAttenuatedSessionKeepsItsLimits(t *testing.T) {
	h := newHarness(t)
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	readonly := attenuate(t, session, &flyio.Organization{ID: o.ID, Mask: resset.ActionRead})

	// Rotate once with the plain session, so that there is a key to retire.
	if code, out := h.do("POST", "/v1/orgs/acme/rotate-key", session, nil); code != 200 {
		t.Fatalf("rotate: %d %v", code, out)
	}
	_, out := h.do("GET", "/v1/orgs/acme/keys", session, nil)
	var old string
	for _, k := range out["keys"].([]any) {
		if k := k.(map[string]any); k["state"] == string(store.KeyRotated) {
			old = k["kid"].(string)
		}
	}
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/v1/orgs/acme/keys", nil, 200}, // reading is what r allows
		{"POST", "/v1/orgs/acme/rotate-key", nil, 403},
		{"POST", "/v1/orgs/acme/retire-key", map[string]any{"kid": old}, 403},
		{"POST", "/v1/orgs", map[string]any{"slug": "other"}, 403},
		{"POST", "/v1/tokens", map[string]any{"profile": "org", "org": "acme"}, 403},
	} {
		code, out := h.do(c.method, c.path, readonly, c.body)
		if code != c.want {
			t.Errorf("%s %s with an r-only session: %d %v, want %d", c.method, c.path, code, out, c.want)
		}
		if code == 403 && !strings.Contains(out["error"].(string), "(Organization)") {
			t.Errorf("%s %s: the refusal does not name the caveat: %v", c.method, c.path, out)
		}
	}
	// Keys are an admin feature: a FeatureSet without "keys" refuses them.
	noKeys := attenuate(t, session, &flyio.FeatureSet{Features: resset.ResourceSet[string]{"wg": resset.ActionAll}})
	if code, out := h.do("GET", "/v1/orgs/acme/keys", noKeys, nil); code != 403 || !strings.Contains(out["error"].(string), "FeatureSet") {
		t.Errorf("keys with a FeatureSet without keys: %d %v", code, out)
	}

	// With c only: the minted token carries the c-only caveat.
	createOnly := attenuate(t, session, &flyio.Organization{ID: o.ID, Mask: resset.ActionCreate})
	code, out := h.do("POST", "/v1/tokens", createOnly, map[string]any{"profile": "org", "org": "acme", "expiry": "87600h"})
	if code != 201 {
		t.Fatalf("mint with a c-only session: %d %v", code, out)
	}
	token := out["token"].(string)
	a := &flyio.Access{OrgID: &o.ID, AppID: flyio.Ptr[uint64](1), Machine: flyio.Ptr("m1"), Action: resset.ActionDelete}
	if _, err := h.svc.Authorize(context.Background(), token, a); err == nil || !strings.Contains(err.Error(), "(Organization)") {
		t.Fatalf("the token minted by a c-only session destroys machines: %v", err)
	}
}

func TestMintCarriesAttenuations(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	p := h.principal(session)
	web, err := h.svc.CreateApp(ctx, p, o.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	// The holder narrows the session to one app for a day, then mints a
	// year-long deploy token: it carries both, before the profile's.
	day := caveat.NewValidityWindow(h.clk.Now(), 24*time.Hour)
	narrowed := attenuate(t, session, &flyio.Apps{Apps: resset.ResourceSet[uint64]{web.ID: resset.ActionAll}}, day)
	m, err := h.svc.Mint(ctx, h.principal(narrowed), MintRequest{Profile: ProfileDeploy, OrgID: o.ID, AppID: web.ID})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Token.Caveats
	if len(got) < 4 || got[0].Type != flyio.TypeApps || got[1].Type != caveat.TypeValidityWindow {
		t.Fatalf("minted caveats %v: want the session's attenuations first", describe(t, got))
	}
	if !m.Record.ExpiresAt.Equal(day.NotAfterTime()) {
		t.Errorf("registry expiry %s, want the carried window's end %s", m.Record.ExpiresAt, day.NotAfterTime())
	}
	// The session's own lifetime and login caveat are not carried.
	for _, c := range got {
		if c.Type == caveat.Type3P {
			t.Errorf("the login caveat was carried: %v", describe(t, got))
		}
	}
	// An unattenuated session mints a year-long token.
	m, err = h.svc.Mint(ctx, p, MintRequest{Profile: ProfileDeploy, OrgID: o.ID, AppID: web.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := h.clk.Now().Add(DefaultExpiry); !m.Record.ExpiresAt.Equal(want) {
		t.Errorf("expiry %s, want %s", m.Record.ExpiresAt, want)
	}

	// A third-party caveat added by the holder cannot be carried: refused.
	b, _ := caveat.ParseBundle(session)
	if err := b.Tokens[0].Add3P(caveat.NewEncryptionKey(), "https://elsewhere.test", &flyio.IsUser{ID: 1}); err != nil {
		t.Fatal(err)
	}
	pp := *p
	pp.Attenuations = b.Tokens[0].Caveats[keyring.SessionMintedCaveats:]
	if _, err := h.svc.Mint(ctx, &pp, MintRequest{Profile: ProfileReadonly, OrgID: o.ID}); status(err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "https://elsewhere.test") {
		t.Errorf("mint from a session with a holder's 3P caveat: %v", err)
	}
}

func TestMintCommands(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, o := h.user("ada@example.com", "acme")
	session, _ := h.login(u.ID, time.Hour)
	p := h.principal(session)
	web, err := h.svc.CreateApp(ctx, p, o.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	// An explicit empty list would allow no command: refused, not "any".
	if _, err := h.svc.Mint(ctx, p, MintRequest{Profile: ProfileMachineExec, OrgID: o.ID, AppID: web.ID, Commands: flyio.Commands{}}); status(err) != http.StatusBadRequest {
		t.Errorf("commands []: %v, want 400", err)
	}
	// None given: any command, written into the token.
	m, err := h.svc.Mint(ctx, p, MintRequest{Profile: ProfileMachineExec, OrgID: o.ID, AppID: web.ID})
	if err != nil {
		t.Fatal(err)
	}
	js := describe(t, m.Token.Caveats)
	if !strings.Contains(js, `{"type":"IfPresent","body":{"ifs":[{"type":"Commands","body":[{"args":[]}]}],"else":"r"}}`) {
		t.Errorf("machine-exec without commands: %s, want an explicit any-command entry under IfPresent, else r", js)
	}
	// As flyctl's: commands where an access runs one, reading elsewhere.
	m, err = h.svc.Mint(ctx, p, MintRequest{Profile: ProfileMachineExec, OrgID: o.ID, AppID: web.ID,
		Commands: flyio.Commands{{Args: []string{"uptime"}, Exact: true}}})
	if err != nil {
		t.Fatal(err)
	}
	token := "FlyV1 " + m.Token.String()
	for _, c := range []struct {
		a     flyio.Access
		allow bool
	}{
		{flyio.Access{AppID: &web.ID, Action: resset.ActionRead}, true},
		{flyio.Access{AppID: &web.ID, Machine: flyio.Ptr("m1"), Action: resset.ActionRead}, true},
		{flyio.Access{AppID: &web.ID, Machine: flyio.Ptr("m1"), Command: []string{"uptime"}, Action: resset.ActionControl}, true},
		{flyio.Access{AppID: &web.ID, Machine: flyio.Ptr("m1"), Command: []string{"uptime", "-p"}, Action: resset.ActionControl}, false},
		{flyio.Access{AppID: &web.ID, Machine: flyio.Ptr("m1"), Command: []string{"rm", "-rf"}, Action: resset.ActionControl}, false},
		{flyio.Access{AppID: &web.ID, Machine: flyio.Ptr("m1"), Action: resset.ActionDelete}, false},
		{flyio.Access{AppID: &web.ID, Machine: flyio.Ptr("m1"), Action: resset.ActionControl}, false},
	} {
		a := c.a
		a.OrgID = &o.ID
		_, err := h.svc.Authorize(ctx, token, &a)
		if (err == nil) != c.allow {
			t.Errorf("machine-exec token, access %+v: %v, want allowed %v", c.a, err, c.allow)
		}
	}
}

func TestSessionCaveatCount(t *testing.T) {
	kr := keyring.NewKeyring(keyring.NewMasterKey(), nil, time.Now)
	s, err := kr.MintSession(1, time.Now(), time.Now().Add(time.Hour), testLocation, testLogin)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Token.Caveats) != keyring.SessionMintedCaveats {
		t.Fatalf("a session token has %d caveats; keyring.SessionMintedCaveats says %d", len(s.Token.Caveats), keyring.SessionMintedCaveats)
	}
}

func (h *harness) principal(header string) *Principal {
	h.t.Helper()
	p, err := h.svc.Authenticate(context.Background(), header)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func describe(t *testing.T, cs caveat.CaveatSet) string {
	t.Helper()
	js, err := cs.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// authenticated calls POST /v1/tokens/authenticate and returns the status
// and the one verified token of its array (or the error object).
func (h *harness) authenticated(header string) (int, map[string]any) {
	h.t.Helper()
	body, _ := json.Marshal(map[string]string{"header": header})
	resp, err := http.Post(h.srv.URL+"/v1/tokens/authenticate", "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e map[string]any
		if err := json.Unmarshal(raw, &e); err != nil {
			h.t.Fatalf("authenticate: %d %q", resp.StatusCode, raw)
		}
		return resp.StatusCode, e
	}
	var arr []map[string]any
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 1 {
		h.t.Fatalf("authenticate: 200 answer is not an array of one verified token: %q", raw)
	}
	return resp.StatusCode, arr[0]
}
