package main

// The story test of issue 4: a real caveat server with 2-second login
// discharges, a real Redis, and this autoscaler holding only an attenuated
// token, unattended for several discharge lifetimes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/testenv"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/internal/cli"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/server"
	"github.com/redis/go-redis/v9"
)

// startRedis runs a throwaway redis-server on a free port of 127.0.0.1.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server is not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if !testenv.Eventually(5*time.Second, func() bool { return rdb.Ping(context.Background()).Err() == nil }) {
		t.Fatal("redis-server did not start")
	}
	return url
}

func TestStory(t *testing.T) {
	redisURL := startRedis(t)
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Signup: true,
		DischargeTTL: 2 * time.Second, MachineTransitionTime: 100 * time.Millisecond,
		Argon2: identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Run(srvCtx) }()
	defer func() { stopServer(); <-served }()

	// The admin, with the CLI and a config directory of their own.
	adminDir := t.TempDir()
	caveat := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"CAVEAT_CONFIG_DIR": adminDir, "CAVEAT_API_URL": srv.URL()}
		if code := cli.Main(args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("caveat %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	caveat("correct horse battery\n", "auth", "signup", "--email", "ops@example.com", "--password-stdin", "--org", "acme")
	caveat("", "apps", "create", "workers")
	deploy := strings.TrimSpace(caveat("", "tokens", "create", "deploy", "-a", "workers", "--expiry", "8760h", "--name", "autoscaler"))
	admin := client.New(srv.URL(), &http.Client{Transport: client.NewTransport(srv.URL(), deploy, "")})
	var ids []string
	for i := 0; i < 4; i++ {
		var m struct {
			ID string `json:"id"`
		}
		json.Unmarshal([]byte(caveat("", "machines", "create", "-a", "workers", "--image", "celery-worker:1", "--json")), &m)
		ids = append(ids, m.ID)
	}
	for _, id := range ids {
		if err := admin.WaitMachine(ctx, "workers", id, "started", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		caveat("", "machines", "stop", id, "-a", "workers")
		if err := admin.WaitMachine(ctx, "workers", id, "stopped", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	token := strings.TrimSpace(caveat(`[{"type":"Machines","body":{"machines":{"":"rC"}}}]`, "tokens", "attenuate", "-t", deploy))
	// The admin's session as it was when the token was made: its login
	// discharge expires two seconds after it was issued.
	var adminCfg struct {
		Token string `json:"token"`
	}
	if b, err := os.ReadFile(filepath.Join(adminDir, "config.json")); err != nil || json.Unmarshal(b, &adminCfg) != nil || adminCfg.Token == "" {
		t.Fatalf("the admin's saved session: %v", err)
	}

	// The autoscaler: nothing but the token (its config dir would be empty:
	// it reads CAVEAT_TOKEN only).
	logs := &fake.Buffer{}
	cfg := Config{API: srv.URL(), App: "workers", Queue: "celery", Redis: redisURL, Min: 0, Max: 4, PerMachine: 10,
		Cooldown: 500 * time.Millisecond, Interval: 100 * time.Millisecond, Token: token}
	runCtx, stopScaler := context.WithCancel(ctx)
	scaled := make(chan error, 1)
	go func() { scaled <- Run(runCtx, cfg, slog.New(slog.NewJSONHandler(logs, nil))) }()
	defer func() { stopScaler(); <-scaled }()

	viewer := client.New(srv.URL(), &http.Client{Transport: client.NewTransport(srv.URL(), token, "")})
	started := func() int {
		ms, err := client.Collect(viewer.Machines(ctx, "workers", client.ListMachinesOptions{}, client.Page{}))
		if err != nil {
			t.Fatalf("list with the autoscaler's token: %v", err)
		}
		n := 0
		for _, m := range ms {
			if m.State == "started" {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, want int, within time.Duration) {
		t.Helper()
		if !testenv.Eventually(within, func() bool { return started() == want }) {
			t.Fatalf("%s: %d machines started, want %d\nautoscaler log:\n%s", what, started(), want, logs.String())
		}
	}
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	begin := time.Now()

	// 30 tasks: ceil(30/10) = 3 machines start.
	for i := 0; i < 30; i++ {
		rdb.RPush(ctx, "celery", fmt.Sprintf(`{"task": "work", "id": %d}`, i))
	}
	waitFor("30 tasks queued", 3, 10*time.Second)
	// The queue drained: they stop.
	rdb.Del(ctx, "celery")
	waitFor("queue drained", 0, 10*time.Second)
	// Up again, once the login discharge the admin's session held when the
	// token was made has expired (the server refuses that session bundle
	// as expired; polled, not slept): nothing in the autoscaler's path
	// depends on a login discharge.
	anon := client.New(srv.URL(), nil)
	if !testenv.Eventually(10*time.Second, func() bool {
		_, err := anon.Authenticate(ctx, adminCfg.Token)
		var ae *client.APIError
		return errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && strings.Contains(ae.Message, "expired")
	}) {
		t.Fatal("the admin's session bundle was not refused as expired within 10 s of its 2-second discharge")
	}
	for i := 0; i < 15; i++ {
		rdb.RPush(ctx, "celery", "task")
	}
	waitFor("15 tasks after the discharge expired", 2, 10*time.Second)
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("the autoscaler logged errors while scaling:\n%s", logs.String())
	}
	for _, want := range []string{`"msg":"started machine"`, `"msg":"stopped machine"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the autoscaler did not log %s:\n%s", want, logs.String())
		}
	}

	// The same token is refused what it may not do, each time naming the
	// caveat.
	api := newAPI(srv.URL(), token)
	refusals := map[string]func() error{
		"create": func() error {
			return api.do(ctx, "POST", machinesPath("workers"), nil)
		},
		"destroy": func() error {
			return api.do(ctx, "DELETE", machinesPath("workers")+"/"+ids[0]+"?force=true", nil)
		},
	}
	caveat("", "apps", "create", "other")
	var otherM struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(caveat("", "machines", "create", "-a", "other", "--image", "x", "--json")), &otherM)
	refusals["another app"] = func() error { return api.do(ctx, "POST", machinesPath("other")+"/"+otherM.ID+"/start", nil) }
	caveat("", "orgs", "create", "beta")
	caveat("", "apps", "create", "elsewhere", "-o", "beta")
	refusals["another organization"] = func() error { return api.do(ctx, "GET", machinesPath("elsewhere"), nil) }
	// Another organization's app is not found, as if it did not exist:
	// app names do not leak across organizations.
	names := map[string]string{"create": "(Machines)", "destroy": "(Machines)", "another app": "(Apps)", "another organization": `no app "elsewhere"`}
	for what, call := range refusals {
		err := call()
		want := http.StatusForbidden
		if what == "another organization" {
			want = http.StatusNotFound
		}
		ae, ok := err.(*apiError)
		if !ok || ae.Status != want || !strings.Contains(ae.Message, names[what]) {
			t.Errorf("%s with the autoscaler's token: %v; want %d naming %s", what, err, want, names[what])
		}
	}

	// Revoked: the next call is refused, the autoscaler says so and keeps
	// running.
	var list []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	json.Unmarshal([]byte(caveat("", "tokens", "list", "-o", "acme", "--json")), &list)
	for _, tk := range list {
		if tk.Name == "autoscaler" {
			caveat("", "tokens", "revoke", tk.ID)
		}
	}
	if !testenv.Eventually(5*time.Second, func() bool { return strings.Contains(logs.String(), "the token was refused") }) {
		t.Fatalf("the autoscaler did not report the revoked token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "revoked") {
		t.Errorf("the refusal does not say the token was revoked:\n%s", logs.String())
	}
	// It keeps polling: another refusal is logged (one each 100 ms
	// Interval).
	n := strings.Count(logs.String(), "the token was refused")
	if !testenv.Eventually(5*time.Second, func() bool { return strings.Count(logs.String(), "the token was refused") > n }) {
		t.Errorf("the autoscaler stopped polling after the revocation:\n%s", logs.String())
	}
	select {
	case err := <-scaled:
		t.Fatalf("the autoscaler exited: %v", err)
	default:
	}
	t.Logf("story ran %s", time.Since(begin).Round(time.Millisecond))
}
