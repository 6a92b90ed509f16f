package server_test

// The end-to-end test of issue 3: a real server on 127.0.0.1:0 (SQLite in a
// temporary directory, or PostgreSQL when CAVEAT_TEST_POSTGRES_URL is set)
// with 2-second login discharges, driven by the caveat CLI in process.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/cli"
	"github.com/caveatdev/caveat/internal/testenv"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
)

type e2e struct {
	t       *testing.T
	dataDir string
	db      string
	cfgDir  string
	srv     *server.Server
	stop    func()
	logs    *bytes.Buffer
	// signupClosed starts the server as --signup=false does.
	signupClosed bool
}

func (e *e2e) start() {
	e.t.Helper()
	e.logs = &bytes.Buffer{}
	s, err := server.New(context.Background(), server.Config{
		Listen:       "127.0.0.1:0",
		DataDir:      e.dataDir,
		DB:           e.db,
		DischargeTTL: 2 * time.Second,
		Signup:       !e.signupClosed,
		Argon2:       identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Logger:       slog.New(slog.NewJSONHandler(e.logs, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.srv = s
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("server: %v", err)
		}
	}
}

// startLoggedIn starts a server (stopped when the test ends) on which ada
// has signed up as the admin of organization acme and logged in through
// the CLI, as most CLI tests begin.
func startLoggedIn(t *testing.T) *e2e {
	t.Helper()
	e := &e2e{t: t, dataDir: t.TempDir(), cfgDir: t.TempDir()}
	e.start()
	t.Cleanup(func() { e.stop() })
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme")
	e.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	return e
}

// caveat runs the CLI against the server and returns stdout, stderr and
// the exit status.
func (e *e2e) caveat(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"CAVEAT_CONFIG_DIR": e.cfgDir, "CAVEAT_API_URL": e.srv.URL()}
	code := cli.Main(args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), code
}

func (e *e2e) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.caveat(stdin, args...)
	if code != 0 {
		e.t.Fatalf("caveat %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// authorize asks the authority about a header and an access.
func (e *e2e) authorize(header, access string) (int, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"header": header, "access": json.RawMessage(access)})
	resp, err := http.Post(e.srv.URL()+"/v1/tokens/authorize", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func (e *e2e) config() map[string]string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.cfgDir, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestSignupClosed: a server started with --signup=false lets its first
// user sign up, as the README says, and refuses everyone after.
func TestSignupClosed(t *testing.T) {
	e := &e2e{t: t, dataDir: t.TempDir(), cfgDir: t.TempDir(), signupClosed: true}
	e.start()
	defer e.stop()
	_, errOut, code := e.caveat("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme", "--no-login")
	if code != 0 || !strings.Contains(errOut, "admin of organization acme") {
		t.Fatalf("first signup: exit %d\n%s", code, errOut)
	}
	_, errOut, code = e.caveat("battery staple horse\n", "auth", "signup", "--email", "bob@example.com", "--password-stdin", "--no-login")
	if code == 0 || !strings.Contains(errOut, "signup is closed on this server") {
		t.Fatalf("second signup: exit %d\n%s", code, errOut)
	}
}

func TestEndToEndSQLite(t *testing.T) {
	runEndToEnd(t, "")
}

func TestEndToEndPostgres(t *testing.T) {
	runEndToEnd(t, pgtest.FreshDatabase(t))
}

func runEndToEnd(t *testing.T, db string) {
	e := &e2e{t: t, dataDir: t.TempDir(), db: db, cfgDir: t.TempDir()}
	e.start()

	// Sign up (the first user administers a new organization) and log in.
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme")
	cfgFile := filepath.Join(e.cfgDir, "config.json")
	if st, err := os.Stat(cfgFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	e.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	if out := e.ok("", "auth", "whoami"); !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "acme (admin)") || !strings.Contains(out, "server: "+e.srv.URL()+"\n") {
		t.Fatalf("whoami: %s", out)
	}
	e.ok("", "apps", "create", "workers")
	deploy := strings.TrimSpace(e.ok("", "tokens", "create", "deploy", "-a", "workers", "--expiry", "1h", "--name", "autoscaler"))
	if !strings.HasPrefix(deploy, "FlyV1 fm2_") {
		t.Fatalf("deploy token: %q", deploy)
	}
	var apps []struct {
		ID    uint64 `json:"id"`
		OrgID uint64 `json:"org_id"`
	}
	json.Unmarshal([]byte(e.ok("", "apps", "list", "--json")), &apps)
	if len(apps) != 1 || apps[0].OrgID == 0 {
		t.Fatalf("apps: %v", apps)
	}
	access := func(action string) string {
		b, _ := json.Marshal(map[string]any{"orgid": apps[0].OrgID, "appid": apps[0].ID, "machine": "m1", "action": action})
		return string(b)
	}
	sessionBefore := e.config()["token"]

	// Past the 2-second discharges — once the server refuses the saved
	// session bundle as expired, polled rather than slept —, the deploy
	// token still authorizes, and the session keeps working because the
	// client renews its discharge.
	if !testenv.Eventually(10*time.Second, func() bool {
		code, body := e.authorize(sessionBefore, access("r"))
		return code == 401 && strings.Contains(body, "expired")
	}) {
		t.Fatal("the saved session bundle was not refused as expired within 10 s of its 2-second discharge")
	}
	if code, body := e.authorize(deploy, access("C")); code != 200 {
		t.Fatalf("deploy token after the discharges expired: %d %s", code, body)
	}
	if out := e.ok("", "tokens", "list"); !strings.Contains(out, "autoscaler") {
		t.Fatalf("tokens list through a renewed session: %s", out)
	}
	session := e.config()["token"]
	if session == sessionBefore {
		t.Fatal("the renewed session bundle was not saved")
	}
	if code, body := e.authorize(session, access("r")); code != 200 {
		t.Fatalf("renewed session: %d %s", code, body)
	}

	// The session token without its discharge is refused, naming it.
	b, err := caveat.ParseBundle(session)
	if err != nil {
		t.Fatal(err)
	}
	stripped := "FlyV1 " + b.Tokens[0].String()
	if code, body := e.authorize(stripped, access("r")); code != 401 || !strings.Contains(body, "discharge") {
		t.Fatalf("session without its discharge: %d %s", code, body)
	}

	// Offline, the deploy token is debugged and attenuated to rC on machines.
	_, dbg, _ := e.caveat("", "tokens", "debug", deploy)
	if !strings.Contains(dbg, "permission token") || !strings.Contains(dbg, "ValidityWindow") {
		t.Fatalf("debug: %s", dbg)
	}
	narrow := strings.TrimSpace(e.ok(`[{"type":"Machines","body":{"machines":{"":"rC"}}}]`, "tokens", "attenuate", "-t", deploy))
	if code, body := e.authorize(narrow, access("C")); code != 200 {
		t.Fatalf("rC token, start: %d %s", code, body)
	}
	if code, body := e.authorize(narrow, access("d")); code != 403 || !strings.Contains(body, "Machines") {
		t.Fatalf("rC token, destroy: %d %s", code, body)
	}

	// Revoked: refused on the next request, attenuated copies too.
	var list []struct{ ID string }
	json.Unmarshal([]byte(e.ok("", "tokens", "list", "--json")), &list)
	if len(list) != 1 {
		t.Fatalf("token list: %v", list)
	}
	e.ok("", "tokens", "revoke", list[0].ID)
	for _, h := range []string{deploy, narrow} {
		if code, body := e.authorize(h, access("r")); code != 401 || !strings.Contains(body, "revoked") {
			t.Fatalf("revoked token: %d %s", code, body)
		}
	}
	if _, errOut, code := e.caveat("", "tokens", "revoke", list[0].ID, "0f5a1d2e-0000-4000-8000-000000000001"); code == 0 ||
		!strings.Contains(errOut, "1 of 2 revocations failed") {
		t.Fatalf("revoking an unknown token: %d %s", code, errOut)
	}

	// Restart on the same data: everything is still there.
	e.stop()
	e.start()
	defer e.stop()
	e.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	out := e.ok("", "tokens", "list")
	if !strings.Contains(out, "autoscaler") || !strings.Contains(out, "deploy") {
		t.Fatalf("tokens after restart: %s", out)
	}
	if out := e.ok("", "apps", "list"); !strings.Contains(out, "workers") {
		t.Fatalf("apps after restart: %s", out)
	}

	// Logged out: the session stops working at once, although its current
	// discharge has not expired yet.
	e.ok("", "orgs", "list") // renews the discharge if needed
	fresh := e.config()["token"]
	e.ok("", "auth", "logout")
	if code, body := e.authorize(fresh, access("r")); code != 401 || !strings.Contains(body, "logged out") {
		t.Fatalf("after logout: %d %s", code, body)
	}
	if e.config()["token"] != "" || e.config()["session_secret"] != "" {
		t.Fatal("logout left the session in the config file")
	}

	// Nothing secret was logged.
	for _, secret := range []string{"correct horse", deploy[6:40], "cvs1_"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the server logged %q", secret)
		}
	}
}

// TestWebLogin drives "caveat auth login --web": the CLI prints a URL and
// polls; a browser (here an HTTP client posting the page's form) logs in.
func TestWebLogin(t *testing.T) {
	e := &e2e{t: t, dataDir: t.TempDir(), cfgDir: t.TempDir()}
	e.start()
	defer e.stop()
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--no-login")

	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	pr, pw := io.Pipe()
	// The "browser" records the URL it was asked to open.
	opened := filepath.Join(t.TempDir(), "opened")
	browser := filepath.Join(t.TempDir(), "browser.sh")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+opened+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	go func() {
		var out bytes.Buffer
		env := map[string]string{"CAVEAT_CONFIG_DIR": e.cfgDir, "CAVEAT_API_URL": e.srv.URL(), "BROWSER": browser}
		code := cli.Main([]string{"auth", "login", "--web"}, strings.NewReader(""), &out, pw,
			func(k string) string { return env[k] })
		pw.Close()
		done <- result{out: out.String(), code: code}
	}()
	// Read the URL the CLI prints, then "open" it.
	var userURL string
	var errOut strings.Builder
	buf := make([]byte, 4096)
	for userURL == "" {
		n, err := pr.Read(buf)
		errOut.Write(buf[:n])
		for _, line := range strings.Split(errOut.String(), "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "http") {
				userURL = l
			}
		}
		if err != nil {
			t.Fatalf("the CLI printed no URL: %q", errOut.String())
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.Contains(errOut.String(), "opened the login page in your browser") {
		t.Errorf("the CLI did not say it opened the browser: %q", errOut.String())
	}
	if !testenv.Eventually(5*time.Second, func() bool {
		b, _ := os.ReadFile(opened)
		return string(b) == userURL
	}) {
		t.Fatalf("the browser was not asked to open %s", userURL)
	}
	if code, body := get(t, userURL); code != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("login page: %d %s", code, body)
	}
	form := url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}
	resp, err := http.PostForm(userURL, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("posting the login form: %d", resp.StatusCode)
	}
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("auth login --web: exit %d", r.code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("auth login --web did not finish")
	}
	if out := e.ok("", "auth", "whoami"); !strings.Contains(out, "ada@example.com") {
		t.Fatalf("whoami after the web login: %s", out)
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKeyRotationCLI: caveat orgs rotate-key, keys and retire-key.
func TestKeyRotationCLI(t *testing.T) {
	e := &e2e{t: t, dataDir: t.TempDir(), cfgDir: t.TempDir()}
	e.start()
	defer e.stop()
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme")
	old := strings.TrimSpace(e.ok("", "tokens", "create", "readonly"))
	var orgs []struct {
		ID uint64 `json:"id"`
	}
	json.Unmarshal([]byte(e.ok("", "orgs", "list", "--json")), &orgs)
	if len(orgs) != 1 {
		t.Fatalf("orgs: %v", orgs)
	}
	access := fmt.Sprintf(`{"orgid": %d, "action": "r"}`, orgs[0].ID)
	e.ok("", "orgs", "rotate-key", "acme")
	fresh := strings.TrimSpace(e.ok("", "tokens", "create", "readonly"))
	for _, h := range []string{old, fresh} {
		if code, body := e.authorize(h, access); code != 200 {
			t.Fatalf("after rotation: %d %s", code, body)
		}
	}
	var keys []struct {
		KID   string `json:"kid"`
		State string `json:"state"`
	}
	json.Unmarshal([]byte(e.ok("", "orgs", "keys", "acme", "--json")), &keys)
	if len(keys) != 2 || keys[0].State != "rotated" || keys[1].State != "active" {
		t.Fatalf("keys: %+v", keys)
	}
	if _, errOut, code := e.caveat("", "orgs", "retire-key", "acme", keys[1].KID); code == 0 || !strings.Contains(errOut, "rotate the key first") {
		t.Fatalf("retiring the active key: %d %s", code, errOut)
	}
	e.ok("", "orgs", "retire-key", "acme", keys[0].KID)
	if code, body := e.authorize(old, access); code != 401 || !strings.Contains(body, "retired") {
		t.Fatalf("token of the retired key: %d %s", code, body)
	}
	if code, body := e.authorize(fresh, access); code != 200 {
		t.Fatalf("token of the active key: %d %s", code, body)
	}
}
