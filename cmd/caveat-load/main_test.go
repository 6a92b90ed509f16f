package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/loadtest"
	"github.com/caveatdev/caveat/server"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"caveat-load": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)) },
	})
}

// TestScripts runs testdata/script/*.txt: usage, help and failures that
// need no server.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// A race-enabled binary sleeps a second at exit by default.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return nil
		},
	})
}

// TestLoadAndCheck runs the command against a server in this process
// (SQLite): a short load with --setup, --json and --record, then check
// on the record; and the exit status when errors pass --max-errors.
func TestLoadAndCheck(t *testing.T) {
	s := servertest.Run(t, server.Config{DataDir: t.TempDir(), Signup: true, MachineTransitionTime: 20 * time.Millisecond})

	caveatLoad := func(stdin string, env map[string]string, args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
		return out.String(), errOut.String(), code
	}
	record := filepath.Join(t.TempDir(), "record.jsonl")
	out, errOut, code := caveatLoad("pw-for-load\n", nil, "--setup", "--password-stdin", "--json", "-c", "8", "-d", "1s",
		"--machines", "2", "--mix", "authorize=50,machines=25,tokens=25", "--record", record, s.URL())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var res loadtest.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, out)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Clients != 8 || res.Op("mint").Count == 0 || res.Op("authenticate").Count != 0 {
		t.Fatalf("summary: %+v", res)
	}
	for _, want := range []string{"caveat-load: signed up load@example.com with organization loadtest",
		"caveat-load: created 2 machines in load-a", "caveat-load: 8 clients for 1s against " + s.URL(), "caveat-load:   1s "} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	// The record is not overwritten without --force.
	_, errOut, code = caveatLoad("", map[string]string{"CAVEAT_LOAD_PASSWORD": "pw-for-load"}, "-q", "-d", "100ms", "--record", record, s.URL())
	if code != 1 || !strings.Contains(errOut, "it is not overwritten without --force") {
		t.Fatalf("second run on the record: exit %d\n%s", code, errOut)
	}

	out, errOut, code = caveatLoad("", map[string]string{"CAVEAT_LOAD_PASSWORD": "pw-for-load"}, "check", "--record", record, s.URL())
	if code != 0 || !strings.Contains(out, ": 0 problems") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}

	// A wrong password for the check: a failure, said on stderr.
	_, errOut, code = caveatLoad("wrong\n", nil, "check", "--password-stdin", "--record", record, s.URL())
	if code != 1 || !strings.HasPrefix(errOut, "caveat-load: error: check: login:") {
		t.Fatalf("check with a wrong password: exit %d\n%s", code, errOut)
	}

	// A usage error is exit status 2; --help is 0.
	if _, errOut, code := caveatLoad("", nil, "--clients", "-1", s.URL()); code != 2 {
		t.Fatalf("a usage error: exit %d\n%s", code, errOut)
	}
	if out, _, code := caveatLoad("", nil, "check", "-h"); code != 0 || !strings.HasPrefix(out, "Usage: caveat-load check") {
		t.Fatalf("check -h: exit %d\n%s", code, out)
	}

	// Errors past --max-errors: a timeout of 1 ns fails every request.
	out, errOut, code = caveatLoad("pw-for-load\n", nil, "--password-stdin", "-q", "-c", "2", "-d", "200ms", "--timeout", "1ns",
		"--retries", "0", s.URL())
	if code != 1 || !strings.Contains(errOut, "caveat-load: error: ") || !strings.Contains(errOut, "errors (allowed: 0)") ||
		!strings.Contains(out, "network error") {
		t.Fatalf("a run where every request fails: exit %d\n%s\n%s", code, out, errOut)
	}
}
