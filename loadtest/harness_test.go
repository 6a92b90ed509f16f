package loadtest_test

// The harness of the process tests: the caveat and caveat-load binaries,
// built once; replicas of "caveat server" started as processes on one
// PostgreSQL database, with one master key and one public URL, that of a
// TCP balancer in the test process (as a deployment has one in front of its
// replicas, so that a replica's death does not take the tokens' location
// with it); and PostgreSQL clusters of the test's own, which it may stop.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/testenv"

	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/loadtest"
)

// password is the load account's.
const password = "correct horse battery staple"

// binaries are built once per test binary, into binDir.
var (
	buildOnce          sync.Once
	binDir             string
	caveatBin, loadBin string
	buildErr           error
	buildTook          time.Duration
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// repoRoot is the module's root, the parent of this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildBinaries builds ./cmd/caveat and ./cmd/caveat-load (with -race
// when the tests have it) and returns their paths.
func buildBinaries(t testing.TB) (string, string) {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		start := time.Now()
		binDir, buildErr = os.MkdirTemp("", "caveat-loadtest-bin.")
		if buildErr != nil {
			return
		}
		caveatBin, loadBin = filepath.Join(binDir, "caveat"), filepath.Join(binDir, "caveat-load")
		for pkg, out := range map[string]string{"./cmd/caveat": caveatBin, "./cmd/caveat-load": loadBin} {
			args := []string{"build", "-o", out}
			if raceEnabled {
				args = append(args, "-race")
			}
			cmd := exec.Command("go", append(args, pkg)...)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
				return
			}
		}
		buildTook = time.Since(start)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caveatBin, loadBin
}

// loadDuration is how long each load runs: CAVEAT_LOAD_DURATION (the long
// form: 60s), else short.
func loadDuration(t testing.TB, short time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv("CAVEAT_LOAD_DURATION")
	if v == "" {
		return short
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		t.Fatalf("CAVEAT_LOAD_DURATION=%q: want a duration of a second or more, such as 60s", v)
	}
	return d
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// deployment is replicas of caveat server on one database, behind a
// balancer whose URL is their public URL.
type deployment struct {
	t        *testing.T
	caveat   string
	load     string
	db       string
	dir      string
	keyFile  string
	lb       *balancer
	replicas []*replica
}

// replica is one caveat server process, which may be killed and started
// again on the same address.
type replica struct {
	index int
	addr  string
	log   string
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
}

// newDeployment starts n replicas on db and waits until they are healthy.
func newDeployment(t *testing.T, db string, n int) *deployment {
	t.Helper()
	caveatBin, loadBin := buildBinaries(t)
	d := &deployment{t: t, caveat: caveatBin, load: loadBin, db: db, dir: t.TempDir()}
	key := make([]byte, 32)
	rand.Read(key)
	d.keyFile = filepath.Join(d.dir, "master.key")
	if err := os.WriteFile(d.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		d.replicas = append(d.replicas, &replica{index: i, addr: freeAddr(t), log: filepath.Join(d.dir, fmt.Sprintf("replica-%d.log", i))})
	}
	d.lb = newBalancer(t, d.replicas)
	t.Cleanup(d.stop)
	for i := range d.replicas {
		d.start(i)
	}
	return d
}

// url is replica i's base URL.
func (d *deployment) url(i int) string { return "http://" + d.replicas[i].addr }

// urls are every replica's base URL.
func (d *deployment) urls() []string {
	var out []string
	for i := range d.replicas {
		out = append(out, d.url(i))
	}
	return out
}

// public is the deployment's public URL: the balancer's.
func (d *deployment) public() string { return "http://" + d.lb.ln.Addr().String() }

// start starts replica i (again) and waits until /healthz answers.
func (d *deployment) start(i int) {
	d.t.Helper()
	r := d.replicas[i]
	logf, err := os.OpenFile(r.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- started by the test at %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	r.cmd = exec.Command(d.caveat, "server", "--listen", r.addr, "--data", filepath.Join(d.dir, fmt.Sprintf("data-%d", i)),
		"--db", d.db, "--master-key-file", d.keyFile, "--public-url", d.public(),
		"--machine-transition-time", "20ms", "--log-level", "warn")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	dieWithTest(r.cmd)
	if err := r.cmd.Start(); err != nil {
		d.t.Fatalf("start replica %d: %v", i, err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(d.url(i) + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-r.done:
			d.t.Fatalf("replica %d exited at start:\n%s", i, d.logTail(i))
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("replica %d is not healthy after 30 s: %v\n%s", i, err, d.logTail(i))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill kills replica i with SIGKILL and waits until it is gone.
func (d *deployment) kill(i int) {
	d.t.Helper()
	r := d.replicas[i]
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		d.t.Fatalf("kill -9 replica %d: %v", i, err)
	}
	<-r.done
}

// stop stops every running replica with SIGTERM (SIGKILL after 15 s),
// closes the balancer, and fails the test if a log shows a data race or a
// panic.
func (d *deployment) stop() {
	for _, r := range d.replicas {
		if r.cmd == nil {
			continue
		}
		select {
		case <-r.done:
			continue
		default:
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			d.t.Errorf("replica %d did not stop within 15 s of SIGTERM", r.index)
			r.cmd.Process.Kill()
			<-r.done
		}
	}
	d.lb.close()
	for i, r := range d.replicas {
		b, err := os.ReadFile(r.log)
		if err != nil {
			d.t.Error(err)
			continue
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
			if bytes.Contains(b, []byte(bad)) {
				d.t.Errorf("replica %d's log shows %q:\n%s", i, bad, b)
			}
		}
		if d.t.Failed() {
			d.t.Logf("the end of replica %d's log:\n%s", i, d.logTail(i))
		}
		if errs := bytes.Count(b, []byte(`"level":"ERROR"`)); errs > 0 {
			d.t.Logf("replica %d logged %d errors; the first:\n%s", i, errs, firstLine(b, `"level":"ERROR"`))
		}
	}
}

// logTail is the end of replica i's log.
func (d *deployment) logTail(i int) string {
	b, _ := os.ReadFile(d.replicas[i].log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func firstLine(b []byte, sub string) string {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if bytes.Contains(line, []byte(sub)) {
			return string(line)
		}
	}
	return ""
}

// loadRun is a caveat-load process.
type loadRun struct {
	cmd            *exec.Cmd
	stdout, stderr fake.Buffer
	done           chan struct{}
	err            error
}

// startLoad starts caveat-load with args and every replica's URL.
func (d *deployment) startLoad(args ...string) *loadRun {
	d.t.Helper()
	lr := &loadRun{done: make(chan struct{})}
	args = append(append([]string{"--password-stdin", "--public-url", d.public()}, args...), d.urls()...)
	lr.cmd = exec.Command(d.load, args...)
	lr.cmd.Stdin = strings.NewReader(password + "\n")
	lr.cmd.Stdout, lr.cmd.Stderr = &lr.stdout, &lr.stderr
	lr.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	dieWithTest(lr.cmd)
	if err := lr.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { lr.err = lr.cmd.Wait(); close(lr.done) }()
	return lr
}

// wait waits for the run and returns its JSON summary (it must have been
// started with --json) and exit status.
func (lr *loadRun) wait(t *testing.T) (*loadtest.Result, int) {
	t.Helper()
	select {
	case <-lr.done:
	case <-time.After(10 * time.Minute):
		lr.cmd.Process.Kill()
		<-lr.done
		t.Fatalf("caveat-load did not finish within 10 minutes:\n%s", lr.stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(lr.err, &ee) {
		code = ee.ExitCode()
	} else if lr.err != nil {
		t.Fatal(lr.err)
	}
	if strings.Contains(lr.stderr.String(), "WARNING: DATA RACE") {
		t.Errorf("caveat-load has a data race:\n%s", lr.stderr.String())
	}
	var res loadtest.Result
	if err := json.Unmarshal([]byte(lr.stdout.String()), &res); err != nil {
		t.Fatalf("caveat-load (exit %d) did not print a JSON summary: %v\nstdout:\n%s\nstderr:\n%s", code, err, lr.stdout.String(), lr.stderr.String())
	}
	return &res, code
}

// check runs loadtest.Check on a record through every replica and fails
// the test on any problem.
func (d *deployment) check(t *testing.T, record string) *loadtest.CheckResult {
	t.Helper()
	f, err := os.Open(record)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := loadtest.ReadRecords(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := loadtest.Check(ctx, loadtest.Target{URLs: d.urls(), PublicURL: d.public(), Email: "load@example.com",
		Password: password}, recs, loadtest.CheckOptions{})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := res.Err(); err != nil {
		t.Errorf("check through %v: %v", d.urls(), err)
	}
	t.Logf("check: %d minted tokens (%d revoked, %d revocations of unknown outcome), %d authorize requests through %d replicas",
		res.Mints, res.Revoked, res.Unknown, res.Requests, len(d.replicas))
	return res
}

// logResult logs the figures of a run of what.
func logResult(t *testing.T, what string, res *loadtest.Result) {
	t.Helper()
	var b strings.Builder
	res.WriteText(&b)
	t.Logf("%s:\n%s", what, b.String())
}

// processes says how the processes were built, for logResult.
func processes() string {
	if raceEnabled {
		return "caveat-load against two replicas (both binaries built with -race)"
	}
	return "caveat-load against two replicas"
}

// balancer is a TCP balancer: each connection goes to the next replica
// that accepts it.
type balancer struct {
	ln       net.Listener
	replicas []*replica
	next     atomic.Uint64
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

func newBalancer(t *testing.T, replicas []*replica) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, replicas: replicas, conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.serve()
	return b
}

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.handle(c)
	}
}

// track adds (or removes) a connection to close at the end.
func (b *balancer) track(c net.Conn, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false // closed
	}
	if add {
		b.conns[c] = true
	} else {
		delete(b.conns, c)
	}
	return true
}

func (b *balancer) handle(c net.Conn) {
	defer b.wg.Done()
	defer c.Close()
	if !b.track(c, true) {
		return
	}
	defer b.track(c, false)
	first := int(b.next.Add(1))
	for i := range b.replicas {
		r := b.replicas[(first+i)%len(b.replicas)]
		s, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			continue
		}
		if !b.track(s, true) {
			s.Close()
			return
		}
		defer b.track(s, false)
		defer s.Close()
		done := make(chan struct{}, 2)
		go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		go func() { io.Copy(c, s); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		<-done
		<-done
		return
	}
}

// close stops the balancer and its connections.
func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
	b.wg.Wait()
}

// postgresCluster is a PostgreSQL cluster of the test's own, started with
// scripts/start-postgres.sh, which the test may stop and start again.
type postgresCluster struct {
	t      *testing.T
	script string
	dir    string
	port   string
	url    string
}

// startPostgres starts a cluster in a new directory under /tmp (which the
// postgres user can enter when the tests run as root), or skips the test
// when PostgreSQL's binaries are not installed.
func startPostgres(t *testing.T) *postgresCluster {
	t.Helper()
	if !havePostgresBinaries() {
		testenv.Missing(t, "PostgreSQL's binaries (initdb, pg_ctl) are not installed (apt-get install postgresql): this test starts and restarts a cluster of its own")
	}
	dir, err := os.MkdirTemp("/tmp", "caveat-loadtest-pg.")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pg := &postgresCluster{t: t, script: filepath.Join(repoRoot(t), "scripts", "start-postgres.sh"), dir: dir}
	t.Cleanup(func() {
		pg.run(true, "--stop", pg.dir)
		os.RemoveAll(pg.dir)
	})
	pg.url = strings.TrimSpace(pg.run(false, pg.dir))
	u, err := url.Parse(pg.url)
	if err != nil || u.Port() == "" {
		t.Fatalf("start-postgres.sh printed %q, not a URL with a port", pg.url)
	}
	pg.port = u.Port()
	return pg
}

func havePostgresBinaries() bool {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		_, err := os.Stat(filepath.Join(d, "initdb"))
		return err == nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		return true
	}
	_, err := exec.LookPath("initdb")
	return err == nil
}

// run runs start-postgres.sh with args and returns its stdout; it fails
// the test when the script fails, unless mayFail.
func (pg *postgresCluster) run(mayFail bool, args ...string) string {
	pg.t.Helper()
	cmd := exec.Command(pg.script, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && !mayFail {
		pg.t.Fatalf("start-postgres.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// stopPG stops the cluster (pg_ctl -m fast stop).
func (pg *postgresCluster) stopPG() { pg.run(false, "--stop", pg.dir) }

// startPG starts the stopped cluster on its port again.
func (pg *postgresCluster) startPG() { pg.run(false, "-p", pg.port, pg.dir) }
