package loadtest_test

// Prepare, Run and Check against a server in this process, on SQLite: no
// PostgreSQL needed, and the load code runs under the race detector.

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/loadtest"
	"github.com/caveatdev/caveat/server"
)

// startServer runs a server on SQLite in a temporary directory and
// returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	return servertest.Run(t, server.Config{DataDir: t.TempDir(), Signup: true, MachineTransitionTime: 20 * time.Millisecond}).URL()
}

// deadURL is a URL on which nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestRunInProcess runs the mix for a second against one live server and
// one URL where nothing listens: every request that met the dead URL was
// retried on the live one, so there is no error; the record holds mints
// and revocations, and Check finds them all as they should be. Then Check
// is given records that lie, and must say so.
func TestRunInProcess(t *testing.T) {
	live, dead := startServer(t), deadURL(t)
	ctx := context.Background()
	target := loadtest.Target{URLs: []string{dead, live}, PublicURL: live, Email: "load@example.com", Password: password}
	var setupLog strings.Builder
	fx, err := loadtest.Prepare(ctx, target, loadtest.PrepareOptions{Signup: true, Machines: 4, Clients: 16,
		Logf: func(f string, a ...any) { setupLog.WriteString(f + "\n") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.Close) // before the server's shutdown
	if fx.Org != "loadtest" || fx.OrgID == 0 || len(fx.Machines) != 4 || fx.AppA.ID == 0 || fx.AppB.ID == 0 {
		t.Fatalf("fixture: %+v", fx)
	}
	record := filepath.Join(t.TempDir(), "record.jsonl")
	var progress strings.Builder
	res, err := loadtest.Run(ctx, fx, loadtest.Config{Clients: 16, Duration: 1500 * time.Millisecond, Record: record,
		Mix: loadtest.Mix{Authorize: 50, Authenticate: 10, Machines: 20, Tokens: 20}, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	logResult(t, "Run in process against a server on SQLite and a dead URL", res)
	if res.Errors != 0 {
		t.Errorf("%d errors: %v", res.Errors, res.Outcomes)
	}
	if res.Retries == 0 || res.Recovered == 0 {
		t.Errorf("%d retries, %d recovered: the dead URL was never met", res.Retries, res.Recovered)
	}
	requireEveryKind(t, res)
	if res.Outcomes["intended_denial"] == 0 {
		t.Error("no intended denial")
	}
	if !strings.Contains(progress.String(), "caveat-load:   1s") || len(res.Timeline) < 2 {
		t.Errorf("progress:\n%s\ntimeline %v", progress.String(), res.Timeline)
	}
	if st, err := os.Stat(record); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("record file: %v %v", st, err)
	}
	f, err := os.Open(record)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := loadtest.ReadRecords(f)
	f.Close()
	if err != nil || len(recs) != res.Records {
		t.Fatalf("%d records read (%v), %d written", len(recs), err, res.Records)
	}

	// Every URL must answer the check: only the live one.
	check := func(recs []loadtest.Record) *loadtest.CheckResult {
		t.Helper()
		tg := target
		tg.URLs = []string{live}
		c, err := loadtest.Check(ctx, tg, recs, loadtest.CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := check(recs)
	if err := c.Err(); err != nil || c.Mints == 0 || c.Revoked == 0 || c.Requests != c.Mints {
		t.Fatalf("check: %+v %v", c, err)
	}

	// Lies: a revocation of a token that lives, a live token recorded as
	// minted that never was, and a revoked one recorded as never revoked.
	var live1, revoked1 string
	var ghost loadtest.Record
	revoked := map[string]bool{}
	for _, r := range recs {
		if r.Op == "revoke" {
			revoked[r.ID] = true
		}
	}
	var lies []loadtest.Record
	for _, r := range recs {
		switch {
		case r.Op == "mint" && !revoked[r.ID] && live1 == "":
			live1, ghost = r.ID, r
			lies = append(lies, r, loadtest.Record{Op: "revoke", ID: r.ID, At: time.Now().Add(-time.Minute)})
		case r.Op == "mint" && revoked[r.ID] && revoked1 == "":
			revoked1 = r.ID
			lies = append(lies, r)
		case r.Op == "setup":
			lies = append(lies, r)
		}
	}
	if live1 == "" || revoked1 == "" {
		t.Fatalf("the run left no live token (%q) or no revoked one (%q)", live1, revoked1)
	}
	ghost.ID = "00000000-0000-4000-8000-000000000000"
	lies = append(lies, ghost)
	c = check(lies)
	want := []string{
		"token " + live1 + ", whose revocation returned success, is listed as not revoked",
		"token " + live1 + " is not refused as revoked",
		"token " + revoked1 + ", never revoked, is listed as revoked",
		"token " + revoked1 + " is refused",
		"token " + ghost.ID + ", minted through",
	}
	if c.ProblemCount != len(want) {
		t.Errorf("%d problems, want %d:\n%s", c.ProblemCount, len(want), strings.Join(c.Problems, "\n"))
	}
	for _, w := range want {
		found := false
		for _, p := range c.Problems {
			found = found || strings.Contains(p, w)
		}
		if !found {
			t.Errorf("no problem says %q:\n%s", w, strings.Join(c.Problems, "\n"))
		}
	}
}
