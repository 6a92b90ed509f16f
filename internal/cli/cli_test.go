package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
)

// result is what one Main invocation produced.
type result struct {
	code           int
	stdout, stderr string
}

// runMain runs Main in-process with the given environment and stdin.
func runMain(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return result{code, out.String(), errOut.String()}
}

// mustMint returns the header of a fresh token for location, with no
// caveats, signed with a random key.
func mustMint(tb testing.TB, location string) string {
	tb.Helper()
	m, err := caveat.Mint(caveat.NewSigningKey(), caveat.NewNonce([]byte{1}, false), location)
	if err != nil {
		tb.Fatal(err)
	}
	return "FlyV1 " + m.String()
}

// writeConfig writes a config file holding token into a new directory and
// returns the directory.
func writeConfig(tb testing.TB, token string) string {
	tb.Helper()
	dir := tb.TempDir()
	b, _ := json.Marshal(map[string]string{"token": token})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func TestTokenSources(t *testing.T) {
	argTok := mustMint(t, "https://arg.example/v1")
	flagTok := mustMint(t, "https://flag.example/v1")
	envTok := mustMint(t, "https://env.example/v1")
	cfgTok := mustMint(t, "https://config.example/v1")
	cfgDir := writeConfig(t, cfgTok)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "caveat"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"token": cfgTok})
	if err := os.WriteFile(filepath.Join(home, ".config", "caveat", "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		stdin    string
		code     int
		source   string // the "caveat: token from …" line, without the prefix
		location string // the location on stdout
		errText  string // a part of the error message
	}{
		{name: "config dir", env: map[string]string{"CAVEAT_CONFIG_DIR": cfgDir},
			source: "config file " + filepath.Join(cfgDir, "config.json"), location: "config.example"},
		{name: "config in home", env: map[string]string{"HOME": home},
			source: "config file " + filepath.Join(home, ".config", "caveat", "config.json"), location: "config.example"},
		{name: "env beats config", env: map[string]string{"CAVEAT_CONFIG_DIR": cfgDir, "CAVEAT_TOKEN": envTok},
			source: "CAVEAT_TOKEN", location: "env.example"},
		{name: "flag beats env", args: []string{"-t", flagTok}, env: map[string]string{"CAVEAT_CONFIG_DIR": cfgDir, "CAVEAT_TOKEN": envTok},
			source: "-t", location: "flag.example"},
		{name: "argument beats env and config", args: []string{argTok}, env: map[string]string{"CAVEAT_CONFIG_DIR": cfgDir, "CAVEAT_TOKEN": envTok},
			source: "argument", location: "arg.example"},
		{name: "dash reads stdin", args: []string{"-"}, stdin: argTok + "\n", env: map[string]string{"CAVEAT_TOKEN": envTok},
			source: "stdin", location: "arg.example"},
		{name: "flag dash reads stdin", args: []string{"-t", "-"}, stdin: flagTok,
			source: "stdin", location: "flag.example"},
		{name: "argument and flag", args: []string{argTok, "-t", flagTok},
			code: 2, errText: "a token was given both as an argument and with -t"},
		{name: "bad argument does not fall back", args: []string{"SOMETOKEN"}, env: map[string]string{"CAVEAT_CONFIG_DIR": cfgDir, "CAVEAT_TOKEN": envTok},
			code: 1, source: "argument", errText: "the TOKEN argument is not a valid token (9 characters)"},
		{name: "bad flag does not fall back", args: []string{"-t", "x"}, env: map[string]string{"CAVEAT_TOKEN": envTok},
			code: 1, source: "-t", errText: "the -t value is not a valid token"},
		{name: "bad env does not fall back", env: map[string]string{"CAVEAT_CONFIG_DIR": cfgDir, "CAVEAT_TOKEN": "x"},
			code: 1, source: "CAVEAT_TOKEN", errText: "CAVEAT_TOKEN is not a valid token"},
		{name: "empty argument", args: []string{""}, env: map[string]string{"CAVEAT_TOKEN": envTok},
			code: 1, source: "argument", errText: "the TOKEN argument is empty"},
		{name: "empty flag", args: []string{"-t", ""}, env: map[string]string{"CAVEAT_TOKEN": envTok},
			code: 1, source: "-t", errText: "the -t value is empty"},
		{name: "empty stdin", args: []string{"-"},
			code: 1, source: "stdin", errText: "the token read from stdin is empty"},
		{name: "no source", env: map[string]string{"HOME": t.TempDir()},
			code: 1, errText: "no token: give one as an argument"},
		{name: "no source no home",
			code: 1, errText: "no token: give one as an argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMain(t, tt.env, tt.stdin, append([]string{"tokens", "debug"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			if tt.source != "" && !strings.Contains(r.stderr, "caveat: token from "+tt.source+"\n") {
				t.Errorf("stderr does not name the source %q:\n%s", tt.source, r.stderr)
			}
			if tt.code != 0 {
				if r.stdout != "" {
					t.Errorf("stdout not empty on failure: %q", r.stdout)
				}
				if !strings.Contains(r.stderr, "caveat: error: ") || !strings.Contains(r.stderr, tt.errText) {
					t.Errorf("stderr lacks %q:\n%s", tt.errText, r.stderr)
				}
				return
			}
			var views []struct{ Location string }
			if err := json.Unmarshal([]byte(r.stdout), &views); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
			}
			if len(views) != 1 || !strings.Contains(views[0].Location, tt.location) {
				t.Errorf("read %+v, want location %s", views, tt.location)
			}
		})
	}
}

func TestStdinReadOnce(t *testing.T) {
	tok := mustMint(t, "https://api.example/v1")
	r := runMain(t, nil, tok, "tokens", "attenuate", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "the caveats must come from a file: use -f FILE") {
		t.Fatalf("got %d:\n%s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout: %q", r.stdout)
	}
}

func TestErrorFormatting(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		code  int
		lines []string // every line of stderr, in order
	}{
		{
			name: "unknown flag",
			args: []string{"tokens", "debug", "--nope"},
			code: 2,
			lines: []string{
				"caveat: error: unknown flag: --nope",
				"caveat: hint: run 'caveat tokens debug --help' for usage",
			},
		},
		{
			name: "missing subcommand",
			args: []string{},
			code: 2,
			lines: []string{
				"caveat: error: caveat needs a subcommand: apps, auth, completion, machines, orgs, server, tokens, version",
				"caveat: hint: run 'caveat --help' for usage",
			},
		},
		{
			name: "unknown command with suggestion",
			args: []string{"tokens", "atenuate"},
			code: 2,
			lines: []string{
				`caveat: error: unknown command "atenuate" for "caveat tokens"`,
				`caveat: hint: did you mean "attenuate"?`,
				"caveat: hint: run 'caveat tokens --help' for usage",
			},
		},
		{
			name: "extra argument",
			args: []string{"tokens", "mint", "--key-file", "k", "--kid", "01", "--location", "l", "stray"},
			code: 2,
			lines: []string{
				`caveat: error: unexpected argument "stray": caveat tokens mint takes no arguments`,
				"caveat: hint: run 'caveat tokens mint --help' for usage",
			},
		},
		{
			name: "failure",
			args: []string{"tokens", "debug", "garbage"},
			code: 1,
			lines: []string{
				"caveat: token from argument",
				"caveat: error: the TOKEN argument is not a valid token (7 characters): token 1: malformed token: not a token (no fm2_ prefix)",
				`caveat: hint: a token looks like "FlyV1 fm2_…" or "fm2_…", with any discharges after commas`,
			},
		},
		{
			name: "bad CAVEAT_NOW",
			args: []string{"tokens", "attenuate", "--expiry", "1h", "-t", "x"},
			code: 1,
			lines: []string{
				`caveat: error: CAVEAT_NOW is not an RFC 3339 time (like 2025-01-02T15:04:05Z): "soon"`,
				"caveat: hint: unset CAVEAT_NOW to use the clock",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMain(t, map[string]string{"CAVEAT_NOW": "soon"}, "", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d", r.code, tt.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			want := strings.Join(tt.lines, "\n") + "\n"
			if r.stderr != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
			}
		})
	}
}

func TestMainNilArgsIgnoresProcessArgs(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(nil, nil, &out, &errOut, nil)
	if code != 2 || !strings.Contains(errOut.String(), "caveat needs a subcommand") {
		t.Fatalf("Main(nil) = %d, %q", code, errOut.String())
	}
}

// panicWriter panics on every write, standing in for a bug.
type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("boom") }

func TestMainRecoversPanics(t *testing.T) {
	var errOut bytes.Buffer
	tok := mustMint(t, "https://api.example/v1")
	code := Main([]string{"tokens", "debug", tok}, nil, panicWriter{}, &errOut, nil)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "caveat: error: internal error: boom") {
		t.Errorf("stderr: %q", errOut.String())
	}
}

// TestNoSecretsInErrors damages a token in many ways and checks that no
// error quotes more of it than its fixed 8-character opening.
func TestNoSecretsInErrors(t *testing.T) {
	tok := mustMint(t, "https://api.example/v1")
	payload := strings.TrimPrefix(tok, "FlyV1 fm2_")
	inputs := []string{"Basic fm2_" + payload, "FlyV1 fm2_" + payload + "!", "fm3_" + payload, payload}
	for n := 1; n < len(payload); n += 3 {
		inputs = append(inputs, "FlyV1 fm2_"+payload[:n])
	}
	for _, in := range inputs {
		for _, args := range [][]string{{"tokens", "debug", in}, {"tokens", "debug", "-t", in}, {"tokens", "debug", in, in}} {
			r := runMain(t, nil, "", args...)
			if r.code == 0 {
				continue
			}
			for i := 0; i+12 <= len(payload); i++ {
				if strings.Contains(r.stderr, payload[i:i+12]) {
					t.Fatalf("stderr quotes the token (%q) for %q:\n%s", payload[i:i+12], args, r.stderr)
				}
			}
		}
	}

	// A key file that is not base64 is not quoted either.
	dir := t.TempDir()
	kf := filepath.Join(dir, "k")
	if err := os.WriteFile(kf, []byte("hunter2-is-my-root-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runMain(t, nil, "[]", "tokens", "mint", "--key-file", kf, "--kid", "01", "--location", "l")
	if r.code != 1 || strings.Contains(r.stderr, "hunter2") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestParseTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	short := filepath.Join(dir, "short.key")
	for path, key := range map[string][]byte{good: bytes.Repeat([]byte{7}, 32), short: {1, 2, 3}} {
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	trusted, err := parseTrustedKeys([]string{
		"https://auth.example=" + good,
		"https://q.example/?a=b=" + good,
		"https://auth.example=" + good,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(trusted["https://auth.example"]) != 2 || len(trusted["https://q.example/?a=b"]) != 1 {
		t.Errorf("trusted = %v", trusted)
	}

	for _, bad := range []struct{ arg, want string }{
		{"https://auth.example", "want LOCATION=FILE"},
		{"=" + good, "want LOCATION=FILE"},
		{"https://auth.example=", "want LOCATION=FILE"},
		{"https://auth.example=" + short, "encryption key must be 32 bytes, got 3"},
		{"https://auth.example=" + filepath.Join(dir, "missing"), "no such file"},
	} {
		if _, err := parseTrustedKeys([]string{bad.arg}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("parseTrustedKeys(%q) = %v, want %q", bad.arg, err, bad.want)
		}
	}
}

func TestDescribeArg(t *testing.T) {
	if got := describeArg("extra"); got != `"extra"` {
		t.Errorf("got %s", got)
	}
	if got := describeArg("fm2_AAAA"); got != "(8 characters)" {
		t.Errorf("got %s", got)
	}
	if got := describeArg(strings.Repeat("a", 25)); got != "(25 characters)" {
		t.Errorf("got %s", got)
	}
}
