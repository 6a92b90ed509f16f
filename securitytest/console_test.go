package securitytest

// Every state-changing form of the web console (console.Forms, which the
// console checks against the routes it serves) is refused without the
// session's CSRF token, with another session's, and whenever the browser
// says the form came from another site or origin, and a refusal changes
// nothing in the store; the same form from the console's own page does
// its work, so that the refusals are the checks' doing. The login form is
// refused alike without its own token or from another origin.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/console"
	"github.com/caveatdev/caveat/store"
)

// consoleBrowser is a browser logged in to the console: its session
// cookie, and the CSRF token that its pages carry.
type consoleBrowser struct {
	s      *testServer
	secret string
	csrf   string
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleRequest sends a request to the console with cookies and headers,
// without following redirects.
func (s *testServer) consoleRequest(method, path string, form url.Values, cookies map[string]string, header http.Header) (int, http.Header, string) {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// sameOrigin are the headers of a form posted from the console's own page.
func (s *testServer) sameOrigin() http.Header {
	return http.Header{"Origin": {s.url}, "Sec-Fetch-Site": {"same-origin"}}
}

// consoleLogin logs in through the console's login form.
func (s *testServer) consoleLogin(email string) *consoleBrowser {
	s.t.Helper()
	code, h, body := s.consoleRequest("GET", "/login", nil, nil, nil)
	m := consoleCSRF.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		s.t.Fatalf("login page: %d", code)
	}
	cookies := map[string]string{}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		cookies[c.Name] = c.Value
	}
	code, h, body = s.consoleRequest("POST", "/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {"correct horse battery"}},
		cookies, s.sameOrigin())
	b := &consoleBrowser{s: s}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "caveat-session" {
			b.secret = c.Value
		}
	}
	if code != http.StatusSeeOther || b.secret == "" {
		s.t.Fatalf("console login of %s: %d %s", email, code, body)
	}
	code, _, body = s.consoleRequest("GET", "/", nil, map[string]string{"caveat-session": b.secret}, nil)
	if m = consoleCSRF.FindStringSubmatch(body); code != http.StatusOK || m == nil {
		s.t.Fatalf("home page: %d", code)
	}
	b.csrf = m[1]
	return b
}

func (b *consoleBrowser) post(path string, form url.Values, header http.Header) (int, string) {
	b.s.t.Helper()
	code, _, body := b.s.consoleRequest("POST", path, form, map[string]string{"caveat-session": b.secret}, header)
	return code, body
}

// consoleWorld is what the console's forms can change, read from the
// store: tokens and their revocation, keys and their states, apps,
// machines and their transitions, and the sessions of the test.
func (s *testServer) consoleWorld(orgID, appID uint64, secrets []string) string {
	s.t.Helper()
	ctx := context.Background()
	st := s.srv.Store()
	var out strings.Builder
	ts, _, err := st.ListTokens(ctx, store.TokenFilter{OrgID: orgID}, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, t := range ts {
		fmt.Fprintf(&out, "token %s %s revoked=%v branches=%d\n", t.ID, t.Name, t.Revoked(), t.RevokedBranches)
	}
	ks, _, err := st.ListRootKeys(ctx, orgID, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, k := range ks {
		fmt.Fprintf(&out, "key %x %s\n", k.KID, k.State)
	}
	apps, _, err := st.ListApps(ctx, orgID, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, a := range apps {
		fmt.Fprintf(&out, "app %s\n", a.Name)
	}
	ms, _, err := st.ListMachines(ctx, appID, true, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range ms {
		fmt.Fprintf(&out, "machine %s %s next=%s version=%d\n", m.ID, m.State, m.Next, m.Version)
	}
	for _, o := range []string{"acme", "bobs"} {
		org, err := st.GetOrganizationBySlug(ctx, o)
		if err != nil {
			s.t.Fatal(err)
		}
		ms, err := st.ListMembers(ctx, org.ID)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, m := range ms {
			fmt.Fprintf(&out, "member %s %d %s\n", o, m.UserID, m.Role)
		}
		invs, _, err := st.ListInvitations(ctx, org.ID, store.Page{Limit: store.MaxPageLimit})
		if err != nil {
			s.t.Fatal(err)
		}
		for _, inv := range invs {
			fmt.Fprintf(&out, "invitation %s %d %s open=%v\n", o, inv.ID, inv.Email, inv.Open())
		}
	}
	kr := s.keyring()
	for _, secret := range secrets {
		id, _ := kr.CheckSessionSecret(secret)
		sess, err := st.GetSession(ctx, id)
		if err != nil {
			s.t.Fatal(err)
		}
		fmt.Fprintf(&out, "session %s revoked=%v\n", id, !sess.RevokedAt.IsZero())
	}
	return out.String()
}

func TestConsoleFormsRefuseCrossSiteAndMissingCSRF(t *testing.T) {
	s := startServer(t, serverOptions{})
	ctx := context.Background()
	s.signup("ada@example.com", "correct horse battery", "acme")
	s.signup("bob@example.com", "correct horse battery", "bobs")
	ada := s.login("ada@example.com", "correct horse battery")
	if _, err := ada.api.CreateApp(ctx, "acme", "workers"); err != nil {
		t.Fatal(err)
	}
	st := s.srv.Store()
	org, err := st.GetOrganizationBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Carol and Dave are members of acme, for the forms that change or
	// end a membership.
	members := map[string]uint64{}
	for _, email := range []string{"carol@example.com", "dave@example.com"} {
		r := s.signup(email, "correct horse battery", "")
		members[email] = r.User.ID
		if err := st.AddMember(ctx, store.Membership{OrgID: org.ID, UserID: r.User.ID, Role: store.RoleMember, CreatedAt: s.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	app, err := st.GetAppByName(ctx, org.ID, "workers")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ada.api.CreateMachine(ctx, "workers", client.CreateMachineRequest{Config: client.MachineConfig{Image: "registry.example/w:1"}})
	if err != nil {
		t.Fatal(err)
	}
	// cur is the running subtest, which the cases' helpers fail.
	cur := t
	token := func(name string) string {
		tk, err := ada.api.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: name})
		if err != nil {
			cur.Fatal(err)
		}
		return tk.ID
	}
	// settle lets the machine's transition end and records it.
	settle := func() string {
		s.clock.Advance(2 * time.Second)
		got, err := ada.api.Machine(ctx, "workers", m.ID)
		if err != nil {
			cur.Fatal(err)
		}
		return got.State
	}
	rotated := func() string {
		if _, err := ada.api.RotateKey(ctx, "acme"); err != nil {
			cur.Fatal(err)
		}
		ks, _, err := st.ListRootKeys(ctx, org.ID, store.Page{Limit: store.MaxPageLimit})
		if err != nil {
			cur.Fatal(err)
		}
		for _, k := range ks {
			if k.State == store.KeyRotated {
				return fmt.Sprintf("%x", k.KID)
			}
		}
		cur.Fatal("no rotated key")
		return ""
	}

	// Each form: its path and fields, made ready for a positive control
	// that changes something (or, for "none", nothing).
	cases := map[string]func() (path string, form url.Values){
		"/logout":            func() (string, url.Values) { return "/logout", url.Values{} },
		"/logout-everywhere": func() (string, url.Values) { return "/logout-everywhere", url.Values{} },
		"/orgs/{org}/apps": func() (string, url.Values) {
			return "/orgs/acme/apps", url.Values{"name": {"made-by-a-form"}}
		},
		"/orgs/{org}/apps/{app}/machines/{id}/start": func() (string, url.Values) {
			if settle() != "stopped" {
				if err := ada.api.StopMachine(ctx, "workers", m.ID); err != nil {
					cur.Fatal(err)
				}
				settle()
			}
			return "/orgs/acme/apps/workers/machines/" + m.ID + "/start", url.Values{}
		},
		"/orgs/{org}/apps/{app}/machines/{id}/stop": func() (string, url.Values) {
			if settle() != "started" {
				if _, err := ada.api.StartMachine(ctx, "workers", m.ID); err != nil {
					cur.Fatal(err)
				}
				settle()
			}
			return "/orgs/acme/apps/workers/machines/" + m.ID + "/stop", url.Values{}
		},
		"/orgs/{org}/tokens": func() (string, url.Values) {
			return "/orgs/acme/tokens", url.Values{"profile": {"readonly"}, "name": {"made-by-a-form"}, "expiry": {"24h"}}
		},
		"/orgs/{org}/tokens/{id}/revoke": func() (string, url.Values) {
			return "/orgs/acme/tokens/" + token("victim") + "/revoke", url.Values{}
		},
		"/orgs/{org}/tokens/revoke-branch": func() (string, url.Values) {
			tk, err := ada.api.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "branched"})
			if err != nil {
				cur.Fatal(err)
			}
			b, err := caveat.ParseBundle(tk.Header)
			if err != nil {
				cur.Fatal(err)
			}
			if err := b.Tokens[0].Add(caveat.NewValidityWindow(s.clock.Now(), time.Hour)); err != nil {
				cur.Fatal(err)
			}
			return "/orgs/acme/tokens/revoke-branch", url.Values{"token": {b.Header()}}
		},
		"/orgs/{org}/keys/rotate": func() (string, url.Values) { return "/orgs/acme/keys/rotate", url.Values{} },
		"/orgs/{org}/keys/{kid}/retire": func() (string, url.Values) {
			return "/orgs/acme/keys/" + rotated() + "/retire", url.Values{}
		},
		"/orgs/{org}/invitations": func() (string, url.Values) {
			return "/orgs/acme/invitations", url.Values{"email": {"newcomer@example.com"}, "role": {"member"}, "expiry": {"168h"}}
		},
		"/orgs/{org}/invitations/{id}/cancel": func() (string, url.Values) {
			inv, err := ada.api.Invite(ctx, "acme", client.InviteRequest{Email: "cancel-me@example.com"})
			if err != nil {
				cur.Fatal(err)
			}
			return fmt.Sprintf("/orgs/acme/invitations/%d/cancel", inv.ID), url.Values{}
		},
		"/orgs/{org}/members/{user}/role": func() (string, url.Values) {
			m, err := st.GetMembership(ctx, org.ID, members["carol@example.com"])
			if err != nil {
				cur.Fatal(err)
			}
			role := store.RoleAdmin
			if m.Role == store.RoleAdmin {
				role = store.RoleMember
			}
			return fmt.Sprintf("/orgs/acme/members/%d/role", m.UserID), url.Values{"role": {string(role)}}
		},
		"/orgs/{org}/members/{user}/remove": func() (string, url.Values) {
			return fmt.Sprintf("/orgs/acme/members/%d/remove", members["dave@example.com"]), url.Values{}
		},
		"/join": func() (string, url.Values) {
			bob := s.login("bob@example.com", "correct horse battery")
			inv, err := bob.api.Invite(ctx, "bobs", client.InviteRequest{Email: "ada@example.com"})
			if err != nil {
				cur.Fatal(err)
			}
			return "/join", url.Values{"code": {inv.URL}}
		},
		"/inspect": func() (string, url.Values) {
			tk, err := ada.api.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "inspected"})
			if err != nil {
				cur.Fatal(err)
			}
			return "/inspect", url.Values{"token": {tk.Header}}
		},
	}
	defer func() { s.t = t }()
	for _, f := range console.Forms {
		t.Run(f.Path, func(t *testing.T) {
			cur, s.t = t, t
			prepare, ok := cases[f.Path]
			if !ok {
				t.Fatalf("form %s has no case here: add one", f.Path)
			}
			s.clock.Advance(time.Minute) // the login limits refill
			// A fresh API session for the setup: logging out everywhere
			// ends the previous one.
			ada = s.login("ada@example.com", "correct horse battery")
			b := s.consoleLogin("ada@example.com")
			other := s.consoleLogin("bob@example.com")
			secrets := []string{b.secret, other.secret}
			path, form := prepare()
			// with is the form with a csrf field (none for "-").
			with := func(csrf string) url.Values {
				v := url.Values{}
				for k, vs := range form {
					v[k] = vs
				}
				if csrf != "-" {
					v.Set("csrf", csrf)
				}
				return v
			}
			before := s.consoleWorld(org.ID, app.ID, secrets)
			for _, attack := range []struct {
				name   string
				form   url.Values
				header http.Header
			}{
				{"without the CSRF token", with("-"), s.sameOrigin()},
				{"with another session's CSRF token", with(other.csrf), s.sameOrigin()},
				{"with an empty CSRF token", with(""), s.sameOrigin()},
				{"with the session secret as CSRF token", with(b.secret), s.sameOrigin()},
				{"cross-site", with(b.csrf), http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
				{"same-site, another origin", with(b.csrf), http.Header{"Origin": {"http://127.0.0.1:1"}, "Sec-Fetch-Site": {"same-site"}}},
				{"another origin, without Sec-Fetch-Site", with(b.csrf), http.Header{"Origin": {"https://evil.example"}}},
				{"an opaque origin", with(b.csrf), http.Header{"Origin": {"null"}}},
				{"cross-site, without Origin", with(b.csrf), http.Header{"Sec-Fetch-Site": {"cross-site"}}},
				{"typed in the address bar", with(b.csrf), http.Header{"Sec-Fetch-Site": {"none"}}},
			} {
				code, body := b.post(path, attack.form, attack.header)
				if code != http.StatusForbidden {
					t.Errorf("%s: %d, want 403\n%s", attack.name, code, body)
				}
				if after := s.consoleWorld(org.ID, app.ID, secrets); after != before {
					t.Fatalf("%s changed the store:\nbefore\n%s\nafter\n%s", attack.name, before, after)
				}
			}
			// The same form from the console's own page works.
			code, body := b.post(path, with(b.csrf), s.sameOrigin())
			if code != http.StatusSeeOther && code != http.StatusOK {
				t.Fatalf("from the console's page: %d\n%s", code, body)
			}
			after := s.consoleWorld(org.ID, app.ID, secrets)
			if none := slices.Equal(f.Operations, []string{"none"}); none != (after == before) {
				t.Fatalf("from the console's page (operations %v), the store went from\n%s\nto\n%s", f.Operations, before, after)
			}
		})
	}

	t.Run("login form", func(t *testing.T) {
		s.t = t
		s.clock.Advance(time.Minute)
		code, h, body := s.consoleRequest("GET", "/login", nil, nil, nil)
		m := consoleCSRF.FindStringSubmatch(body)
		if code != http.StatusOK || m == nil {
			t.Fatalf("login page: %d", code)
		}
		cookies := map[string]string{}
		for _, c := range (&http.Response{Header: h}).Cookies() {
			cookies[c.Name] = c.Value
		}
		creds := url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}
		withToken := url.Values{"csrf": {m[1]}, "email": creds["email"], "password": creds["password"]}
		for _, attack := range []struct {
			name    string
			form    url.Values
			cookies map[string]string
			header  http.Header
		}{
			{"without its token", creds, cookies, s.sameOrigin()},
			{"without its cookie", withToken, nil, s.sameOrigin()},
			{"cross-site", withToken, cookies, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
			{"same-site, another origin", withToken, cookies, http.Header{"Origin": {"http://127.0.0.1:1"}, "Sec-Fetch-Site": {"same-site"}}},
		} {
			code, h, body := s.consoleRequest("POST", "/login", attack.form, attack.cookies, attack.header)
			if code != http.StatusForbidden {
				t.Errorf("%s: %d, want 403\n%s", attack.name, code, body)
			}
			if strings.Contains(strings.Join(h.Values("Set-Cookie"), "\n"), "caveat-session=cvs1_") {
				t.Errorf("%s: logged in", attack.name)
			}
		}
		if code, _, body := s.consoleRequest("POST", "/login", withToken, cookies, s.sameOrigin()); code != http.StatusSeeOther {
			t.Fatalf("from the login page: %d\n%s", code, body)
		}
	})
}
