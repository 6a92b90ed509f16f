package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// start runs a server on a free port with its data in dir.
func start(t *testing.T, dir string, logs io.Writer) *Server {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	return runServer(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
}

// runServer starts a server with cfg, runs it until the test ends, and
// fails the test if it does not stop cleanly.
func runServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerBasics(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	s := start(t, dir, &logs)
	if code, body := get(t, s.URL()+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := get(t, s.URL()+"/v1/orgs"); code != 401 || !strings.Contains(body, `"error"`) {
		t.Fatalf("orgs without a token: %d %s", code, body)
	}
	if code, body := get(t, s.URL()+"/nope/secret-path-123"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	code, body := get(t, s.URL()+"/metrics")
	if code != 200 || !strings.Contains(body, `caveat_http_requests_total{code="401",method="GET",route="GET /v1/orgs"} 1`) {
		t.Fatalf("metrics: %d %s", code, body)
	}
	if strings.Contains(logs.String(), "secret-path-123") {
		t.Error("a request path was logged")
	}
	st, err := os.Stat(filepath.Join(dir, "master.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", st, err)
	}
	if s.TokenLocation() != s.URL()+"/v1" || s.LoginLocation() != s.URL()+"/aaa/v1" {
		t.Errorf("locations %s %s", s.TokenLocation(), s.LoginLocation())
	}
}

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	k1, gen, err := loadMasterKey(path, true)
	if err != nil || !gen {
		t.Fatalf("first load: %v %v", gen, err)
	}
	k2, gen, err := loadMasterKey(path, true)
	if err != nil || gen || k1 != k2 {
		t.Fatalf("second load: generated %v, same %v, %v", gen, k1 == k2, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadMasterKey(path, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("c2hvcnQ=\n"), 0o600)
	if _, _, err := loadMasterKey(bad, true); err == nil || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Fatalf("short key: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Roles: []string{"everything"}},
		{DischargeTTL: time.Millisecond},
		{DischargeTTL: time.Hour, SessionTTL: time.Minute},
		{PublicURL: "caveat.example"},
		{Roles: []string{"console", "machines"}}, // the console needs the authority and identity
	} {
		if _, err := New(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
			Roles: c.Roles, DischargeTTL: c.DischargeTTL, SessionTTL: c.SessionTTL, PublicURL: c.PublicURL}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestConfigRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"wildcard IPv4 without a public URL", Config{Listen: "0.0.0.0:0"}, "needs --public-url"},
		{"wildcard IPv6 without a public URL", Config{Listen: "[::]:0"}, "needs --public-url"},
		{"no host without a public URL", Config{Listen: ":0"}, "needs --public-url"},
		{"misspelt database scheme", Config{Listen: "127.0.0.1:0", DB: "postgress://caveat@db/caveat"}, `unsupported database URL scheme "postgress"`},
		{"upper-case scheme is PostgreSQL, not a file", Config{Listen: "127.0.0.1:0", DB: "POSTGRES://caveat@127.0.0.1:1/caveat?connect_timeout=1"}, "PostgreSQL"},
	} {
		c.cfg.DataDir = dir
		c.cfg.Logger = slog.New(slog.DiscardHandler)
		s, err := New(context.Background(), c.cfg)
		if err == nil {
			s.Close()
			t.Errorf("%s: started", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "postgress:")); err == nil {
		t.Error("a misspelt URL created a SQLite file")
	}
	// With a public URL, every address is fine.
	s, err := New(context.Background(), Config{Listen: "0.0.0.0:0", PublicURL: "https://caveat.example", DataDir: dir,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
