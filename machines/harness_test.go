package machines_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/postgres"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/caveatdev/caveat/store/sqlite/sqlitetest"
)

const (
	testLocation = "https://caveat.test/v1"
	testLogin    = "https://caveat.test/aaa/v1"
	// transition is the simulated transition time of the tests. The
	// clock is real time plus what the tests advance it by, so a
	// transition must be long enough that a busy machine's delays between
	// two requests (tens of milliseconds under -race with other packages'
	// tests) cannot carry a machine across one: 50 ms did, now and then.
	transition = 400 * time.Millisecond
)

// backend is a store the tests run on.
type backend interface {
	store.Store
	store.Machines
}

// backends returns the stores to run a test on: SQLite, and PostgreSQL
// when CAVEAT_TEST_POSTGRES_URL is set.
func forEachBackend(t *testing.T, fn func(t *testing.T, open func(t *testing.T) backend)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T) backend {
			db, _ := sqlitetest.Open(t)
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		pgtest.ServerURL(t)
		fn(t, func(t *testing.T) backend {
			db, err := postgres.Open(context.Background(), pgtest.FreshDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

// sqliteOnly opens a SQLite store, for tests that are not about the
// backend.
func sqliteOnly(t testing.TB) (backend, string) {
	t.Helper()
	return sqlitetest.Open(t)
}

// clock is the real clock plus an offset that tests move forward, so that
// waiting is real and expiry needs no sleeping.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// env is a Machines API on a real store, with a real authority and the
// Local authenticator, served over HTTP.
type env struct {
	t    testing.TB
	db   backend
	clk  *clock
	kr   *keyring.Keyring
	auth *authority.Service
	svc  *machines.Service
	srv  *httptest.Server
	logs *bytes.Buffer

	user       store.User
	org        store.Organization
	app, other store.App
	// deploy is a deploy token of app; full has every action on it.
	deploy string
}

func newEnv(t testing.TB, db backend) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: db, clk: &clock{}, logs: &bytes.Buffer{}}
	e.kr = keyring.NewKeyring(keyring.NewMasterKey(), db, e.clk.now)
	var err error
	e.auth, err = authority.New(authority.Config{Store: db, Keyring: e.kr, Location: testLocation, LoginLocation: testLogin, Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = machines.New(machines.Config{Store: db, Auth: e.auth, TransitionTime: transition,
		WaitPoll: 20 * time.Millisecond, Now: e.clk.now, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(e.srv.Close)
	e.user, e.org = e.signup("ada@example.com", "acme")
	if e.app, err = db.CreateApp(ctx, store.NewApp{OrgID: e.org.ID, Name: "workers", CreatedAt: e.clk.now()}); err != nil {
		t.Fatal(err)
	}
	if e.other, err = db.CreateApp(ctx, store.NewApp{OrgID: e.org.ID, Name: "other", CreatedAt: e.clk.now()}); err != nil {
		t.Fatal(err)
	}
	e.deploy = e.mint(e.user, "deploy", e.app)
	return e
}

// signup makes a user who is admin of a new organization with a root key.
func (e *env) signup(email, org string) (store.User, store.Organization) {
	e.t.Helper()
	u, o, err := e.db.CreateUserWithOrganization(context.Background(), store.Signup{
		User: store.NewUser{Email: email, PasswordHash: "x", CreatedAt: e.clk.now()}, OrganizationSlug: org})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.auth.EnsureRootKey(context.Background(), o.ID); err != nil {
		e.t.Fatal(err)
	}
	return u, o
}

// mint returns a named token's header: profile for app (or the whole
// organization of app when the profile is org-wide).
func (e *env) mint(u store.User, profile string, app store.App) string {
	e.t.Helper()
	req := authority.MintRequest{Profile: profile, OrgID: app.OrgID, Expiry: time.Hour}
	if profile == authority.ProfileDeploy {
		req.AppID = app.ID
	}
	m, err := e.auth.Mint(context.Background(), &authority.Principal{UserID: u.ID, SessionID: "test"}, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return "FlyV1 " + m.Token.String()
}

// session logs a user in as the identity service and the client would:
// a session token with its login discharge.
func (e *env) session(uid uint64) string {
	e.t.Helper()
	now := e.clk.now()
	s, err := e.kr.MintSession(uid, now, now.Add(24*time.Hour), testLocation, testLogin)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.CreateSession(context.Background(), store.Session{ID: s.ID, UserID: uid, CreatedAt: now, ExpiresAt: s.Expires}); err != nil {
		e.t.Fatal(err)
	}
	tk, err := caveat.OpenTicket(e.kr.LoginTicketKey(), s.Token.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		e.t.Fatal(err)
	}
	att := auth.FlyioUserID(uid)
	d, err := tk.Discharge(testLogin, caveat.NewValidityWindow(now, time.Hour), &att)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := d.Bind(s.Token); err != nil {
		e.t.Fatal(err)
	}
	return "FlyV1 " + s.Token.String() + "," + d.String()
}

// machinesOnly attenuates a token offline to mask on every machine, as
// `caveat tokens attenuate` with [{"type":"Machines","body":{"machines":{"":MASK}}}].
func machinesOnly(t testing.TB, header string, mask resset.Action) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tokens[0].Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": mask}}); err != nil {
		t.Fatal(err)
	}
	return b.Header()
}

// machinesOnlyIDs attenuates a token offline to every action on the given
// machines only.
func machinesOnlyIDs(t testing.TB, header string, ids ...string) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	set := resset.ResourceSet[string]{}
	for _, id := range ids {
		set[id] = resset.ActionAll
	}
	if err := b.Tokens[0].Add(&flyio.Machines{Machines: set}); err != nil {
		t.Fatal(err)
	}
	return b.Header()
}

// reply is an answer of the API.
type reply struct {
	status int
	body   []byte
}

// json decodes the body into v.
func (r reply) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d is not the expected JSON: %v\n%s", r.status, err, r.body)
	}
}

// errMsg is the answer's "error".
func (r reply) errMsg(t testing.TB) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("answer %d has no error: %s", r.status, r.body)
	}
	return e.Error
}

// machinePath is the path of an app's machines, or of one of them plus
// more.
func machinePath(app string, rest ...string) string {
	return "/v1/apps/" + app + "/machines" + strings.Join(rest, "")
}

// do sends a request: body is nil, a string sent as is, or a value sent
// as JSON; headers are name, value pairs.
func (e *env) do(method, path, token string, body any, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	// 503 is the answer when a token cannot be checked; any other 5xx is
	// a bug.
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		e.t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && resp.StatusCode != http.StatusNoContent {
		e.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return reply{resp.StatusCode, raw}
}

// want fails unless the reply has the status and, for an error, a message
// containing each of msgs.
func (e *env) want(r reply, status int, msgs ...string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if len(msgs) > 0 {
		got := r.errMsg(e.t)
		for _, m := range msgs {
			if !strings.Contains(got, m) {
				e.t.Fatalf("error %q does not contain %q", got, m)
			}
		}
	}
}

// create makes a machine with the full deploy token and returns it.
func (e *env) create(app string, req map[string]any) api.Machine {
	e.t.Helper()
	if req["config"] == nil {
		req["config"] = map[string]any{"image": "registry.example/worker:1"}
	}
	r := e.do("POST", machinePath(app), e.deploy, req)
	e.want(r, http.StatusOK)
	var m api.Machine
	r.json(e.t, &m)
	return m
}

// get returns a machine as the full deploy token sees it.
func (e *env) get(id string) api.Machine {
	e.t.Helper()
	r := e.do("GET", machinePath("workers", "/", id), e.deploy, nil)
	e.want(r, http.StatusOK)
	var m api.Machine
	r.json(e.t, &m)
	return m
}

// settle moves the clock past the end of any transition.
func (e *env) settle() { e.clk.advance(3 * transition) }
