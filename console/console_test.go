package console_test

// The console over plain HTTP, against a real server: sessions, headers,
// cookies, throttling shared with the API, refusals that name the role,
// the key retirement warning, and the inspector's discretion.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/console"
)

// pagePath fills a page pattern's wildcards with names that exist.
func pagePath(e *env, pattern, tokenID, kid string) string {
	u, err := e.srv.Store().GetUserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.NewReplacer("{$}", "", "{org}", "acme", "{app}", "workers", "{id}", tokenID,
		"{kid}", kid, "{user}", fmt.Sprint(u.ID)).Replace(pattern)
}

func TestPagesNeedASession(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := tokenID(t, e, "seed")
	keys, err := client.Collect(e.admin.Keys(context.Background(), "acme", client.Page{}))
	if err != nil {
		t.Fatal(err)
	}
	ended := e.browser()
	ended.mustLogin("ada@example.com")
	ended.post("/logout", url.Values{"csrf": {ended.csrf()}})

	for _, pattern := range console.Pages {
		path := pagePath(e, pattern, id, keys[0].KID)
		for name, cookie := range map[string]string{
			"no cookie":       "",
			"a forged secret": "cvs1_6e954682-eda8-524a-8960-7c1bca7be16d.AAAA",
			"a logged-out session": func() string {
				b := e.browser()
				b.mustLogin("ada@example.com")
				secret := b.cookies[sessionCookie]
				b.post("/logout", url.Values{"csrf": {b.csrf()}})
				return secret
			}(),
		} {
			b := e.browser()
			if cookie != "" {
				b.cookies[sessionCookie] = cookie
			}
			a := b.get(path)
			if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/login?next=") {
				t.Errorf("GET %s with %s: %d, Location %q", path, name, a.status, a.header.Get("Location"))
			}
			if strings.Contains(a.body, "<main") {
				t.Errorf("GET %s with %s shows the page", path, name)
			}
		}
		// And with a session, the page is there.
		b := e.browser()
		b.mustLogin("ada@example.com")
		if a := b.get(path); a.status != http.StatusOK {
			t.Errorf("GET %s with a session: %d %s", path, a.status, a.body)
		}
	}
}

var (
	inlineScript  = regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=|\sstyle\s*=`)
)

func TestHeadersAndMarkup(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.browser()
	login := b.get("/login")
	b.mustLogin("ada@example.com")
	id := tokenID(t, e, "seed")
	pages := []answer{login}
	for _, p := range console.Pages {
		pages = append(pages, b.get(pagePath(e, p, id, "00")))
	}
	for i, a := range pages {
		h := a.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("page %d: CSP %q lacks %s", i, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("page %d: CSP %q allows unsafe sources", i, csp)
		}
		if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("page %d: Cache-Control %q, X-Frame-Options %q, X-Content-Type-Options %q", i,
				h.Get("Cache-Control"), h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
		for _, tag := range inlineScript.FindAllString(a.body, -1) {
			if !strings.Contains(tag, ` src="/static/`) {
				t.Errorf("page %d: inline script %s", i, tag)
			}
		}
		if m := inlineHandler.FindString(a.body); m != "" {
			t.Errorf("page %d: inline handler or style %q, which the CSP would block", i, m)
		}
	}
	// The static files are the console's own, and scripts work without
	// being inline.
	for _, f := range []string{"/static/style.css", "/static/console.js", "/static/icon.svg"} {
		if a := b.get(f); a.status != http.StatusOK || a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d", f, a.status)
		}
	}
	// The APIs keep their JSON answers.
	if a := b.get("/v1/nope"); a.status != http.StatusNotFound || !strings.Contains(a.body, `"error"`) {
		t.Errorf("an unknown API path: %d %s", a.status, a.body)
	}
}

func TestSessionCookie(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		a := e.browser().login("ada@example.com", password)
		checkCookie(t, a, "caveat-session", false)
	})
	t.Run("https public URL", func(t *testing.T) {
		// A server behind a TLS proxy: its public URL is https, its
		// listener plain HTTP.
		e := newEnv(t, envOptions{publicURL: "https://caveat.example"})
		e.signup("ada@example.com", "acme")
		b := e.browser()
		page := b.get("/login")
		checkCookie(t, page, "__Host-caveat-login", true)
		m := csrfField.FindStringSubmatch(page.body)
		form := url.Values{"csrf": {m[1]}, "email": {"ada@example.com"}, "password": {password}}
		// The listener's own origin is not the public URL's.
		if a := b.do("POST", "/login", form, http.Header{"Origin": {e.url}}); a.status != http.StatusForbidden {
			t.Fatalf("a login form from %s: %d", e.url, a.status)
		}
		a := b.do("POST", "/login", form, http.Header{"Origin": {"https://caveat.example"}, "Sec-Fetch-Site": {"same-origin"}})
		checkCookie(t, a, "__Host-caveat-session", true)
	})
}

// checkCookie finds the named cookie that a answer sets and checks its
// attributes.
func checkCookie(t *testing.T, a answer, name string, secure bool) {
	t.Helper()
	for _, line := range a.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil || c.Name != name {
			continue
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.Secure != secure {
			t.Fatalf("%s: %s", name, line)
		}
		return
	}
	t.Fatalf("no %s cookie in %q (%d %s)", name, a.header.Values("Set-Cookie"), a.status, a.body)
}

func TestLoginThrottleIsTheAPIs(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	anon := client.New(e.url, nil)
	// Failures through the API fill the account's bucket (10)...
	for range 10 {
		if _, err := anon.Login(ctx, "ada@example.com", "wrong"); !client.IsStatus(err, http.StatusUnauthorized) {
			t.Fatalf("API login: %v", err)
		}
	}
	// ...and the console's form, with the right password, is refused.
	a := e.browser().login("ada@example.com", password)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" ||
		!strings.Contains(a.body, "Too many login attempts. Try again in") {
		t.Fatalf("console login after 10 API failures: %d, Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if _, ok := e.browser().cookies[sessionCookie]; ok {
		t.Fatal("a throttled login set a session cookie")
	}
	// The other way round: failures in the console throttle the API.
	e.signup("bob@example.com", "")
	b := e.browser()
	for range 10 {
		if a := b.login("bob@example.com", "wrong"); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Invalid email or password.") {
			t.Fatalf("console login with a wrong password: %d", a.status)
		}
	}
	if _, err := anon.Login(ctx, "bob@example.com", password); !client.IsStatus(err, http.StatusTooManyRequests) {
		t.Fatalf("API login after 10 console failures: %v", err)
	}
}

func TestRefusalsNameTheRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := e.member("bob@example.com")
	tokens := b.get("/orgs/acme/tokens")
	if tokens.status != http.StatusOK || strings.Contains(tokens.body, "/orgs/acme/keys") {
		t.Fatalf("a member's tokens page: %d, links to keys: %v", tokens.status, strings.Contains(tokens.body, "/orgs/acme/keys"))
	}
	if strings.Contains(tokens.body, `/revoke"`) {
		t.Error("a member is offered to revoke ada's token")
	}
	csrf := b.csrf()
	for _, c := range []struct {
		name string
		a    answer
		want string
	}{
		{"keys", b.get("/orgs/acme/keys"), "needs an admin of organization"},
		{"rotate", b.post("/orgs/acme/keys/rotate", url.Values{"csrf": {csrf}}), "needs an admin of organization"},
		{"an org token", b.post("/orgs/acme/tokens", url.Values{"csrf": {csrf}, "profile": {"org"}, "expiry": {"24h"}}),
			"only an admin of organization"},
		{"revoke ada's token", b.post("/orgs/acme/tokens/"+tokenID(t, e, "seed")+"/revoke", url.Values{"csrf": {csrf}}),
			"only an admin of the token&#39;s organization, or its creator"},
		{"another organization", b.get("/orgs/nope/tokens"), `no organization &#34;nope&#34;`},
	} {
		if c.a.status != http.StatusForbidden && c.a.status != http.StatusNotFound || !strings.Contains(c.a.body, c.want) {
			t.Errorf("%s: %d, want a refusal saying %q in\n%s", c.name, c.a.status, c.want, c.a.body)
		}
	}
	// What a member may do, the console does: a deploy token.
	a := b.post("/orgs/acme/tokens", url.Values{"csrf": {csrf}, "profile": {"deploy"}, "app": {"workers"}, "name": {"bobs"}, "expiry": {"24h"}})
	if a.status != http.StatusOK || !strings.Contains(a.body, "Token created") {
		t.Fatalf("a member's deploy token: %d", a.status)
	}
}

func TestLogoutEverywhere(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	cli, err := client.New(e.url, nil).Login(ctx, "ada@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	other := e.browser()
	other.mustLogin("ada@example.com")
	b := e.browser()
	b.mustLogin("ada@example.com")
	secrets := []string{cli.Secret, other.cookies[sessionCookie], b.cookies[sessionCookie]}
	a := b.post("/logout-everywhere", url.Values{"csrf": {b.csrf()}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/login?m=everywhere" {
		t.Fatalf("logout everywhere: %d %s", a.status, a.header.Get("Location"))
	}
	for i, s := range secrets {
		if _, err := client.New(e.url, nil).WhoAmI(ctx, s); !client.IsStatus(err, http.StatusUnauthorized) {
			t.Errorf("session %d survived: %v", i, err)
		}
	}
	if a := other.get("/orgs/acme/tokens"); a.status != http.StatusSeeOther {
		t.Errorf("the other browser's console: %d", a.status)
	}
}

func TestRetireWarnsOfTheTokensThatDie(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	old := e.token(e.admin, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "minted-by-the-old-key"})
	b := e.browser()
	b.mustLogin("ada@example.com")
	if a := b.post("/orgs/acme/keys/rotate", url.Values{"csrf": {b.csrf()}}); a.status != http.StatusSeeOther {
		t.Fatalf("rotate: %d %s", a.status, a.body)
	}
	fresh := e.token(e.admin, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "minted-by-the-new-key"})
	keys, err := client.Collect(e.admin.Keys(ctx, "acme", client.Page{}))
	if err != nil {
		t.Fatal(err)
	}
	var rotated string
	for _, k := range keys {
		if k.State == "rotated" {
			rotated = k.KID
		}
	}
	page := b.get("/orgs/acme/keys/" + rotated + "/retire")
	// The seed token and the old one die; the new one does not.
	if !strings.Contains(page.body, "2 tokens will stop working at once") || !strings.Contains(page.body, "minted-by-the-old-key") ||
		!strings.Contains(page.body, "seed") || strings.Contains(page.body, "minted-by-the-new-key") {
		t.Fatalf("retire warning:\n%s", page.body)
	}
	if a := b.post("/orgs/acme/keys/"+rotated+"/retire", url.Values{"csrf": {b.csrf()}}); a.status != http.StatusSeeOther {
		t.Fatalf("retire: %d %s", a.status, a.body)
	}
	if _, err := client.Collect(e.as(old).Apps(ctx, "acme", client.Page{})); !client.IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("a token of the retired key: %v", err)
	}
	if _, err := client.Collect(e.as(fresh).Apps(ctx, "acme", client.Page{})); err != nil {
		t.Errorf("a token of the new key: %v", err)
	}
	// The active key cannot be retired: the page says so and offers no
	// button.
	for _, k := range keys {
		if k.State == "active" {
			page := b.get("/orgs/acme/keys/" + k.KID + "/retire")
			if !strings.Contains(page.body, "cannot be retired") || strings.Contains(page.body, `type="submit" class="danger"`) {
				t.Errorf("retire page of the active key:\n%s", page.body)
			}
		}
	}
}

func TestInspectorIsDiscreet(t *testing.T) {
	e := newEnv(t, envOptions{})
	header := e.token(e.admin, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "looked-at"})
	b := e.browser()
	b.mustLogin("ada@example.com")
	a := b.post("/inspect", url.Values{"csrf": {b.csrf()}, "token": {header}})
	if a.status != http.StatusOK || !strings.Contains(a.body, "looked-at") || !strings.Contains(a.body, "Verifies under acme") {
		t.Fatalf("inspect: %d\n%s", a.status, a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Error("the inspector's answer may be cached")
	}
	secretPart := strings.TrimPrefix(header, "FlyV1 fm2_")
	if strings.Contains(a.body, secretPart) {
		t.Error("the inspector sent the token back")
	}
	if strings.Contains(e.logs.String(), secretPart) {
		t.Error("the token is in the server's logs")
	}
	ts, err := client.Collect(e.admin.Tokens(context.Background(), client.TokenQuery{Org: "acme", Expired: true}, client.Page{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Name == "looked-at" && tk.LastUsedAt != nil {
			t.Error("inspecting a token counted as a use")
		}
	}
	// Another organization's token is answered as an unknown one.
	other := e.signup("eve@example.com", "evil")
	evil := e.token(other, client.CreateTokenRequest{Profile: "readonly", Org: "evil", Name: "eves-secret-name"})
	a = b.post("/inspect", url.Values{"csrf": {b.csrf()}, "token": {evil}})
	if !strings.Contains(a.body, "Not a token of your organizations.") || strings.Contains(a.body, "eves-secret-name") ||
		strings.Contains(a.body, "evil") {
		t.Errorf("another organization's token:\n%s", a.body)
	}
	// Not a token at all.
	a = b.post("/inspect", url.Values{"csrf": {b.csrf()}, "token": {"fm2_notatoken"}})
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "This is not a token") {
		t.Errorf("garbage: %d", a.status)
	}
}

func TestFormsNameTheirOperations(t *testing.T) {
	var names []string
	for _, op := range authority.Operations {
		names = append(names, op.Name)
	}
	for _, f := range console.Forms {
		if len(f.Operations) == 0 {
			t.Errorf("%s names no operation", f.Path)
		}
		for _, op := range f.Operations {
			if op == "none" || strings.HasPrefix(op, "machines: ") || strings.HasPrefix(op, "identity: ") {
				continue
			}
			if !slices.Contains(names, op) {
				t.Errorf("%s: %q is not a row of authority.Operations", f.Path, op)
			}
		}
	}
}

func TestMembersAndInvitations(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	bobAPI := e.signup("bob@example.com", "")
	ada := e.browser()
	ada.mustLogin("ada@example.com")

	// Ada invites bob; the link is shown once.
	a := ada.post("/orgs/acme/invitations", url.Values{"csrf": {ada.csrf()}, "email": {"bob@example.com"}, "role": {"member"}, "expiry": {"168h"}})
	m := regexp.MustCompile(`http://[^<"]+/aaa/v1/invitations/(cvi1_[A-Za-z0-9_-]+)`).FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		t.Fatalf("invite: %d\n%s", a.status, a.body)
	}
	if page := ada.get("/orgs/acme/members"); !strings.Contains(page.body, "bob@example.com") || strings.Contains(page.body, m[1]) {
		t.Fatalf("the members page lists the invitation without its code: %v", !strings.Contains(page.body, m[1]))
	}
	// Someone else cannot use bob's invitation.
	eve := e.browser()
	e.signup("eve@example.com", "")
	eve.mustLogin("eve@example.com")
	if a := eve.post("/join", url.Values{"csrf": {eve.csrf()}, "code": {m[0]}}); a.status != http.StatusForbidden ||
		!strings.Contains(a.body, "this invitation is for another email address") {
		t.Fatalf("eve joins with bob's link: %d", a.status)
	}
	// Bob joins with the link.
	bob := e.browser()
	bob.mustLogin("bob@example.com")
	if a := bob.post("/join", url.Values{"csrf": {bob.csrf()}, "code": {m[0]}}); a.status != http.StatusSeeOther ||
		a.header.Get("Location") != "/orgs/acme/tokens?m=joined" {
		t.Fatalf("bob joins: %d %s", a.status, a.body)
	}
	// A member sees the members, and no admin's buttons.
	page := bob.get("/orgs/acme/members")
	if !strings.Contains(page.body, "ada@example.com") || strings.Contains(page.body, "/remove") || strings.Contains(page.body, "Invite someone") {
		t.Fatalf("bob's members page:\n%s", page.body)
	}
	if a := bob.post("/orgs/acme/invitations", url.Values{"csrf": {bob.csrf()}, "email": {"x@example.com"}, "role": {"member"}, "expiry": {"24h"}}); a.status != http.StatusForbidden || !strings.Contains(a.body, "admin") {
		t.Fatalf("a member invites: %d", a.status)
	}
	bobs := e.token(bobAPI, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "bobs-token"})

	bobID := ""
	ms, err := client.Collect(e.admin.Members(ctx, "acme", client.Page{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Email == "bob@example.com" {
			bobID = fmt.Sprint(m.UserID)
		}
	}
	// Roles.
	if a := ada.post("/orgs/acme/members/"+bobID+"/role", url.Values{"csrf": {ada.csrf()}, "role": {"admin"}}); a.status != http.StatusSeeOther {
		t.Fatalf("make bob admin: %d %s", a.status, a.body)
	}
	if a := ada.post("/orgs/acme/members/"+bobID+"/role", url.Values{"csrf": {ada.csrf()}, "role": {"owner"}}); a.status != http.StatusBadRequest {
		t.Fatalf("an unknown role: %d", a.status)
	}
	// Cancel an invitation.
	inv, err := e.admin.Invite(ctx, "acme", client.InviteRequest{Email: "dan@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if a := ada.post(fmt.Sprintf("/orgs/acme/invitations/%d/cancel", inv.ID), url.Values{"csrf": {ada.csrf()}}); a.status != http.StatusSeeOther {
		t.Fatalf("cancel: %d %s", a.status, a.body)
	}
	if invs, err := client.Collect(e.admin.Invitations(ctx, "acme", client.Page{})); err != nil || len(invs) != 0 {
		t.Fatalf("invitations after cancelling: %v %v", invs, err)
	}
	// Removing bob names the token that dies with the membership.
	page = ada.get("/orgs/acme/members/" + bobID + "/remove")
	if !strings.Contains(page.body, "1 token created by bob@example.com will be revoked") || !strings.Contains(page.body, "bobs-token") {
		t.Fatalf("remove warning:\n%s", page.body)
	}
	if a := ada.post("/orgs/acme/members/"+bobID+"/remove", url.Values{"csrf": {ada.csrf()}}); a.status != http.StatusSeeOther {
		t.Fatalf("remove bob: %d %s", a.status, a.body)
	}
	if _, err := client.Collect(e.as(bobs).Apps(ctx, "acme", client.Page{})); !client.IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("the removed member's token: %v", err)
	}
	if a := bob.get("/orgs/acme/tokens"); a.status != http.StatusNotFound {
		t.Errorf("the removed member's console: %d", a.status)
	}
}

func TestRevokeABranch(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	parent := e.token(e.admin, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Name: "parent"})
	child := attenuate(t, parent, `[{"type":"ValidityWindow","body":{"not_before":0,"not_after":4102444800}}]`)
	grandchild := attenuate(t, child, `[{"type":"Organization","body":{"id":1,"mask":"r"}}]`)
	sibling := attenuate(t, parent, `[{"type":"ValidityWindow","body":{"not_before":0,"not_after":4102444801}}]`)

	// A member who did not create the token is refused, with the role named.
	bb := e.member("bob@example.com")
	if a := bb.post("/orgs/acme/tokens/revoke-branch", url.Values{"csrf": {bb.csrf()}, "token": {child}}); a.status != http.StatusForbidden ||
		!strings.Contains(a.body, "only an admin of the token&#39;s organization, or its creator") || strings.Contains(a.body, strings.TrimPrefix(child, "FlyV1 ")) {
		t.Fatalf("a member revokes ada's branch: %d\n%s", a.status, a.body)
	}
	// Not a token: the authority says why, and the page does not echo it.
	ada := e.browser()
	ada.mustLogin("ada@example.com")
	if a := ada.post("/orgs/acme/tokens/revoke-branch", url.Values{"csrf": {ada.csrf()}, "token": {"fm2_garbage"}}); a.status != http.StatusBadRequest ||
		!strings.Contains(a.body, "branch token") {
		t.Fatalf("garbage: %d", a.status)
	}
	if a := ada.post("/orgs/acme/tokens/revoke-branch", url.Values{"csrf": {ada.csrf()}, "token": {child}}); a.status != http.StatusSeeOther {
		t.Fatalf("revoke the child: %d %s", a.status, a.body)
	}
	for name, c := range map[string]struct {
		header string
		works  bool
	}{"parent": {parent, true}, "sibling": {sibling, true}, "child": {child, false}, "grandchild": {grandchild, false}} {
		_, err := client.Collect(e.as(c.header).Apps(ctx, "acme", client.Page{}))
		if (err == nil) != c.works {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The inspector says that the grandchild passes through the revoked
	// branch, and that its parent does not.
	a := ada.post("/inspect", url.Values{"csrf": {ada.csrf()}, "token": {grandchild}})
	if !strings.Contains(a.body, "a branch it passes through is revoked") || !strings.Contains(a.body, "1 branch revoked") {
		t.Errorf("inspecting the grandchild:\n%s", a.body)
	}
	if a := ada.post("/inspect", url.Values{"csrf": {ada.csrf()}, "token": {sibling}}); !strings.Contains(a.body, "Verifies under acme") {
		t.Errorf("inspecting the sibling:\n%s", a.body)
	}
}
