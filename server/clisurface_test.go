package server_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/internal/cli"
)

// caveatEnv runs the CLI with the given environment (CAVEAT_CONFIG_DIR
// added) and returns stdout, stderr and the exit status.
func (e *e2e) caveatEnv(env map[string]string, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	full := map[string]string{"CAVEAT_CONFIG_DIR": e.cfgDir}
	for k, v := range env {
		full[k] = v
	}
	code := cli.Main(args, strings.NewReader(""), &out, &errOut, func(k string) string { return full[k] })
	return out.String(), errOut.String(), code
}

// TestCLIConsistent: one CLI (issue 10 §4): -t on every online command,
// --api before or after the subcommand and in the forms people type, the
// token's source said, and a hint of its own for each way a credential
// fails.
func TestCLIConsistent(t *testing.T) {
	e := startLoggedIn(t)
	e.ok("", "apps", "create", "workers")
	deploy := strings.TrimSpace(e.ok("", "tokens", "create", "deploy", "-a", "workers", "-n", "ci"))
	url := e.srv.URL()
	hostport := strings.TrimPrefix(url, "http://")
	none := map[string]string{}

	// --api before or after the subcommand, without a scheme on this
	// machine, or as a token's location.
	for _, args := range [][]string{
		{"--api", url, "tokens", "list"},
		{"tokens", "list", "--api", url},
		{"tokens", "--api", url, "list"},
		{"tokens", "list", "--api", hostport},
		{"tokens", "list", "--api", url + "/v1"},
		{"tokens", "list", "--api", url + "/aaa/v1/"},
	} {
		out, errOut, code := e.caveatEnv(none, args...)
		if code != 0 || !strings.Contains(out, "ci") {
			t.Errorf("caveat %s: %d %s %s", strings.Join(args, " "), code, out, errOut)
		}
		if !strings.Contains(errOut, "caveat: token from the saved login (ada@example.com)") {
			t.Errorf("caveat %s does not say where its token came from: %s", strings.Join(args, " "), errOut)
		}
	}
	if _, errOut, code := e.caveatEnv(none, "tokens", "list", "--api", "caveat.example.com"); code == 0 ||
		!strings.Contains(errOut, `caveat: error: --api "caveat.example.com" has no scheme`) || !strings.Contains(errOut, "https://caveat.example.com") {
		t.Errorf("--api without a scheme for another host: %d %s", code, errOut)
	}
	if _, errOut, code := e.caveatEnv(none, "tokens", "debug", "--api", url, deploy); code != 2 || !strings.Contains(errOut, "--api is for the commands that talk to a server") {
		t.Errorf("--api on an offline command: %d %s", code, errOut)
	}

	// -t everywhere, and CAVEAT_TOKEN, named as the source.
	env := map[string]string{"CAVEAT_API_URL": url}
	for _, args := range [][]string{{"tokens", "list", "-a", "workers", "-t", deploy}, {"apps", "list", "-t", deploy}, {"orgs", "list", "-t", deploy},
		{"machines", "list", "-a", "workers", "-t", deploy}, {"auth", "whoami", "-t", deploy}} {
		if _, errOut, code := e.caveatEnv(env, args...); code != 0 || !strings.Contains(errOut, "caveat: token from -t") {
			t.Errorf("caveat %s: %d %s", strings.Join(args[:len(args)-1], " "), code, errOut)
		}
	}
	if out, _, code := e.caveatEnv(env, "auth", "whoami", "-t", deploy); code != 0 || !strings.HasPrefix(out, "named token ") || !strings.Contains(out, "acme (admin)") {
		t.Errorf("auth whoami -t: %d %s", code, out)
	}
	if _, errOut, code := e.caveatEnv(map[string]string{"CAVEAT_API_URL": url, "CAVEAT_TOKEN": "FlyV1 fm2_abc"}, "machines", "list", "-a", "workers"); code == 0 ||
		!strings.Contains(errOut, "caveat: error: the token from CAVEAT_TOKEN is not a valid token") || strings.Contains(errOut, "saved token") {
		t.Errorf("a malformed CAVEAT_TOKEN: %d %s", code, errOut)
	}

	// A hint of its own for each failure.
	if _, errOut, code := e.caveatEnv(env, "auth", "login", "--email", "ada@example.com", "--password-stdin"); code == 0 {
		t.Errorf("login without a password succeeded: %s", errOut)
	}
	out, errOut, code := e.caveat("wrong password\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	if code == 0 || !strings.Contains(errOut, "caveat: hint: check the email and the password") {
		t.Errorf("wrong password: %d %s %s", code, out, errOut)
	}
	if errOut := e.fail("machines", "list", "-a", "nope"); !strings.Contains(errOut, "caveat: hint: 'caveat apps list' shows the apps you can see") {
		t.Errorf("a missing app: %s", errOut)
	}
	// tokens list: the creator's email and the last use; filters.
	if out := e.ok("", "tokens", "list"); !strings.Contains(out, "LAST USED") || !strings.Contains(out, "ada@example.com") {
		t.Errorf("tokens list:\n%s", out)
	}
	e.ok("", "tokens", "create", "readonly", "-x", "2d", "-n", "short")
	e.ok("", "tokens", "create", "readonly", "-n", "twin")
	e.ok("", "tokens", "create", "readonly", "-n", "twin")
	if out := e.ok("", "tokens", "list", "--expiring-within", "3d"); !strings.Contains(out, "short") || strings.Contains(out, " ci ") || strings.Contains(out, "twin") {
		t.Errorf("--expiring-within 3d:\n%s", out)
	}
	if out := e.ok("", "tokens", "list", "--unused-for", "1d"); strings.Contains(out, "short") {
		t.Errorf("--unused-for 1d lists a token created just now:\n%s", out)
	}
	if errOut := e.fail("tokens", "revoke", "--name", "twin"); !strings.Contains(errOut, `2 live tokens of acme are named "twin"`) {
		t.Errorf("revoke --name matching two: %s", errOut)
	}
	if errOut := e.fail("tokens", "revoke", "--name", "nobody"); !strings.Contains(errOut, `no live token of acme is named "nobody"`) {
		t.Errorf("revoke --name matching none: %s", errOut)
	}
	if errOut := e.fail("tokens", "list", "--unused-for", "0"); !strings.Contains(errOut, "--unused-for") {
		t.Errorf("--unused-for 0: %s", errOut)
	}
	e.ok("", "tokens", "revoke", "--name", "ci")
	if out := e.ok("", "tokens", "list", "--revoked"); !strings.Contains(out, "ci") || strings.Contains(out, "short") {
		t.Errorf("--revoked:\n%s", out)
	}
	if _, errOut, code := e.caveatEnv(env, "apps", "list", "-t", deploy); code == 0 || !strings.Contains(errOut, "caveat: hint: this token was revoked") {
		t.Errorf("a revoked token: %d %s", code, errOut)
	}
	e.ok("", "auth", "logout")
	e.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
}
