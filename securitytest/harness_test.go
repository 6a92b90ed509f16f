package securitytest

// The harness: seeds and iteration counts, a settable clock, real servers
// in process, an authority over a SQLite store without HTTP, and clients.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/internal/keyfile"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// The environment variables that set the seed and the number of cases.
const (
	EnvSeed       = "CAVEAT_SECURITY_SEED"
	EnvIterations = "CAVEAT_SECURITY_ITERATIONS"
)

var (
	seedFlag       = flag.String("security.seed", "", "seed of the random cases (default $"+EnvSeed+", or 1)")
	iterationsFlag = flag.Int("security.iterations", 0, "cases of every property (default $"+EnvIterations+", or each property's short form)")
)

// defaultSeed is the seed when none is given, so that a plain run repeats.
const defaultSeed = 1

func baseSeed(t testing.TB) uint64 {
	t.Helper()
	s := *seedFlag
	if s == "" {
		s = os.Getenv(EnvSeed)
	}
	if s == "" {
		return defaultSeed
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("seed %q is not an unsigned integer", s)
	}
	return n
}

// newRand returns the test's random source: the base seed mixed with the
// test's name, so that every test has its own sequence and adding a test
// changes no other's. If the test fails, the seed and a command repeating
// the test are printed.
func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := baseSeed(t)
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: repeat with  %s=%d go test -count=1 -run '%s' ./securitytest", seed, EnvSeed, seed, runPattern(t.Name()))
		}
	})
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// runPattern is the -run pattern of exactly the named test.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// iterations is the number of cases a property runs: short by default,
// or what -security.iterations or CAVEAT_SECURITY_ITERATIONS says.
func iterations(t testing.TB, short int) int {
	t.Helper()
	n := *iterationsFlag
	if n == 0 {
		if s := os.Getenv(EnvIterations); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v <= 0 {
				t.Fatalf("%s=%q is not a positive number", EnvIterations, s)
			}
			n = v
		}
	}
	if n == 0 {
		n = short
	}
	return n
}

// newClock is a settable clock for the services under test, so that
// expiry and rate limits need no sleeping. It starts at a whole second.
func newClock() *fake.Clock { return fake.NewClock(time.Now().Truncate(time.Second)) }

// cheapArgon2 keeps password hashing fast in tests.
var cheapArgon2 = identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// testServer is a real caveat server running in this process.
type testServer struct {
	t       *testing.T
	srv     *server.Server
	url     string
	dataDir string
	db      string // the database of serverOptions
	clock   *fake.Clock
	logs    *fake.Buffer
	stopped bool
	stopFn  func() error
}

type serverOptions struct {
	// db is a SQLite path or a postgres:// URL; empty means the data
	// directory's SQLite file.
	db string
	// dischargeTTL is the lifetime of login discharges (the server's
	// default when 0).
	dischargeTTL time.Duration
	// replicaOf, when set, makes the new server a replica of that one: the
	// same data directory (master key), database, clock and public URL.
	replicaOf *testServer
}

// startServer starts a server on 127.0.0.1:0 whose clock is the returned
// server's clock, and stops it when the test ends.
func startServer(t *testing.T, opt serverOptions) *testServer {
	t.Helper()
	ts := &testServer{t: t, dataDir: t.TempDir(), clock: newClock(), logs: &fake.Buffer{}}
	publicURL := ""
	if p := opt.replicaOf; p != nil {
		ts.dataDir, ts.clock, opt.db, publicURL = p.dataDir, p.clock, p.db, p.url
	}
	ts.db = opt.db
	srv, err := server.New(context.Background(), server.Config{
		Listen:       "127.0.0.1:0",
		DataDir:      ts.dataDir,
		DB:           opt.db,
		PublicURL:    publicURL,
		DischargeTTL: opt.dischargeTTL,
		Signup:       true,
		Argon2:       cheapArgon2,
		Logger:       slog.New(slog.NewJSONHandler(ts.logs, nil)),
		Now:          ts.clock.Now,
	})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts.srv, ts.url = srv, "http://"+srv.Addr().String()
	ts.stopFn = func() error {
		cancel()
		return <-done
	}
	t.Cleanup(ts.stop)
	return ts
}

// stop shuts the server down (once).
func (s *testServer) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	if err := s.stopFn(); err != nil {
		s.t.Errorf("server: %v", err)
	}
}

func (s *testServer) tokenLocation() string { return s.srv.TokenLocation() }
func (s *testServer) loginLocation() string { return s.srv.LoginLocation() }

// anon is a client without credentials.
func (s *testServer) anon() *client.Client { return client.New(s.url, nil) }

func (s *testServer) signup(email, password, org string) client.SignupResult {
	s.t.Helper()
	r, err := s.anon().Signup(context.Background(), email, password, org)
	if err != nil {
		s.t.Fatalf("signup %s: %v", email, err)
	}
	return r
}

// session is a login: its session token, secret, a bundle with a fresh
// discharge, and a client that sends it.
type session struct {
	client.Session
	bundle string // "FlyV1 session-token,discharge"
	api    *client.Client
}

func (s *testServer) login(email, password string) *session {
	s.t.Helper()
	ctx := context.Background()
	ls, err := s.anon().Login(ctx, email, password)
	if err != nil {
		s.t.Fatalf("login %s: %v", email, err)
	}
	tr := s.transport(ls.Token, ls.Secret)
	bundle, err := tr.Renew(ctx, false)
	if err != nil {
		s.t.Fatalf("first discharge of %s's session: %v", email, err)
	}
	return &session{Session: ls, bundle: bundle, api: client.New(s.url, &http.Client{Transport: tr})}
}

// transport keeps a bundle's login discharges fresh on the server's clock.
func (s *testServer) transport(bundle, secret string) *client.Transport {
	tr := client.NewTransport(s.url, bundle, secret)
	tr.Now = s.clock.Now
	return tr
}

// discharged fetches a login discharge for the permission token of header
// with a session secret, and returns the bundle with it.
func (s *testServer) discharged(header, secret string) (string, error) {
	return s.transport(header, secret).Renew(context.Background(), false)
}

// post sends a JSON body without credentials and returns the status and
// the answer.
func (s *testServer) post(path string, body any) (int, string) {
	s.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		s.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// authorize asks the authority whether header allows a: 200, or a refusal
// (401 or 403). Any other answer fails the test.
func (s *testServer) authorize(header string, a *flyio.Access) (int, string) {
	s.t.Helper()
	code, body := s.post("/v1/tokens/authorize", map[string]any{"header": header, "access": a})
	if code != http.StatusOK && code != http.StatusUnauthorized && code != http.StatusForbidden {
		s.t.Fatalf("authorize: unexpected answer %d %s", code, body)
	}
	return code, body
}

// authenticate asks the authority who presents header: 200 or 401. Any
// other answer fails the test.
func (s *testServer) authenticate(header string) (int, string) {
	s.t.Helper()
	code, body := s.post("/v1/tokens/authenticate", map[string]any{"header": header})
	if code != http.StatusOK && code != http.StatusUnauthorized {
		s.t.Fatalf("authenticate: unexpected answer %d %s", code, body)
	}
	return code, body
}

// keyring opens the server's keys with its master key, as another replica
// would: for verifying offline and for knowing what the keys are.
func (s *testServer) keyring() *keyring.Keyring {
	s.t.Helper()
	return keyring.NewKeyring(readMasterKey(s.t, filepath.Join(s.dataDir, "master.key")), s.srv.Store(), s.clock.Now)
}

func readMasterKey(t testing.TB, path string) keyring.MasterKey {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := keyfile.Decode(text)
	if err != nil {
		t.Fatalf("master key file: %v", err)
	}
	k, err := keyring.ParseMasterKey(raw)
	if err != nil {
		t.Fatalf("master key file: %v", err)
	}
	return k
}

// trusted is what the authority trusts: the login service's ticket key.
func trusted(kr *keyring.Keyring, loginLocation string) caveat.TrustedThirdParties {
	return caveat.TrustedThirdParties{loginLocation: {kr.LoginTicketKey()}}
}

// localAuthority is an authority.Service over a SQLite store, without
// HTTP, with one user who is admin of one organization with two apps.
type localAuthority struct {
	t             *testing.T
	store         *sqlite.DB
	keyring       *keyring.Keyring
	svc           *authority.Service
	clock         *fake.Clock
	location      string
	loginLocation string
	user          store.User
	org           store.Organization
	apps          []store.App
	admin         *authority.Principal // the user, as a session principal
}

func newLocalAuthority(t *testing.T) *localAuthority {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "caveat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	la := &localAuthority{t: t, store: db, clock: newClock(),
		location: "https://caveat.test/v1", loginLocation: "https://caveat.test/aaa/v1"}
	la.keyring = keyring.NewKeyring(keyring.NewMasterKey(), db, la.clock.Now)
	la.svc, err = authority.New(authority.Config{Store: db, Keyring: la.keyring, Location: la.location,
		LoginLocation: la.loginLocation, Now: la.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	la.user, la.org, err = db.CreateUserWithOrganization(ctx, store.Signup{
		User:             store.NewUser{Email: "ada@example.com", PasswordHash: "not a real hash", CreatedAt: la.clock.Now()},
		OrganizationSlug: "acme",
	})
	if err != nil {
		t.Fatal(err)
	}
	la.admin = &authority.Principal{UserID: la.user.ID, SessionID: "local-admin"}
	for _, name := range []string{"web", "worker"} {
		a, err := la.svc.CreateApp(ctx, la.admin, la.org.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		la.apps = append(la.apps, a)
	}
	return la
}

// mint mints a named token through the authority.
func (la *localAuthority) mint(req authority.MintRequest) string {
	la.t.Helper()
	req.OrgID = la.org.ID
	m, err := la.svc.Mint(context.Background(), la.admin, req)
	if err != nil {
		la.t.Fatalf("mint %s: %v", req.Profile, err)
	}
	return "FlyV1 " + m.Token.String()
}

// session logs the user in without the identity service: a session token
// from the keyring, its record, and a discharge made and bound here as
// the login service would.
func (la *localAuthority) session() string {
	la.t.Helper()
	ctx := context.Background()
	now := la.clock.Now()
	ses, err := la.keyring.MintSession(la.user.ID, now, now.Add(24*time.Hour), la.location, la.loginLocation)
	if err != nil {
		la.t.Fatal(err)
	}
	if err := la.store.CreateSession(ctx, store.Session{ID: ses.ID, UserID: la.user.ID, CreatedAt: now, ExpiresAt: ses.Expires}); err != nil {
		la.t.Fatal(err)
	}
	tickets := ses.Token.ThirdPartyTickets()
	if len(tickets) != 1 {
		la.t.Fatalf("a session token has %d third-party caveats, want 1", len(tickets))
	}
	ticket, err := caveat.OpenTicket(la.keyring.LoginTicketKey(), tickets[0].Ticket)
	if err != nil {
		la.t.Fatal(err)
	}
	uid := auth.FlyioUserID(la.user.ID)
	d, err := ticket.Discharge(la.loginLocation, caveat.NewValidityWindow(now, 10*time.Minute), &uid)
	if err != nil {
		la.t.Fatal(err)
	}
	if err := d.Bind(ses.Token); err != nil {
		la.t.Fatal(err)
	}
	return "FlyV1 " + ses.Token.String() + "," + d.String()
}

// verify verifies a bundle offline, as the authority does before its own
// checks, and returns the verified caveats.
func (la *localAuthority) verify(header string) (caveat.CaveatSet, error) {
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return nil, err
	}
	v, err := b.Verify(la.location, la.keyring.KeyFunc(context.Background()), trusted(la.keyring, la.loginLocation))
	if err != nil {
		return nil, err
	}
	return v.Caveats, nil
}
