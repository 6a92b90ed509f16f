package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestOnlineTokenSources is issue 9 §8's regression: the online commands
// find their token as the offline ones do — -t ("-" reads stdin) >
// CAVEAT_TOKEN > the saved login —, say on stderr which source they used,
// before anything can fail, and refuse an empty or malformed token naming
// its source, without a request. Before, an empty -t silently sent the
// saved login, "-t -" sent "-" as the token, a malformed token was
// refused without saying where it came from, and 'tokens revoke --branch
// --self' said its credential came from -t whatever gave it.
func TestOnlineTokenSources(t *testing.T) {
	var (
		mu   sync.Mutex
		sent []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error": "recorded"}`))
	}))
	defer srv.Close()

	flagTok := mustMint(t, "https://flag.example/v1")
	envTok := mustMint(t, "https://env.example/v1")
	loginTok := mustMint(t, "https://login.example/v1")
	session := func(token string) string {
		dir := t.TempDir()
		b, _ := json.Marshal(savedConfig{APIURL: srv.URL, Token: token, SessionSecret: "cvs1_secret", Email: "ada@example.com"})
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	loggedIn := session(loginTok)
	badLogin := session("FlyV1 fm2_abc")

	commands := [][]string{{"machines", "list", "-a", "workers"}, {"apps", "list", "-o", "acme"}, {"tokens", "list", "-o", "acme"},
		{"orgs", "create", "acme"}, {"auth", "whoami"}}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		stdin   string
		source  string // the "caveat: token from …" line, without the prefix
		sent    string // the Authorization header the server saw; "" for no request
		errText string // a part of the error, when no request is made
		notErr  string // what the error must not say
		// session is set for the cases without -t or CAVEAT_TOKEN, where
		// 'auth whoami' shows the login's account with its secret instead.
		session bool
	}{
		{name: "saved login", env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn},
			source: "the saved login (ada@example.com)", sent: loginTok, session: true},
		{name: "CAVEAT_TOKEN beats the login", env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": envTok},
			source: "CAVEAT_TOKEN", sent: envTok},
		{name: "-t beats CAVEAT_TOKEN", args: []string{"-t", flagTok}, env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": envTok},
			source: "-t", sent: flagTok},
		{name: "-t - reads stdin", args: []string{"-t", "-"}, stdin: flagTok + "\n", env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": envTok},
			source: "stdin", sent: flagTok},
		{name: "an empty -t is not an absent one", args: []string{"-t", ""}, env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn},
			source: "-t", errText: "caveat: error: the -t value is empty"},
		{name: "malformed CAVEAT_TOKEN", env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": "FlyV1 fm2_abc"},
			source: "CAVEAT_TOKEN", errText: "caveat: error: the token from CAVEAT_TOKEN is not a valid token (13 characters)", notErr: "saved"},
		{name: "blank CAVEAT_TOKEN", env: map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": "  "},
			source: "CAVEAT_TOKEN", errText: "caveat: error: the token from CAVEAT_TOKEN is empty"},
		{name: "malformed saved login", env: map[string]string{"CAVEAT_CONFIG_DIR": badLogin},
			source: "the saved login (ada@example.com)", errText: "caveat: hint: log in again with 'caveat auth login'", session: true},
		{name: "no token", env: map[string]string{"CAVEAT_CONFIG_DIR": t.TempDir(), "CAVEAT_API_URL": srv.URL},
			errText: "caveat: error: no token: give one with -t or in CAVEAT_TOKEN, or log in", session: true},
	}
	for _, cmd := range commands {
		for _, tt := range tests {
			if tt.session && cmd[0] == "auth" {
				continue
			}
			t.Run(strings.Join(cmd[:2], "_")+"/"+tt.name, func(t *testing.T) {
				mu.Lock()
				sent = nil
				mu.Unlock()
				r := runMain(t, tt.env, tt.stdin, append(append([]string{}, cmd...), tt.args...)...)
				mu.Lock()
				got := append([]string(nil), sent...)
				mu.Unlock()
				if r.code != exitFailure {
					t.Errorf("exit status %d, want 1", r.code)
				}
				if tt.source != "" && !strings.Contains(r.stderr, "caveat: token from "+tt.source+"\n") {
					t.Errorf("stderr does not name the source %q:\n%s", tt.source, r.stderr)
				}
				if tt.sent == "" {
					if len(got) > 0 || !strings.Contains(r.stderr, tt.errText) || tt.notErr != "" && strings.Contains(r.stderr, tt.notErr) {
						t.Errorf("want no request and %q (not %q); %d requests, stderr:\n%s", tt.errText, tt.notErr, len(got), r.stderr)
					}
					return
				}
				if len(got) == 0 {
					t.Fatalf("no request; stderr:\n%s", r.stderr)
				}
				for _, h := range got {
					if h != tt.sent {
						t.Errorf("the server saw another token than %s's", tt.source)
					}
				}
			})
		}
	}

	// tokens revoke --branch --self: the branch is the credential, and the
	// only source named is the branch's.
	mu.Lock()
	sent = nil
	mu.Unlock()
	r := runMain(t, map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": envTok}, "", "tokens", "revoke", "--branch", "--self")
	if !strings.Contains(r.stderr, "caveat: branch token from CAVEAT_TOKEN\n") || strings.Contains(r.stderr, "caveat: token from") ||
		len(sent) == 0 || sent[0] != envTok {
		t.Errorf("revoke --branch --self: %d requests, stderr:\n%s", len(sent), r.stderr)
	}
	// With the branch from -t, the login is CAVEAT_TOKEN's, and said.
	sent = nil
	r = runMain(t, map[string]string{"CAVEAT_CONFIG_DIR": loggedIn, "CAVEAT_TOKEN": envTok}, "", "tokens", "revoke", "--branch", "-t", flagTok)
	if !strings.Contains(r.stderr, "caveat: branch token from -t\n") || !strings.Contains(r.stderr, "caveat: token from CAVEAT_TOKEN\n") ||
		len(sent) == 0 || sent[0] != envTok {
		t.Errorf("revoke --branch -t: %d requests, stderr:\n%s", len(sent), r.stderr)
	}
}
