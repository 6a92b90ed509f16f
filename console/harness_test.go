package console_test

// The harness: a real server on 127.0.0.1:0 over SQLite with the console
// on, an organization with an app and a machine, and an HTTP client that
// logs in through the console's own form.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store"
)

const password = "correct horse battery"

// env is a running server with a seeded organization "acme": ada is its
// admin, with an app "workers" that has one started machine.
type env struct {
	t       *testing.T
	srv     *server.Server
	url     string
	logs    *fake.Buffer
	admin   *client.Client // ada's session, through the API
	machine string         // the id of workers' machine
}

type envOptions struct {
	publicURL string
}

func newEnv(t *testing.T, opt envOptions) *env {
	t.Helper()
	e := &env{t: t, logs: &fake.Buffer{}}
	srv := servertest.Run(t, server.Config{
		DataDir:               t.TempDir(),
		PublicURL:             opt.publicURL,
		MachineTransitionTime: 20 * time.Millisecond,
		Signup:                true,
		Logger:                slog.New(slog.NewJSONHandler(e.logs, nil)),
	})
	ctx := context.Background()
	e.srv = srv
	// Requests go to the listening address, whatever the public URL.
	e.url = "http://" + srv.Addr().String()
	if opt.publicURL != "" {
		return e
	}
	e.admin = e.signup("ada@example.com", "acme")
	if _, err := e.admin.CreateApp(ctx, "acme", "workers"); err != nil {
		t.Fatal(err)
	}
	deploy := e.token(e.admin, client.CreateTokenRequest{Profile: "deploy", Org: "acme", App: "workers", Name: "seed"})
	m, err := e.as(deploy).CreateMachine(ctx, "workers", client.CreateMachineRequest{
		Name: "worker-1", Config: client.MachineConfig{Image: "registry.example/worker:1"}})
	if err != nil {
		t.Fatal(err)
	}
	e.machine = m.ID
	return e
}

// signup creates an account (with an organization when org is set) and
// returns an API client with its session.
func (e *env) signup(email, org string) *client.Client {
	e.t.Helper()
	ctx := context.Background()
	anon := client.New(e.url, nil)
	if _, err := anon.Signup(ctx, email, password, org); err != nil {
		e.t.Fatalf("signup %s: %v", email, err)
	}
	s, err := anon.Login(ctx, email, password)
	if err != nil {
		e.t.Fatalf("login %s: %v", email, err)
	}
	return client.New(e.url, &http.Client{Transport: client.NewTransport(e.url, s.Token, s.Secret)})
}

// member signs up an account without an organization, makes it a member
// of acme through the store, and returns a browser logged in as it.
func (e *env) member(email string) *browser {
	e.t.Helper()
	ctx := context.Background()
	e.signup(email, "")
	st := e.srv.Store()
	u, err := st.GetUserByEmail(ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	org, err := st.GetOrganizationBySlug(ctx, "acme")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := st.AddMember(ctx, store.Membership{OrgID: org.ID, UserID: u.ID, Role: store.RoleMember, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	b := e.browser()
	b.mustLogin(email)
	return b
}

// token creates a named token and returns its header.
func (e *env) token(c *client.Client, req client.CreateTokenRequest) string {
	e.t.Helper()
	tok, err := c.CreateToken(context.Background(), req)
	if err != nil {
		e.t.Fatalf("create %s token: %v", req.Profile, err)
	}
	return tok.Header
}

// as is an API client that presents a token.
func (e *env) as(header string) *client.Client {
	return client.New(e.url, &http.Client{Transport: headerTransport(header)})
}

type headerTransport string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", string(h))
	return http.DefaultTransport.RoundTrip(r)
}

// answer is a console response, read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

// browser is an HTTP client of the console that behaves like a browser of
// its pages: it keeps cookies, sends Origin and Sec-Fetch-Site for its
// forms, and does not follow redirects, so that tests see them.
type browser struct {
	e       *env
	cookies map[string]string
}

func (e *env) browser() *browser { return &browser{e: e, cookies: map[string]string{}} }

func (b *browser) do(method, path string, form url.Values, header http.Header) answer {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

// get fetches a page.
func (b *browser) get(path string) answer {
	b.e.t.Helper()
	return b.do("GET", path, nil, nil)
}

// post sends a form as the console's own page would: same origin.
func (b *browser) post(path string, form url.Values) answer {
	b.e.t.Helper()
	return b.do("POST", path, form, http.Header{"Origin": {b.e.url}, "Sec-Fetch-Site": {"same-origin"}})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token that a page of the session carries.
func (b *browser) csrf() string {
	b.e.t.Helper()
	a := b.get("/")
	m := csrfField.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		b.e.t.Fatalf("no CSRF token on the home page: %d %s", a.status, a.body)
	}
	return m[1]
}

// login logs in through the console's form and returns the answer to the
// form post.
func (b *browser) login(email, pw string) answer {
	b.e.t.Helper()
	page := b.get("/login")
	m := csrfField.FindStringSubmatch(page.body)
	if m == nil {
		b.e.t.Fatalf("login page without a form token: %s", page.body)
	}
	return b.post("/login", url.Values{"csrf": {m[1]}, "email": {email}, "password": {pw}})
}

// mustLogin logs in and fails the test unless it worked.
func (b *browser) mustLogin(email string) {
	b.e.t.Helper()
	if a := b.login(email, password); a.status != http.StatusSeeOther {
		b.e.t.Fatalf("login %s: %d %s", email, a.status, a.body)
	}
}

// sessionCookie is the name of the session cookie over plain HTTP.
const sessionCookie = "caveat-session"
