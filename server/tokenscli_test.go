package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
)

// TestTokensCreateCLI: tokens create as flyctl users expect it (issue 10
// §3): -x and -n, days, errors for 0 and missing apps, and machine-exec
// commands that are exact unless given as prefixes.
func TestTokensCreateCLI(t *testing.T) {
	e := startLoggedIn(t)
	e.ok("", "apps", "create", "workers")

	// -x in days and -n.
	_, errOut, code := e.caveat("", "tokens", "create", "deploy", "-a", "workers", "-x", "30d", "-n", "ci")
	if code != 0 || !strings.Contains(errOut, `("ci")`) {
		t.Fatalf("create with -x 30d -n ci: %d %s", code, errOut)
	}
	want := time.Now().Add(30 * 24 * time.Hour).UTC().Format("2006-01-02")
	if !strings.Contains(errOut, "expires "+want) {
		t.Errorf("30d: %s, want it to expire on %s", errOut, want)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "--expiry", "2h", "--name", "x"}, "the deploy profile is for one app: name it with -a"},
		{[]string{"machine-exec"}, "caveat: hint: caveat tokens create machine-exec -a APP"},
		{[]string{"deploy", "-a", "workers", "-x", "0"}, `--expiry: "0" is not a positive lifetime`},
		{[]string{"deploy", "-a", "workers", "-x", "-5h"}, "--expiry"},
		{[]string{"readonly", "-a", "workers"}, "-a workers does not apply"},
		{[]string{"deploy", "-a", "workers", "ls"}, "only machine-exec takes commands"},
		{[]string{"machine-exec", "-a", "workers", ""}, "an empty command allows nothing"},
	} {
		errOut := e.fail(append([]string{"tokens", "create"}, c.args...)...)
		if !strings.Contains(errOut, c.want) {
			t.Errorf("tokens create %s: %s, want %q", strings.Join(c.args, " "), errOut, c.want)
		}
	}

	// machine-exec: positional and --command exact, --command-prefix a
	// prefix, and reading the app.
	token := strings.TrimSpace(e.ok("", "tokens", "create", "machine-exec", "-a", "workers", "uptime", "--command", "ls -l", "--command-prefix", "cat /var/log/"))
	b, err := caveat.ParseBundle(token)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := b.Tokens[0].Caveats.MarshalJSON()
	if !strings.Contains(string(js), `{"type":"IfPresent","body":{"ifs":[{"type":"Commands","body":[{"args":["uptime"],"exact":true},{"args":["ls","-l"],"exact":true},{"args":["cat","/var/log/"]}]}],"else":"r"}}`) {
		t.Errorf("machine-exec caveats: %s", js)
	}
	any := strings.TrimSpace(e.ok("", "tokens", "create", "machine-exec", "-a", "workers"))
	b, _ = caveat.ParseBundle(any)
	js, _ = b.Tokens[0].Caveats.MarshalJSON()
	if !strings.Contains(string(js), `"ifs":[{"type":"Commands","body":[{"args":[]}]}],"else":"r"`) {
		t.Errorf("machine-exec without commands: %s", js)
	}
	// It reads the app: listing its machines works.
	e.ok("", "machines", "list", "-a", "workers", "-t", token)
}
