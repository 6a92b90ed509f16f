package server_test

// The Machines API in a real server, driven by the caveat CLI in process:
// the autoscaler's token (a deploy token attenuated offline to rC on
// machines) lists, starts and stops, and is refused create and destroy
// with the Machines caveat named; other organizations see nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/identity"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
)

// startWith starts the e2e server on listen with fast machine
// transitions and the given roles (all when none).
func (e *e2e) startWith(listen string, roles ...string) {
	e.t.Helper()
	e.logs = &bytes.Buffer{}
	s, err := server.New(context.Background(), server.Config{
		Listen:                listen,
		DataDir:               e.dataDir,
		DB:                    e.db,
		Roles:                 roles,
		MachineTransitionTime: 300 * time.Millisecond, // long enough that a loaded machine cannot finish one before its answer
		Signup:                true,
		Argon2:                identity.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Logger:                slog.New(slog.NewJSONHandler(e.logs, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.srv = s
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("server: %v", err)
		}
	}
}

// fail runs the CLI, wants it to fail, and returns stderr.
func (e *e2e) fail(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.caveat("", args...)
	if code == 0 {
		e.t.Fatalf("caveat %s succeeded: %s", strings.Join(args, " "), out)
	}
	if out != "" {
		e.t.Fatalf("caveat %s failed with data on stdout: %q", strings.Join(args, " "), out)
	}
	return errOut
}

// waitState polls the machine through the CLI until it is in state.
func (e *e2e) waitState(token, id, state string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var m client.Machine
		if err := json.Unmarshal([]byte(e.ok("", "machines", "get", id, "-a", "workers", "--json", "-t", token)), &m); err != nil {
			e.t.Fatal(err)
		}
		if m.State == state {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("machine %s is %s, not %s", id, m.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMachinesCLISQLite(t *testing.T) { runMachinesCLI(t, "") }

func TestMachinesCLIPostgres(t *testing.T) { runMachinesCLI(t, pgtest.FreshDatabase(t)) }

func runMachinesCLI(t *testing.T, db string) {
	e := &e2e{t: t, dataDir: t.TempDir(), db: db, cfgDir: t.TempDir()}
	e.startWith("127.0.0.1:0")
	defer func() { e.stop() }()
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme")
	e.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	e.ok("", "apps", "create", "workers")
	deploy := strings.TrimSpace(e.ok("", "tokens", "create", "deploy", "-a", "workers", "--expiry", "1h", "--name", "autoscaler"))

	// The admin (a session) creates three machines; each starts.
	id := strings.TrimSpace(e.ok("", "machines", "create", "-a", "workers", "--image", "registry.example/worker:1", "--name", "w1", "--region", "ams"))
	if len(id) != 14 {
		t.Fatalf("create printed %q, want the machine id", id)
	}
	for _, name := range []string{"w2", "w3"} {
		e.ok("", "machines", "create", "-a", "workers", "--image", "registry.example/worker:1", "--name", name)
	}
	session := e.config()["token"]
	e.waitState(session, id, "started")

	out := e.ok("", "machines", "list", "-a", "workers")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NAME") ||
		!strings.Contains(lines[0], "STATE") || !strings.Contains(lines[0], "REGION") || !strings.HasSuffix(lines[0], "UPDATED") {
		t.Fatalf("list:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^` + id + ` +w1 +started +ams +20`).MatchString(out) {
		t.Fatalf("list does not show w1 started in ams:\n%s", out)
	}
	var listed []client.Machine
	if err := json.Unmarshal([]byte(e.ok("", "machines", "list", "-a", "workers", "--json")), &listed); err != nil || len(listed) != 3 ||
		listed[0].ID != id || listed[0].Config == nil {
		t.Fatalf("list --json: %v %+v", err, listed)
	}
	if out := e.ok("", "machines", "get", id, "-a", "workers"); !strings.Contains(out, "state:      started") ||
		!strings.Contains(out, "image:      registry.example/worker:1") || !strings.Contains(out, "start    started    flyd") {
		t.Fatalf("get:\n%s", out)
	}

	// The autoscaler's token, attenuated offline.
	rC := strings.TrimSpace(e.ok(`[{"type":"Machines","body":{"machines":{"":"rC"}}}]`, "tokens", "attenuate", "-t", deploy))
	if out := e.ok("", "machines", "list", "-a", "workers", "-t", rC); strings.Count(out, "\n") != 4 {
		t.Fatalf("rC list:\n%s", out)
	}
	_, errOut, code := e.caveat("", "machines", "stop", id, "-a", "workers", "-t", rC)
	if code != 0 || !strings.Contains(errOut, "machine "+id+" is stopping") {
		t.Fatalf("rC stop: %d %s", code, errOut)
	}
	// machines wait: with the rC token (r is enough), the default state is
	// started, a bad state and a timeout are errors.
	if _, errOut, code := e.caveat("", "machines", "wait", id, "-a", "workers", "-t", rC, "--state", "stopped", "--timeout", "10s"); code != 0 ||
		!strings.Contains(errOut, "machine "+id+" is stopped") {
		t.Fatalf("machines wait --state stopped: %d %s", code, errOut)
	}
	if errOut := e.fail("machines", "wait", id, "-a", "workers", "--state", "running"); !strings.Contains(errOut, `--state "running" is not one of created, started, stopped, suspended, destroyed`) {
		t.Fatalf("machines wait --state running: %s", errOut)
	}
	if errOut := e.fail("machines", "wait", id, "-a", "workers", "--state", "destroyed", "--timeout", "1s"); !strings.Contains(errOut, "was not destroyed within 1s") {
		t.Fatalf("machines wait timing out: %s", errOut)
	}
	var started struct{ Status, PreviousState string }
	json.Unmarshal([]byte(e.ok("", "machines", "start", id, "-a", "workers", "-t", rC, "--json")), &started)
	if started.Status != "starting" {
		t.Fatalf("rC start --json: %+v", started)
	}
	e.waitState(rC, id, "started")

	errOut = e.fail("machines", "create", "-a", "workers", "--image", "w", "-t", rC)
	if !strings.Contains(errOut, `caveat: error: machines create: caveat 3 (Machines): unauthorized for action: action c on machine "": c not permitted (permitted: rC)`) ||
		!strings.Contains(errOut, "caveat: hint: the token does not allow this") {
		t.Fatalf("rC create:\n%s", errOut)
	}
	errOut = e.fail("machines", "destroy", id, "-a", "workers", "--force", "-t", rC)
	if !strings.Contains(errOut, `caveat 3 (Machines): unauthorized for action: action d on machine "`+id+`": d not permitted (permitted: rC)`) {
		t.Fatalf("rC destroy:\n%s", errOut)
	}

	// Another app's token, and another organization's.
	e.ok("", "apps", "create", "other")
	other := strings.TrimSpace(e.ok("", "tokens", "create", "deploy", "-a", "other", "--expiry", "1h"))
	if errOut := e.fail("machines", "get", id, "-a", "workers", "-t", other); !strings.Contains(errOut, "(Apps)") {
		t.Fatalf("another app's token:\n%s", errOut)
	}
	e.ok("", "orgs", "create", "beta")
	beta := strings.TrimSpace(e.ok("", "tokens", "create", "org", "-o", "beta", "--expiry", "1h"))
	// It does not find the app: another organization's app names do not
	// leak.
	if errOut := e.fail("machines", "list", "-a", "workers", "-t", beta); !strings.Contains(errOut, `no app "workers"`) {
		t.Fatalf("another organization's token:\n%s", errOut)
	}

	// Destroy: refused while started, then done; listed with --all only.
	if errOut := e.fail("machines", "destroy", id, "-a", "workers"); !strings.Contains(errOut, "is started") || !strings.Contains(errOut, "force=true") {
		t.Fatalf("destroy a started machine:\n%s", errOut)
	}
	e.ok("", "machines", "destroy", id, "-a", "workers", "--force")
	e.waitState(session, id, "destroyed")
	if out := e.ok("", "machines", "list", "-a", "workers"); strings.Contains(out, id) {
		t.Fatalf("a destroyed machine is listed:\n%s", out)
	}
	if out := e.ok("", "machines", "list", "-a", "workers", "--all"); !strings.Contains(out, id) || !strings.Contains(out, "destroyed") {
		t.Fatalf("list --all:\n%s", out)
	}

	// The table of actions is served, without a token.
	code, body := get(t, e.srv.URL()+"/v1/machines/actions")
	if code != 200 || !strings.Contains(body, `"operation":"destroy"`) {
		t.Fatalf("actions: %d %s", code, body)
	}
	for _, secret := range []string{"correct horse", deploy[6:40], rC[len(rC)-30:]} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the server logged %q", secret)
		}
	}

	// The machines role alone serves the API from the same data, with
	// the same keys (and at the same URL, the tokens' location); without
	// it, there is no such route.
	addr := e.srv.Addr().String()
	e.stop()
	e.startWith(addr, server.RoleMachines)
	if out := e.ok("", "machines", "list", "-a", "workers", "-t", deploy); strings.Count(out, "\n") != 3 {
		t.Fatalf("machines role alone:\n%s", out)
	}
	if code, _ := get(t, e.srv.URL()+"/v1/orgs"); code != http.StatusNotFound {
		t.Fatalf("the machines role serves /v1/orgs: %d", code)
	}
	e.stop()
	e.startWith(addr, server.RoleAuthority, server.RoleIdentity)
	if errOut := e.fail("machines", "list", "-a", "workers", "-t", deploy); !strings.Contains(errOut, "no route") {
		t.Fatalf("without the machines role:\n%s", errOut)
	}
}

// TestMachinesClient drives the Go client's calls that the CLI does not
// make: wait, update, suspend, restart, signal, leases and metadata.
func TestMachinesClient(t *testing.T) {
	e := &e2e{t: t, dataDir: t.TempDir(), cfgDir: t.TempDir()}
	e.startWith("127.0.0.1:0")
	defer e.stop()
	e.ok("correct horse battery\n", "auth", "signup", "--email", "ada@example.com", "--password-stdin", "--org", "acme")
	e.ok("correct horse battery\n", "auth", "login", "--email", "ada@example.com", "--password-stdin")
	e.ok("", "apps", "create", "workers")
	deploy := strings.TrimSpace(e.ok("", "tokens", "create", "deploy", "-a", "workers", "--expiry", "1h"))
	cl := client.New(e.srv.URL(), &http.Client{Transport: client.NewTransport(e.srv.URL(), deploy, "")})
	ctx := context.Background()

	m, err := cl.CreateMachine(ctx, "workers", client.CreateMachineRequest{
		Config: client.MachineConfig{Image: "worker:1", Metadata: map[string]string{"queue": "celery"},
			Extra: map[string]json.RawMessage{"guest": json.RawMessage(`{"cpus":2}`)}},
		Name: "w1", LeaseTTL: 30})
	if err != nil || m.State != "starting" || m.Nonce == "" || !strings.Contains(string(m.Config), `"guest":{"cpus":2}`) {
		t.Fatalf("create: %+v %v", m, err)
	}
	lease := client.WithLease(m.Nonce)
	if err := cl.WaitMachine(ctx, "workers", m.ID, "started", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cl.StopMachine(ctx, "workers", m.ID); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("stop of a leased machine without the nonce: %v", err)
	}
	if err := cl.SignalMachine(ctx, "workers", m.ID, "SIGUSR1", lease); err != nil {
		t.Fatal(err)
	}
	if err := cl.RestartMachine(ctx, "workers", m.ID, lease); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitMachine(ctx, "workers", m.ID, "started", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cl.SuspendMachine(ctx, "workers", m.ID, lease); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitMachine(ctx, "workers", m.ID, "stopped", time.Second); !client.IsStatus(err, http.StatusRequestTimeout) {
		t.Fatalf("wait for a state never reached: %v", err)
	}
	up, err := cl.UpdateMachine(ctx, "workers", m.ID, client.CreateMachineRequest{Config: client.MachineConfig{Image: "worker:2"}, SkipLaunch: true}, lease)
	if err != nil || up.State != "stopped" || up.ImageRef.Tag != "2" {
		t.Fatalf("update: %+v %v", up, err)
	}

	l, err := cl.MachineLeaseInfo(ctx, "workers", m.ID)
	if err != nil || l.Nonce != "" || !strings.HasPrefix(l.Owner, "token:") {
		t.Fatalf("lease info: %+v %v", l, err)
	}
	if l, err = cl.RefreshMachineLease(ctx, "workers", m.ID, m.Nonce, time.Minute); err != nil || l.Nonce != m.Nonce {
		t.Fatalf("refresh: %+v %v", l, err)
	}
	md, err := cl.SetMachineMetadata(ctx, "workers", m.ID, "role", "worker", lease)
	if err != nil || len(md) != 2 || md["role"] != "worker" || md["queue"] != "celery" {
		t.Fatalf("set metadata (kept through an update whose config had none): %v %v", md, err)
	}
	if md, err = cl.DeleteMachineMetadata(ctx, "workers", m.ID, "role", lease); err != nil || len(md) != 1 {
		t.Fatalf("delete metadata: %v %v", md, err)
	}
	if md, err = cl.MachineMetadata(ctx, "workers", m.ID); err != nil || len(md) != 1 {
		t.Fatalf("metadata: %v %v", md, err)
	}
	if err := cl.ReleaseMachineLease(ctx, "workers", m.ID, m.Nonce); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.MachineLeaseInfo(ctx, "workers", m.ID); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("lease after release: %v", err)
	}
	l, err = cl.AcquireMachineLease(ctx, "workers", m.ID, 0)
	if err != nil || l.Nonce == "" {
		t.Fatalf("acquire: %+v %v", l, err)
	}
	if err := cl.DestroyMachine(ctx, "workers", m.ID, false, client.WithLease(l.Nonce)); err != nil {
		t.Fatal(err)
	}
	ms, err := client.Collect(cl.Machines(ctx, "workers", client.ListMachinesOptions{IncludeDeleted: true, Summary: true}, client.Page{}))
	if err != nil || len(ms) != 1 || ms[0].Config != nil {
		t.Fatalf("list: %+v %v", ms, err)
	}
	if ms, err := client.Collect(cl.Machines(ctx, "workers", client.ListMachinesOptions{Region: "nowhere"}, client.Page{})); err != nil || len(ms) != 0 {
		t.Fatalf("list of another region: %+v %v", ms, err)
	}
}
