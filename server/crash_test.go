package server_test

// Crash safety on SQLite (issue 5): the real caveat binary is killed with
// SIGKILL while it mints tokens; after a restart on the same data
// directory, every mint that returned success is there and works.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/testenv"

	"github.com/caveatdev/caveat/client"
	_ "modernc.org/sqlite"
)

// The long form of TestCrashSafetySQLite: CAVEAT_CRASH_ROUNDS kills
// (default 1), each during a run toward CAVEAT_CRASH_MINTS mints (default
// 1000), at a point drawn from CAVEAT_CRASH_SEED (default 1).
const (
	envCrashRounds = "CAVEAT_CRASH_ROUNDS"
	envCrashMints  = "CAVEAT_CRASH_MINTS"
	envCrashSeed   = "CAVEAT_CRASH_SEED"
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive number", name, s)
	}
	return n
}

// crashPublicURL is the servers' public URL, the same across restarts so
// that the tokens' location stays the same; the client dials the current
// process whatever the URL's host.
const crashPublicURL = "http://caveat-crash.test"

// mintRecord is a mint that returned success.
type mintRecord struct {
	id      string
	profile string
	header  string
}

// TestCrashSafetySQLite: kill -9 during 1000 mints on SQLite, then every
// mint that returned success is listed and authorizes after a restart.
//
// The caveat binary is built (with -race when the test is) and run as
// "caveat server" on 127.0.0.1:0 with a data directory in a temporary
// directory. Through the HTTP API (package client) a user signs up, logs
// in, creates an app, and four workers mint tokens of every profile toward
// 1000; after 25 to 45 % of them have succeeded, the process is killed
// with SIGKILL, with mints in flight. The server is started again on the
// same directory: every recorded mint must be in GET /v1/tokens, unrevoked,
// with its profile, and must be allowed by POST /v1/tokens/authorize an
// access its profile allows; the database must pass PRAGMA
// integrity_check. Mints in flight at the kill may or may not have been
// committed; they are counted, not required.
//
// CAVEAT_CRASH_ROUNDS=N kills the server N times, checking everything
// recorded so far after each restart; CAVEAT_CRASH_MINTS sets the mints of
// each round, CAVEAT_CRASH_SEED the kill points.
func TestCrashSafetySQLite(t *testing.T) {
	rounds := envInt(t, envCrashRounds, 1)
	total := envInt(t, envCrashMints, 1000)
	seed := uint64(envInt(t, envCrashSeed, 1))
	r := rand.New(rand.NewPCG(seed, 0x63726173680a))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("repeat with %s=%d %s=%d %s=%d go test -count=1 -run '^TestCrashSafetySQLite$' ./server",
				envCrashSeed, seed, envCrashRounds, rounds, envCrashMints, total)
		}
	})

	bin := buildCaveat(t)
	dataDir := t.TempDir()
	const email, password = "ada@example.com", "correct horse battery"
	var recorded []mintRecord
	var orgID, appID uint64

	for round := range rounds + 1 {
		p := startCaveat(t, bin, dataDir)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		anon := client.New(crashPublicURL, p.httpClient())
		if round == 0 {
			res, err := anon.Signup(ctx, email, password, "acme")
			if err != nil {
				t.Fatalf("signup: %v", err)
			}
			orgID = res.Organization.ID
		}
		api := p.login(t, ctx, email, password)
		if round == 0 {
			app, err := api.CreateApp(ctx, "acme", "workers")
			if err != nil {
				t.Fatalf("create app: %v", err)
			}
			appID = app.ID
		} else {
			checkRecorded(t, ctx, api, anon, recorded, orgID, appID, round)
		}
		if round == rounds {
			cancel()
			p.stop(t)
			break
		}
		killAt := total * (25 + r.IntN(21)) / 100
		start := time.Now()
		minted := mintUntilKilled(t, ctx, api, p, total, killAt)
		t.Logf("round %d: %d mints succeeded in %s before SIGKILL (at %d)", round+1, len(minted), time.Since(start).Round(time.Millisecond), killAt)
		recorded = append(recorded, minted...)
		cancel()
	}

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "caveat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity check of the database after %d kills: %q %v", rounds, integrity, err)
	}
}

// raceBuild reports whether this test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// buildCaveat builds ./cmd/caveat into a temporary directory, with -race
// when this test binary has it (so that the build reuses its packages and
// a data race in the server fails the test).
func buildCaveat(t *testing.T) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			testenv.Missing(t, "no go command to build the caveat binary with")
		}
	}
	bin := filepath.Join(t.TempDir(), "caveat")
	args := []string{"build", "-o", bin}
	if raceBuild() {
		args = append(args, "-race")
	}
	args = append(args, "github.com/caveatdev/caveat/cmd/caveat")
	start := time.Now()
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built the caveat binary in %s (race detector: %v)", time.Since(start).Round(time.Millisecond), raceBuild())
	return bin
}

// caveatProcess is a "caveat server" process.
type caveatProcess struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	state  *os.ProcessState

	mu     sync.Mutex
	stderr strings.Builder
}

func (p *caveatProcess) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startCaveat starts the server on the data directory and waits until it
// listens.
func startCaveat(t *testing.T, bin, dataDir string) *caveatProcess {
	t.Helper()
	p := &caveatProcess{exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "server", "--listen", "127.0.0.1:0", "--data", dataDir, "--public-url", crashPublicURL)
	p.cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "caveat server listening" {
				listening <- l.Addr
			}
		}
		io.Copy(io.Discard, stderr)
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.logs(), "DATA RACE") {
			t.Errorf("the server had a data race:\n%s", p.logs())
		}
	})
	select {
	case p.addr = <-listening:
	case <-p.exited:
		t.Fatalf("the server exited before listening:\n%s", p.logs())
	case <-time.After(time.Minute):
		t.Fatalf("the server did not say it listens within a minute:\n%s", p.logs())
	}
	return p
}

// httpClient reaches this process whatever the URL's host.
func (p *caveatProcess) httpClient() *http.Client {
	return &http.Client{Transport: p.transport(), Timeout: time.Minute}
}

func (p *caveatProcess) transport() *http.Transport {
	var d net.Dialer
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, p.addr)
		},
		MaxIdleConnsPerHost: 16,
	}
}

// login logs in and returns a client that sends the session bundle,
// fetching its discharge.
func (p *caveatProcess) login(t *testing.T, ctx context.Context, email, password string) *client.Client {
	t.Helper()
	s, err := client.New(crashPublicURL, p.httpClient()).Login(ctx, email, password)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, p.logs())
	}
	tr := client.NewTransport(crashPublicURL, s.Token, s.Secret)
	tr.Base = p.transport()
	return client.New(crashPublicURL, &http.Client{Transport: tr, Timeout: time.Minute})
}

// kill sends SIGKILL and waits for the process to die of it.
func (p *caveatProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	<-p.exited
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the server did not die of SIGKILL: %v\n%s", p.state, p.logs())
	}
}

// stop shuts the server down gracefully.
func (p *caveatProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not stop within 30 s of SIGTERM:\n%s", p.logs())
	}
	if !p.state.Success() {
		t.Errorf("the server exited with %v after SIGTERM:\n%s", p.state, p.logs())
	}
}

// profiles are minted in turn; each has an access it allows.
var crashProfiles = []string{"org", "readonly", "deploy", "machine-exec"}

func profileAccess(profile string, orgID, appID uint64) json.RawMessage {
	a := map[string]any{"orgid": orgID, "action": "r"}
	switch profile {
	case "deploy":
		a["appid"] = appID
	case "machine-exec":
		a["appid"], a["machine"], a["command"], a["action"] = appID, "148ed21f2e9e89", []string{"ls", "-l"}, "C"
	}
	b, _ := json.Marshal(a)
	return b
}

// mintUntilKilled mints with four workers toward total and kills the
// server with SIGKILL once killAt mints have succeeded. It returns every
// mint that returned success, including those that answered after the
// kill was decided.
func mintUntilKilled(t *testing.T, ctx context.Context, api *client.Client, p *caveatProcess, total, killAt int) []mintRecord {
	t.Helper()
	var (
		mu       sync.Mutex
		minted   []mintRecord
		issued   atomic.Int64
		killed   atomic.Bool
		failures []error
		wg       sync.WaitGroup
	)
	killNow := make(chan struct{})
	var once sync.Once
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(issued.Add(1))
				if n > total {
					return
				}
				profile := crashProfiles[n%len(crashProfiles)]
				req := client.CreateTokenRequest{Profile: profile, Org: "acme", Name: fmt.Sprintf("crash-%d", n)}
				if profile == "deploy" || profile == "machine-exec" {
					req.App = "workers"
				}
				tok, err := api.CreateToken(ctx, req)
				if err != nil {
					if !killed.Load() {
						mu.Lock()
						failures = append(failures, fmt.Errorf("mint %d before the kill: %w", n, err))
						mu.Unlock()
						once.Do(func() { close(killNow) })
					}
					return
				}
				mu.Lock()
				minted = append(minted, mintRecord{id: tok.ID, profile: profile, header: tok.Header})
				if len(minted) == killAt {
					once.Do(func() { close(killNow) })
				}
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-killNow:
	case <-done:
	}
	killed.Store(true)
	p.kill(t)
	<-done
	if len(failures) > 0 {
		t.Fatalf("%d mints failed before the kill, the first: %v\n%s", len(failures), failures[0], p.logs())
	}
	if len(minted) < killAt {
		t.Fatalf("only %d mints succeeded before the kill at %d", len(minted), killAt)
	}
	return minted
}

// checkRecorded checks, after a restart, that every recorded mint is
// listed, unrevoked, with its profile, and authorizes.
func checkRecorded(t *testing.T, ctx context.Context, api, anon *client.Client, recorded []mintRecord, orgID, appID uint64, round int) {
	t.Helper()
	start := time.Now()
	list, err := client.Collect(api.Tokens(ctx, client.TokenQuery{Org: "acme", Expired: true}, client.Page{}))
	if err != nil {
		t.Fatalf("list tokens after the restart: %v", err)
	}
	listed := map[string]client.Token{}
	for _, tok := range list {
		if _, dup := listed[tok.ID]; dup {
			t.Errorf("token %s is listed twice", tok.ID)
		}
		listed[tok.ID] = tok
	}
	mine := map[string]bool{}
	var lost []string
	for _, m := range recorded {
		mine[m.id] = true
		tok, ok := listed[m.id]
		switch {
		case !ok:
			lost = append(lost, fmt.Sprintf("token %s (%s), whose mint returned success, is not listed", m.id, m.profile))
		case tok.Profile != m.profile || tok.RevokedAt != nil:
			lost = append(lost, fmt.Sprintf("token %s is listed as %+v, want an unrevoked %s token", m.id, tok, m.profile))
		}
	}
	reportSome(t, fmt.Sprintf("after restart %d", round), lost)
	inFlight := 0
	for id := range listed {
		if !mine[id] {
			inFlight++
		}
	}

	var mu sync.Mutex
	var refused []string
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(recorded) {
					return
				}
				m := recorded[i]
				if err := anon.Authorize(ctx, m.header, profileAccess(m.profile, orgID, appID)); err != nil {
					mu.Lock()
					refused = append(refused, fmt.Sprintf("%s (%s): %v", m.id, m.profile, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	reportSome(t, fmt.Sprintf("after restart %d: a recorded token is refused", round), refused)
	t.Logf("after restart %d: %d recorded mints checked, %d refused (%d more tokens listed: mints in flight at a kill that committed); in %s",
		round, len(recorded), len(refused), inFlight, time.Since(start).Round(time.Millisecond))
}

// reportSome reports the first ten problems, and how many more there are.
func reportSome(t *testing.T, prefix string, problems []string) {
	t.Helper()
	for i, p := range problems {
		if i == 10 {
			t.Errorf("%s: … and %d more", prefix, len(problems)-10)
			return
		}
		t.Errorf("%s: %s", prefix, p)
	}
}
