package console_test

// The console in a real browser: headless Chromium driven over the
// DevTools protocol (chromedp) against a real server on SQLite. Without
// Chromium the tests skip, saying how to install it, and fail when
// CAVEAT_TEST_REQUIRE_ALL is set (.ci/run installs Debian's chromium).
//
// CAVEAT_CONSOLE_SCREENSHOTS=DIR also writes the README's screenshots
// (console-tokens.png, console-inspector.png) into DIR.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/testenv"
)

// chromium finds the browser, or stops the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CAVEAT_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "Chromium is not installed: the console's browser tests need it (apt-get install chromium, or set CAVEAT_TEST_CHROMIUM to a Chrome binary)")
	return ""
}

// startBrowser starts one headless browser for the test and returns a
// function that opens a tab in a new browser context: its own cookies,
// as a separate browser profile would have.
func startBrowser(t *testing.T) func() *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests may run as root, where Chromium's sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1200, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return func() *tab {
		ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// The first call opens the tab, which lives as long as ctx.
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("opening a tab: %v", err)
		}
		return &tab{t: t, ctx: ctx}
	}
}

// tab is a browser tab.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// do runs browser actions, failing the test on an error.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs a browser action that returns a value.
func get[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *tab) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
}

// text is the text of the first element that sel matches.
func (b *tab) text(sel string) string {
	b.t.Helper()
	return get(b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// location is the tab's URL.
func (b *tab) location() string {
	b.t.Helper()
	return get(b, "read the location", chromedp.Location())
}

// submit fills fields (selector → value), clicks a button and waits for
// the page it leads to; it returns that page's HTTP status.
func (b *tab) submit(fields map[string]string, button string) int64 {
	b.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		steps = append(steps, chromedp.SetValue(chromedp.CSS(sel), v))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(button)))
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		b.t.Fatalf("submit %s: %v", button, err)
	}
	return resp.Status
}

// login logs in through the console's form.
func (b *tab) login(base, email, pw string) int64 {
	b.t.Helper()
	b.open(base + "/login")
	return b.submit(map[string]string{"#email": email, "#password": pw}, "#login button[type=submit]")
}

// cookie is the named cookie of the tab's page, or nil.
func (b *tab) cookie(name string) *network.Cookie {
	b.t.Helper()
	res := get(b, "read cookies", func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
	})
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestBrowser(t *testing.T) {
	newTab := startBrowser(t)
	e := newEnv(t, envOptions{})
	ctx := context.Background()

	t.Run("no page without a session", func(t *testing.T) {
		b := newTab()
		b.t = t
		b.open(e.url + "/orgs/acme/tokens")
		if loc := b.location(); !strings.HasPrefix(loc, e.url+"/login?next=") {
			t.Fatalf("without a session the tokens page went to %s", loc)
		}
		if h := b.text("h1"); h != "Log in" {
			t.Fatalf("heading %q", h)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		b := newTab()
		b.t = t
		b.login(e.url, "ada@example.com", "not the password")
		if msg := b.text(".problem p"); msg != "Invalid email or password." {
			t.Fatalf("message %q", msg)
		}
		if b.cookie(sessionCookie) != nil {
			t.Fatal("a failed login set a session cookie")
		}
	})

	b := newTab()
	b.t = t
	t.Run("log in, and the cookie", func(t *testing.T) {
		b.t = t
		b.open(e.url + "/orgs/acme/tokens")
		b.submit(map[string]string{"#email": "ada@example.com", "#password": password}, "#login button[type=submit]")
		if loc := b.location(); loc != e.url+"/orgs/acme/tokens" {
			t.Fatalf("after logging in: %s, want the page asked for", loc)
		}
		c := b.cookie(sessionCookie)
		if c == nil {
			t.Fatal("no session cookie")
		}
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Secure || c.Path != "/" ||
			!strings.HasPrefix(c.Value, "cvs1_") {
			t.Fatalf("session cookie: HttpOnly %v, SameSite %s, Secure %v (the public URL is http), Path %s",
				c.HTTPOnly, c.SameSite, c.Secure, c.Path)
		}
		fromScript := get(b, "read document.cookie", chromedp.Evaluate[string](`document.cookie`))
		if strings.Contains(fromScript, "cvs1_") {
			t.Fatal("a script can read the session secret")
		}
	})

	t.Run("every field has a label, and keyboard focus shows", func(t *testing.T) {
		b.t = t
		for _, page := range []string{"/login", "/orgs/acme", "/orgs/acme/tokens/new", "/inspect", "/orgs/acme/keys"} {
			b.open(e.url + page)
			unlabelled := get(b, "find fields without a label", chromedp.Evaluate[[]string](
				`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
					.filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.name)`))
			if len(unlabelled) > 0 {
				t.Errorf("%s: fields without a label: %v", page, unlabelled)
			}
		}
		// Tab to the first link: the focus ring is drawn.
		b.open(e.url + "/orgs/acme/tokens")
		b.do("tab", chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
		outline := get(b, "read the focus ring", chromedp.Evaluate[string](
			`getComputedStyle(document.activeElement).outlineStyle + " " + getComputedStyle(document.activeElement).outlineWidth`))
		if !strings.HasPrefix(outline, "solid ") || outline == "solid 0px" {
			t.Errorf("focused element's outline: %q", outline)
		}
	})

	var created string // the token made in the browser
	t.Run("create a token and find it listed", func(t *testing.T) {
		b.t = t
		b.open(e.url + "/orgs/acme/tokens/new")
		b.do("fill the form",
			chromedp.Click(chromedp.CSS("#profile-deploy")),
			chromedp.SetValue(chromedp.CSS("#app"), "workers"),
			chromedp.SetValue(chromedp.CSS("#name"), "made-in-browser"),
			chromedp.SetValue(chromedp.CSS("#expiry"), "720h"),
		)
		b.submit(nil, "#new-token-form button[type=submit]")
		if h := b.text("h1"); h != "Token created" {
			t.Fatalf("after creating: %q (%s)", h, b.text("main"))
		}
		created = get(b, "read the token", chromedp.Value(chromedp.CSS("#new-token")))
		if !strings.HasPrefix(created, "FlyV1 fm2_") {
			t.Fatalf("shown token %q", created)
		}
		if get(b, "see the copy button", chromedp.Evaluate[bool](`document.querySelector("button[data-copy]").hidden`)) {
			t.Error("the copy button stayed hidden with scripts on")
		}
		if u := b.text(".report .usable"); !strings.HasPrefix(u, "needs no discharge: valid on its own until ") {
			t.Errorf("debug summary: usable %q", u)
		}
		if !strings.Contains(b.text("main"), `"machines":{"":"rC"}`) {
			t.Error("no attenuation example")
		}
		if _, err := client.Collect(e.as(created).Machines(ctx, "workers", client.ListMachinesOptions{}, client.Page{})); err != nil {
			t.Fatalf("the new token is refused by the API: %v", err)
		}
		b.open(e.url + "/orgs/acme/tokens")
		if !strings.Contains(b.text("table.tokens"), "made-in-browser") {
			t.Fatalf("the new token is not listed: %s", b.text("main"))
		}
	})

	t.Run("revoke it and see it refused by the API", func(t *testing.T) {
		b.t = t
		id := tokenID(t, e, "made-in-browser")
		b.open(e.url + "/orgs/acme/tokens")
		b.submit(nil, fmt.Sprintf(`#token-%s a.danger`, id))
		if h := b.text("h1"); h != "Revoke made-in-browser?" {
			t.Fatalf("confirmation page: %q", h)
		}
		b.submit(nil, "form button.danger")
		if n := b.text(".notice"); !strings.Contains(n, "is revoked") {
			t.Fatalf("notice %q", n)
		}
		if s := b.text(fmt.Sprintf("#token-%s .badge", id)); s != "revoked" {
			t.Fatalf("status %q", s)
		}
		_, err := client.Collect(e.as(created).Machines(ctx, "workers", client.ListMachinesOptions{}, client.Page{}))
		if !client.IsStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("the revoked token: %v", err)
		}
	})

	t.Run("inspect a token", func(t *testing.T) {
		b.t = t
		b.open(e.url + "/inspect")
		b.submit(map[string]string{"#token": created}, "#inspect-form button[type=submit]")
		if s := b.text(".report h3"); s != "Token 1: permission token" {
			t.Fatalf("report heading %q", s)
		}
		if s := b.text(".report .registry"); !strings.Contains(s, "made-in-browser") || !strings.Contains(s, "revoked") ||
			strings.Contains(s, "last used: never") {
			t.Fatalf("registry %q: want the name, revoked, and the use the API just made", s)
		}
		if s := b.text(".report .signature"); !strings.HasPrefix(s, "Verifies under acme's key") {
			t.Fatalf("signature %q", s)
		}
		if pasted := get(b, "read the form", chromedp.Value(chromedp.CSS("#token"))); pasted != "" {
			t.Error("the inspector sent the pasted token back")
		}
		if strings.Contains(e.logs.String(), strings.TrimPrefix(created, "FlyV1 ")) {
			t.Error("the pasted token is in the logs")
		}
	})

	t.Run("start and stop a machine", func(t *testing.T) {
		b.t = t
		b.open(e.url + "/orgs/acme/apps/workers")
		row := "#machine-" + e.machine
		b.submit(nil, row+` form[action$="/stop"] button`)
		if n := b.text(".notice"); n != "The machine is stopping." {
			t.Fatalf("notice %q (%s)", n, b.text("main"))
		}
		waitState(t, e, "stopped")
		b.open(e.url + "/orgs/acme/apps/workers")
		b.submit(nil, row+` form[action$="/start"] button`)
		if n := b.text(".notice"); n != "The machine is starting." {
			t.Fatalf("notice %q", n)
		}
	})

	t.Run("a cross-site form post is refused", func(t *testing.T) {
		b.t = t
		keys, err := client.Collect(e.admin.Keys(ctx, "acme", client.Page{}))
		if err != nil {
			t.Fatal(err)
		}
		// A page of another origin on the same host (the cookie, being
		// same-site, goes along) and of another site (localhost), each
		// with a form that would rotate acme's key.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/orgs/acme/keys/rotate">
<input type="hidden" name="csrf" value="guessed"><button id="go">Win a prize</button></form>`, e.url)
		}))
		defer evil.Close()
		for _, origin := range []string{evil.URL, strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)} {
			b.open(origin)
			b.submit(nil, "#go")
			if h := b.text(".problem p"); !strings.Contains(h, "refused a form sent from another site or origin") {
				t.Fatalf("from %s: %q", origin, h)
			}
		}
		after, err := client.Collect(e.admin.Keys(ctx, "acme", client.Page{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(keys) {
			t.Fatalf("a cross-site post rotated the key: %d keys, were %d", len(after), len(keys))
		}
	})

	t.Run("revoke a branch by pasting a token", func(t *testing.T) {
		b.t = t
		parent := e.token(e.admin, client.CreateTokenRequest{Profile: "deploy", Org: "acme", App: "workers", Name: "branched"})
		child := attenuate(t, parent, `[{"type":"Machines","body":{"machines":{"":"rC"}}}]`)
		b.open(e.url + "/orgs/acme/tokens")
		b.submit(nil, `a[href$="/tokens/revoke-branch"]`)
		b.submit(map[string]string{"#branch-token": child}, "#branch-form button[type=submit]")
		if n := b.text(".notice"); !strings.Contains(n, `A branch of token "branched"`) {
			t.Fatalf("notice %q (%s)", n, b.text("main"))
		}
		if s := b.text(fmt.Sprintf("#token-%s .branches", tokenID(t, e, "branched"))); s != "1 branch revoked" {
			t.Errorf("list: %q", s)
		}
		if _, err := client.Collect(e.as(child).Machines(ctx, "workers", client.ListMachinesOptions{}, client.Page{})); !client.IsStatus(err, http.StatusUnauthorized) {
			t.Fatalf("the revoked branch: %v", err)
		}
		if _, err := client.Collect(e.as(parent).Machines(ctx, "workers", client.ListMachinesOptions{}, client.Page{})); err != nil {
			t.Fatalf("the token it was attenuated from: %v", err)
		}
	})

	t.Run("invite a member, who accepts in another browser", func(t *testing.T) {
		b.t = t
		b.open(e.url + "/orgs/acme/members")
		b.do("fill the invitation", chromedp.SetValue(chromedp.CSS("#invite-email"), "carol@example.com"))
		b.submit(nil, "#invite-form button[type=submit]")
		link := get(b, "read the link", chromedp.Value(chromedp.CSS("#invitation-url")))
		if !strings.HasPrefix(link, e.url+"/aaa/v1/invitations/cvi1_") {
			t.Fatalf("invitation link %q", link)
		}
		// Carol, in a browser of her own, creates her account from the
		// link, then logs in to the console.
		carol := newTab()
		carol.t = t
		carol.open(link)
		carol.submit(map[string]string{"#password": password}, `button[value="signup"]`)
		if h := carol.text("h1"); h != "Welcome to acme" {
			t.Fatalf("after accepting: %q (%s)", h, carol.text("main"))
		}
		carol.login(e.url, "carol@example.com", password)
		if s := carol.text(".card"); !strings.Contains(s, "acme") || !strings.Contains(s, "You are a member.") {
			t.Fatalf("carol's organizations: %q", s)
		}
		b.open(e.url + "/orgs/acme/members")
		if s := b.text("table.members"); !strings.Contains(s, "carol@example.com") {
			t.Fatalf("ada's members page: %q", s)
		}
	})

	if dir := os.Getenv("CAVEAT_CONSOLE_SCREENSHOTS"); dir != "" {
		t.Run("screenshots", func(t *testing.T) {
			b.t = t
			screenshots(t, e, b, dir)
		})
	}

	t.Run("a logout elsewhere ends the console session, and the console's everywhere", func(t *testing.T) {
		b.t = t
		secret := b.cookie(sessionCookie).Value
		// What "caveat auth logout" does with the same session secret.
		if err := client.New(e.url, nil).Logout(ctx, secret); err != nil {
			t.Fatal(err)
		}
		b.open(e.url + "/orgs/acme/tokens")
		if loc := b.location(); !strings.HasPrefix(loc, e.url+"/login") {
			t.Fatalf("after a logout through the API the console still shows %s", loc)
		}
		b.submit(map[string]string{"#email": "ada@example.com", "#password": password}, "#login button[type=submit]")
		secret = b.cookie(sessionCookie).Value
		b.open(e.url + "/")
		b.submit(nil, `form[action="/logout"] button`)
		if n := b.text(".notice"); !strings.Contains(n, "You are logged out") {
			t.Fatalf("notice %q", n)
		}
		if _, err := client.New(e.url, nil).WhoAmI(ctx, secret); !client.IsStatus(err, http.StatusUnauthorized) {
			t.Fatalf("the session the console logged out still works through the API: %v", err)
		}
		if b.cookie(sessionCookie) != nil {
			t.Error("the session cookie outlived the logout")
		}
	})
}

// attenuate adds caveats, in JSON, to a token offline.
func attenuate(t *testing.T, header, caveats string) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := caveat.ParseJSON([]byte(caveats))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tokens[0].Add(cs...); err != nil {
		t.Fatal(err)
	}
	return b.Header()
}

// tokenID finds a token of acme by name through the API.
func tokenID(t *testing.T, e *env, name string) string {
	t.Helper()
	ts, err := client.Collect(e.admin.Tokens(context.Background(), client.TokenQuery{Org: "acme", Expired: true}, client.Page{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Name == name {
			return tk.ID
		}
	}
	t.Fatalf("no token %q", name)
	return ""
}

// waitState waits for the seeded machine to reach a state.
func waitState(t *testing.T, e *env, state string) {
	t.Helper()
	if err := e.admin.WaitMachine(context.Background(), "workers", e.machine, state, 10*time.Second); err != nil {
		t.Fatalf("machine %s: %v", state, err)
	}
}

// screenshots writes the README's pictures: the tokens list, with tokens
// in every state, and the inspector's report of an attenuated token.
func screenshots(t *testing.T, e *env, b *tab, dir string) {
	ctx := context.Background()
	for _, req := range []client.CreateTokenRequest{
		{Profile: "readonly", Org: "acme", Name: "auditor", Expiry: "80h"},
		{Profile: "machine-exec", Org: "acme", App: "workers", Name: "backup-job", Expiry: "2160h", Commands: []client.Command{{Args: []string{"pg_dump"}}}},
		{Profile: "deploy", Org: "acme", App: "workers", Name: "autoscaler", Expiry: "8760h"},
	} {
		h := e.token(e.admin, req)
		if req.Name == "autoscaler" {
			if _, err := client.Collect(e.as(h).Machines(ctx, "workers", client.ListMachinesOptions{}, client.Page{})); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shoot := func(name string, height int64) {
		b.do("size the window", chromedp.EmulateViewport(1100, height), chromedp.Sleep(100*time.Millisecond))
		png := get(b, "screenshot "+name, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.open(e.url + "/orgs/acme/tokens")
	shoot("console-tokens.png", 560)
	// The seed's case: a deploy token narrowed offline to reading,
	// starting and stopping machines.
	deploy := e.token(e.admin, client.CreateTokenRequest{Profile: "deploy", Org: "acme", App: "workers", Name: "autoscaler-rc"})
	b.open(e.url + "/inspect")
	b.submit(map[string]string{"#token": attenuate(t, deploy, `[{"type":"Machines","body":{"machines":{"":"rC"}}}]`)},
		"#inspect-form button[type=submit]")
	shoot("console-inspector.png", 700)
}
