package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/server"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"caveat": func() { os.Exit(run()) },
	})
}

// TestScripts runs testdata/script/*.txt. Every script starts with:
//
//	keys/root.key, keys/other.key, keys/auth.key  fixtures (32 random bytes each)
//	vectors/…  the spec's first_party and third_party tokens, keys, ticket
//	HOME=$WORK/home (empty), no CAVEAT_* variables
func TestScripts(t *testing.T) {
	var fp struct {
		RootKeyHex string `json:"root_key_hex"`
		Location   string `json:"location"`
		Token      struct {
			Header string `json:"header"`
		} `json:"token"`
	}
	vectors.Section(t, "first_party", &fp)
	var tp struct {
		KeyHex     string `json:"third_party_key_hex"`
		Location   string `json:"third_party_location"`
		Permission struct {
			Header string `json:"header"`
		} `json:"permission"`
		Caveat3P struct {
			TicketHex string `json:"ticket_hex"`
		} `json:"caveat3p"`
	}
	vectors.Section(t, "third_party", &tp)
	vecFiles := map[string]string{
		"first_party.header":   fp.Token.Header + "\n",
		"first_party.key":      b64(t, fp.RootKeyHex),
		"first_party.location": fp.Location,
		"third_party.header":   tp.Permission.Header + "\n",
		"third_party.key":      b64(t, tp.KeyHex),
		"third_party.location": tp.Location,
		"third_party.ticket":   b64(t, tp.Caveat3P.TicketHex),
	}
	for name, v := range vecFiles {
		if strings.TrimSpace(v) == "" {
			t.Fatalf("vector %s is empty", name)
		}
	}

	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			keys, err := filepath.Glob("testdata/keys/*.key")
			if err != nil || len(keys) == 0 {
				return fmt.Errorf("no key fixtures in testdata/keys: %v", err)
			}
			for _, k := range keys {
				b, err := os.ReadFile(k)
				if err != nil {
					return err
				}
				if err := writeFile(env.WorkDir, "keys/"+filepath.Base(k), b); err != nil {
					return err
				}
			}
			for name, v := range vecFiles {
				if err := writeFile(env.WorkDir, "vectors/"+name, []byte(v)); err != nil {
					return err
				}
			}
			// A race-enabled binary sleeps a second at exit by default;
			// every exec of a script would pay it.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			home := filepath.Join(env.WorkDir, "home")
			env.Setenv("HOME", home)
			return os.MkdirAll(home, 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"envfile":   cmdEnvFile,
			"jsonshape": cmdJSONShape,
			"server":    cmdServer,
		},
	})
}

func b64(t *testing.T, hexKey string) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(vectors.Hex(t, hexKey)) + "\n"
}

func writeFile(dir, name string, b []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600)
}

// cmdEnvFile sets an environment variable to a file's contents, trimmed:
//
//	envfile VAR FILE
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// cmdServer starts a caveat server in the test process for the rest of
// the script (SQLite in $WORK/server, cheap password hashing, no logs) and
// points the CLI at it: CAVEAT_API_URL is its URL and CAVEAT_CONFIG_DIR is
// $WORK/config, where 'caveat auth login' saves the login.
//
//	server
func cmdServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: server")
	}
	work := ts.Getenv("WORK")
	srv, err := server.New(context.Background(), server.Config{
		Listen:  "127.0.0.1:0",
		DataDir: filepath.Join(work, "server"),
		Signup:  true,
		Argon2:  identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Logger:  slog.New(slog.DiscardHandler),
	})
	ts.Check(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts.Defer(func() {
		cancel()
		if err := <-done; err != nil {
			ts.Logf("server: %v", err)
		}
	})
	ts.Setenv("CAVEAT_API_URL", srv.URL())
	ts.Setenv("CAVEAT_CONFIG_DIR", filepath.Join(work, "config"))
}

// cmdJSONShape checks that a file is debug's output shape, exactly: an array
// of {"location": string, "caveats": [{"type": string, "body": any}]} with
// no other fields, and with the given number of tokens.
//
//	jsonshape FILE NTOKENS
func cmdJSONShape(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonshape FILE NTOKENS")
	}
	type cav struct {
		Type *string         `json:"type"`
		Body json.RawMessage `json:"body"`
	}
	type tok struct {
		Location *string `json:"location"`
		Caveats  *[]cav  `json:"caveats"`
	}
	var toks []tok
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(args[0])))
	dec.DisallowUnknownFields()
	ts.Check(dec.Decode(&toks))
	if dec.More() {
		ts.Fatalf("data after the JSON array")
	}
	if got := fmt.Sprint(len(toks)); got != args[1] {
		ts.Fatalf("%d tokens, want %s", len(toks), args[1])
	}
	for i, tk := range toks {
		if tk.Location == nil || tk.Caveats == nil {
			ts.Fatalf("token %d: missing location or caveats", i)
		}
		for j, c := range *tk.Caveats {
			if c.Type == nil || *c.Type == "" || len(c.Body) == 0 || bytes.Equal(c.Body, []byte("null")) {
				ts.Fatalf("token %d caveat %d: missing type or body", i, j)
			}
		}
	}
}
