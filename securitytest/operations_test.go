package securitytest

// Every row of the authority's operation table refuses a principal whose
// caveats deny the row's access, and serves one whose caveats allow it:
// through a real server, with a session attenuated at random, each answer
// is compared with the caveats' own verdict computed offline.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// do sends a request with an Authorization header and returns the status
// and the decoded JSON answer.
func (s *testServer) do(method, path, header string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
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
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("%s %s: %d answer is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// opCaveat is a caveat that bears on the operation table's accesses: the
// organization (this one or another) or its apps with random masks, the
// keys feature, or any caveat of the catalogue.
func opCaveat(r *mrand.Rand, w *world, org uint64, apps []uint64) caveat.Caveat {
	switch r.IntN(7) {
	case 0, 1, 2:
		id := org
		if chance(r, 0.1) {
			id = org + 7
		}
		mask := randomMask(r)
		if chance(r, 0.6) {
			mask = resset.ActionAll &^ resset.Action(1<<r.IntN(5)) // all but one letter
		}
		return &flyio.Organization{ID: id, Mask: mask}
	case 3:
		return &flyio.Apps{Apps: uintSet(r, append(apps, 0))}
	case 4:
		return &flyio.FeatureSet{Features: strSet(r, append(w.features, authority.FeatureKeys))}
	default:
		for {
			// One that keeps the session verifying and unexpired.
			if c := randomCaveat(r, w, 0, false); benign(caveat.Encode(c)) {
				return c
			}
		}
	}
}

func TestOperationTable(t *testing.T) {
	r := newRand(t)
	ts := startServer(t, serverOptions{})
	ctx := context.Background()
	ts.signup("ada@example.com", "correct horse battery", "acme")
	ada := ts.login("ada@example.com", "correct horse battery")
	orgs, err := ada.api.Organizations(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("organizations: %v %v", orgs, err)
	}
	org := orgs[0].ID
	apps := map[string]uint64{}
	for _, name := range []string{"web", "worker"} {
		a, err := ada.api.CreateApp(ctx, "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		apps[name] = a.ID
	}
	appIDs := []uint64{apps["web"], apps["worker"]}
	w := newWorld(ts.clock.Now(), []uint64{org, org + 7}, appIDs, nil)
	w.features = append(w.features, authority.FeatureKeys, authority.FeatureMembership)

	// Bob, admin of his own organization and a member of acme.
	ts.signup("bob@example.com", "bob's long password", "bob-org")
	bob := ts.login("bob@example.com", "bob's long password")
	inviteAs := func(who *session, slug, email string) string {
		inv, err := who.api.Invite(ctx, slug, client.InviteRequest{Email: email})
		if err != nil {
			t.Fatalf("invite %s to %s: %v", email, slug, err)
		}
		return inv.Code
	}
	if _, err := bob.api.AcceptInvitation(ctx, inviteAs(ada, "acme", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	// bobsOrg makes an organization of Bob's that Ada is invited to, and
	// returns its id and Ada's invitation code.
	bobsOrg := func(slug string) (uint64, string) {
		o, err := bob.api.CreateOrganization(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		return o.ID, inviteAs(bob, slug, "ada@example.com")
	}
	membership := func(action resset.Action) *flyio.Access {
		return &flyio.Access{OrgID: &org, Feature: flyio.Ptr(authority.FeatureMembership), Action: action}
	}
	kr := ts.keyring()
	tp := trusted(kr, ts.loginLocation())

	verdicts := map[bool]int{}
	// allows is the caveats' own verdict on an access, offline.
	allows := func(header string, a *flyio.Access) bool {
		b, err := caveat.ParseBundle(header)
		if err != nil {
			t.Fatal(err)
		}
		v, err := b.Verify(ts.tokenLocation(), kr.KeyFunc(ctx), tp)
		if err != nil {
			t.Fatalf("offline verification: %v", err)
		}
		a.Time = ts.clock.Now()
		ok := v.Caveats.Clear(a) == nil
		verdicts[ok]++
		return ok
	}
	refused := func(code int) bool { return code == http.StatusForbidden || code == http.StatusUnauthorized }
	mint := func(profile, app string) (id string) {
		body := map[string]any{"profile": profile, "org": "acme", "expiry": "1h"}
		if app != "" {
			body["app"] = app
		}
		code, out := ts.do("POST", "/v1/tokens", ada.bundle, body)
		if code != http.StatusCreated {
			t.Fatalf("mint with the plain session: %d %v", code, out)
		}
		return out["id"].(string)
	}
	oldKey := func() string {
		if _, out := ts.do("POST", "/v1/orgs/acme/rotate-key", ada.bundle, nil); out["kid"] == nil {
			t.Fatalf("rotate: %v", out)
		}
		_, out := ts.do("GET", "/v1/orgs/acme/keys", ada.bundle, nil)
		for _, k := range out["keys"].([]any) {
			if k := k.(map[string]any); k["state"] == "rotated" {
				return k["kid"].(string)
			}
		}
		t.Fatalf("no rotated key in %v", out)
		return ""
	}
	listed := func(out map[string]any, field string, id uint64) bool {
		list, _ := out[field].([]any)
		for _, x := range list {
			if uint64(x.(map[string]any)["id"].(float64)) == id {
				return true
			}
		}
		return false
	}

	// check runs the row's request with header and reports a mismatch
	// between the answer and the caveats' verdict.
	type check func(i int, header string) string
	rows := map[string]check{
		"list organizations": func(_ int, h string) string {
			code, out := ts.do("GET", "/v1/orgs", h, nil)
			want := allows(h, &flyio.Access{OrgID: &org, Action: resset.ActionRead})
			if code != http.StatusOK || listed(out, "organizations", org) != want {
				return fmt.Sprintf("%d %v, want the organization listed: %v", code, out, want)
			}
			return ""
		},
		"create organization": func(i int, h string) string {
			code, out := ts.do("POST", "/v1/orgs", h, map[string]any{"slug": fmt.Sprintf("org-%d", i)})
			return expect(code, out, allows(h, &flyio.Access{OrgID: flyio.Ptr[uint64](0), Action: resset.ActionCreate}), http.StatusCreated, refused)
		},
		"list apps": func(_ int, h string) string {
			code, out := ts.do("GET", "/v1/apps?org_slug=acme", h, nil)
			if code != http.StatusOK {
				return fmt.Sprintf("%d %v", code, out)
			}
			for _, id := range appIDs {
				want := allows(h, &flyio.Access{OrgID: &org, AppID: flyio.Ptr(id), Action: resset.ActionRead})
				if listed(out, "apps", id) != want {
					return fmt.Sprintf("app %d listed: %v, want %v (%v)", id, !want, want, out)
				}
			}
			return ""
		},
		"create app": func(i int, h string) string {
			code, out := ts.do("POST", "/v1/apps", h, map[string]any{"app_name": fmt.Sprintf("app-%d", i), "org_slug": "acme"})
			return expect(code, out, allows(h, &flyio.Access{OrgID: &org, AppID: flyio.Ptr[uint64](0), Action: resset.ActionCreate}), http.StatusCreated, refused)
		},
		"list tokens": func(i int, h string) string {
			path, a := "/v1/tokens?org=acme", &flyio.Access{OrgID: &org, Action: resset.ActionRead}
			if i%2 == 1 {
				path, a.AppID = path+"&app=web", flyio.Ptr(apps["web"])
			}
			code, out := ts.do("GET", path, h, nil)
			return expect(code, out, allows(h, a), http.StatusOK, refused)
		},
		"create token (org, readonly)": func(i int, h string) string {
			profile := []string{"org", "readonly"}[i%2]
			code, out := ts.do("POST", "/v1/tokens", h, map[string]any{"profile": profile, "org": "acme", "expiry": "1h"})
			return expect(code, out, allows(h, &flyio.Access{OrgID: &org, Action: resset.ActionCreate}), http.StatusCreated, refused)
		},
		"create token (deploy, machine-exec)": func(i int, h string) string {
			profile := []string{"deploy", "machine-exec"}[i%2]
			code, out := ts.do("POST", "/v1/tokens", h, map[string]any{"profile": profile, "org": "acme", "app": "worker", "expiry": "1h"})
			return expect(code, out, allows(h, &flyio.Access{OrgID: &org, AppID: flyio.Ptr(apps["worker"]), Action: resset.ActionCreate}), http.StatusCreated, refused)
		},
		"revoke token by id": func(i int, h string) string {
			a := &flyio.Access{OrgID: &org, Action: resset.ActionDelete}
			var id string
			if i%2 == 0 {
				id = mint("readonly", "")
			} else {
				id, a.AppID = mint("deploy", "web"), flyio.Ptr(apps["web"])
			}
			code, out := ts.do("DELETE", "/v1/tokens/"+id, h, nil)
			return expect(code, out, allows(h, a), http.StatusOK, refused)
		},
		"revoke a branch": func(i int, h string) string {
			a := &flyio.Access{OrgID: &org, Action: resset.ActionDelete}
			profile, app := "readonly", ""
			if i%2 == 1 {
				profile, app, a.AppID = "deploy", "web", flyio.Ptr(apps["web"])
			}
			code, out := ts.do("POST", "/v1/tokens", ada.bundle, map[string]any{"profile": profile, "org": "acme", "app": app, "expiry": "1h"})
			if code != http.StatusCreated {
				t.Fatalf("mint with the plain session: %d %v", code, out)
			}
			branch := attenuateHeader(t, out["token"].(string), &flyio.Organization{ID: org, Mask: resset.ActionRead | resset.ActionWrite})
			code, out = ts.do("POST", "/v1/tokens/revoke-branch", h, map[string]any{"token": branch})
			return expect(code, out, allows(h, a), http.StatusOK, refused)
		},
		"list keys": func(_ int, h string) string {
			code, out := ts.do("GET", "/v1/orgs/acme/keys", h, nil)
			return expect(code, out, allows(h, &flyio.Access{OrgID: &org, Feature: flyio.Ptr(authority.FeatureKeys), Action: resset.ActionRead}), http.StatusOK, refused)
		},
		"rotate key": func(_ int, h string) string {
			code, out := ts.do("POST", "/v1/orgs/acme/rotate-key", h, nil)
			return expect(code, out, allows(h, &flyio.Access{OrgID: &org, Feature: flyio.Ptr(authority.FeatureKeys), Action: resset.ActionCreate}), http.StatusOK, refused)
		},
		"list members": func(_ int, h string) string {
			code, out := ts.do("GET", "/v1/orgs/acme/members", h, nil)
			return expect(code, out, allows(h, membership(resset.ActionRead)), http.StatusOK, refused)
		},
		"list invitations": func(_ int, h string) string {
			code, out := ts.do("GET", "/v1/orgs/acme/invitations", h, nil)
			return expect(code, out, allows(h, membership(resset.ActionRead)), http.StatusOK, refused)
		},
		"invite": func(i int, h string) string {
			code, out := ts.do("POST", "/v1/orgs/acme/invitations", h, map[string]any{"email": fmt.Sprintf("invited-%d@example.com", i)})
			return expect(code, out, allows(h, membership(resset.ActionCreate)), http.StatusCreated, refused)
		},
		"cancel an invitation": func(i int, h string) string {
			email := fmt.Sprintf("cancelled-%d@example.com", i)
			inviteAs(ada, "acme", email)
			code, out := ts.do("POST", "/v1/orgs/acme/invitations/cancel", h, map[string]any{"invitation": email})
			return expect(code, out, allows(h, membership(resset.ActionDelete)), http.StatusOK, refused)
		},
		"change a member's role": func(i int, h string) string {
			code, out := ts.do("POST", "/v1/orgs/acme/members/role", h, map[string]any{"member": "bob@example.com", "role": []string{"admin", "member"}[i%2]})
			return expect(code, out, allows(h, membership(resset.ActionWrite)), http.StatusOK, refused)
		},
		"remove a member": func(i int, h string) string {
			// Made in the store: signups through the API would meet the
			// per-address limit in the long form.
			email := fmt.Sprintf("removed-%d@example.com", i)
			u, err := ts.srv.Store().CreateUser(ctx, store.NewUser{Email: email, PasswordHash: "not a real hash", CreatedAt: ts.clock.Now()})
			if err == nil {
				err = ts.srv.Store().AddMember(ctx, store.Membership{OrgID: org, UserID: u.ID, Role: store.RoleMember, CreatedAt: ts.clock.Now()})
			}
			if err != nil {
				t.Fatal(err)
			}
			code, out := ts.do("POST", "/v1/orgs/acme/members/remove", h, map[string]any{"member": email})
			return expect(code, out, allows(h, membership(resset.ActionDelete)), http.StatusOK, refused)
		},
		"leave": func(i int, h string) string {
			slug := fmt.Sprintf("left-%d", i)
			id, code := bobsOrg(slug)
			if _, err := ada.api.AcceptInvitation(ctx, code); err != nil {
				t.Fatal(err)
			}
			status, out := ts.do("POST", "/v1/orgs/"+slug+"/leave", h, nil)
			return expect(status, out, allows(h, &flyio.Access{OrgID: &id, Action: resset.ActionDelete}), http.StatusOK, refused)
		},
		"accept an invitation": func(i int, h string) string {
			id, code := bobsOrg(fmt.Sprintf("joined-%d", i))
			status, out := ts.do("POST", "/v1/invitations/accept", h, map[string]any{"code": code})
			return expect(status, out, allows(h, &flyio.Access{OrgID: &id, Action: resset.ActionCreate}), http.StatusOK, refused)
		},
		"retire key": func(_ int, h string) string {
			kid := oldKey()
			code, out := ts.do("POST", "/v1/orgs/acme/retire-key", h, map[string]any{"kid": kid})
			return expect(code, out, allows(h, &flyio.Access{OrgID: &org, Feature: flyio.Ptr(authority.FeatureKeys), Action: resset.ActionDelete}), http.StatusOK, refused)
		},
	}
	// Rows that clear no access of the caller's own: they judge the bundle
	// in their body, serve public data, or only give up power.
	noAccess := map[string]bool{"revoke the presented token": true, "authenticate": true, "authorize": true, "operation table": true}
	var names []string
	for _, op := range authority.Operations {
		if noAccess[op.Name] {
			if !strings.HasPrefix(op.Access, "none") && !strings.HasPrefix(op.Access, "the access in the body") {
				t.Errorf("row %q is exempt here but its access is %q", op.Name, op.Access)
			}
			continue
		}
		if rows[op.Name] == nil {
			t.Errorf("row %q of the operation table has no check in this test: add one", op.Name)
			continue
		}
		names = append(names, op.Name)
	}
	if t.Failed() {
		t.FailNow()
	}

	n := iterations(t, 8*len(names))
	for i := range n {
		name := names[i%len(names)]
		h := ada.bundle
		b, err := caveat.ParseBundle(h)
		if err != nil {
			t.Fatal(err)
		}
		m := &b.Tokens[permissionToken(t, b, ts.tokenLocation())]
		for range 1 + r.IntN(2) {
			if err := m.Add(opCaveat(r, w, org, appIDs)); err != nil {
				t.Fatal(err)
			}
		}
		h = b.Header()
		if msg := rows[name](i, h); msg != "" {
			t.Fatalf("case %d, %s with %s: %s", i, name, describeHeader(t, h, ts.tokenLocation()), msg)
		}
	}
	t.Logf("%d cases over %d rows: %d accesses allowed, %d denied", n, len(names), verdicts[true], verdicts[false])
	if verdicts[true] < n/10 || verdicts[false] < n/10 {
		t.Fatalf("too few allowed (%d) or denied (%d) accesses for %d cases: the property checked too little", verdicts[true], verdicts[false], n)
	}
}

// expect compares an answer with the caveats' verdict: ok when allowed,
// a refusal (that names a caveat, for 403) when not.
func expect(code int, out map[string]any, allowed bool, ok int, refused func(int) bool) string {
	switch {
	case allowed && code != ok:
		return fmt.Sprintf("the caveats allow it, but the server answered %d %v", code, out)
	case !allowed && !refused(code):
		return fmt.Sprintf("the caveats deny it, but the server answered %d %v", code, out)
	case !allowed && code == http.StatusForbidden && !strings.Contains(fmt.Sprint(out["error"]), "caveat"):
		return fmt.Sprintf("the refusal does not name the caveat: %v", out)
	}
	return ""
}
