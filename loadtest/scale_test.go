package loadtest_test

// The scale harness (issue 13 §4): how each cost grows with the number of
// named tokens. For each backend (SQLite; PostgreSQL with
// CAVEAT_TEST_POSTGRES_URL) it fills a store through the store interfaces
// (store.TokenImport, 10 000 tokens a transaction) with 10^3 tokens and
// then with CAVEAT_SCALE of them (10^4 when unset: the small form CI runs)
// — a thousand per organization, a tenth of them in one app, a tenth
// revoked — and measures, against a caveat server process started on
// the filled database as a new replica:
//
//   - the new replica's start until it answers an authenticated request,
//     and client.Remote's first read of the whole revocation feed;
//   - the replica's RSS after start and at the end, and Remote's live heap
//     before and after its catch-up;
//   - authorize p50/p99 over freshly minted tokens (200 in the small
//     form, 1 000 in a larger one, for both sizes of a run), cold (the
//     first request for each) and warm (three more passes);
//   - mint and revoke throughput (8 clients over HTTP);
//   - the first page of GET /v1/tokens, and paging through the big app's
//     tokens a thousand at a time;
//   - database bytes per token.
//
// It asserts what the runs must get right (every token listed, every
// revocation honoured), never how fast: the figures are printed as a
// Markdown table (and written to CAVEAT_SCALE_OUT when set) for
// BENCHMARKS.md.
//
//	CAVEAT_SCALE=1000000 go test -run TestScale -v -timeout 3h ./loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/testenv"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/open"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Sizes and samples of the harness.
const (
	scaleBase    = 1000   // the baseline size
	scaleDefault = 10_000 // CI's small form
	tokensPerOrg = 1000
	importBatch  = 10_000
	warmPasses   = 3
	revokeSample = 200
	clients      = 8
	firstPages   = 20
)

// scaleResult is what one run measured.
type scaleResult struct {
	backend string
	n       int
	orgs    int
	bigApp  int // tokens in the big app
	revoked int

	fillRate         float64 // tokens a second through ImportTokens
	bytesPerToken    float64
	startToServe     time.Duration
	remoteCatchUp    time.Duration
	remoteFeed       int   // revocations Remote read
	remoteHeap       int64 // Remote's live heap growth over its catch-up, bytes
	rssStart         int64 // kB
	rssSteady        int64 // kB
	coldP50, coldP99 time.Duration
	warmP50, warmP99 time.Duration
	mintRate         float64
	revokeRate       float64
	firstPageP50     time.Duration
	pageAllTook      time.Duration
	pageAllPages     int
}

func TestScale(t *testing.T) {
	n := scaleDefault
	if v := os.Getenv("CAVEAT_SCALE"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < scaleBase {
			t.Fatalf("CAVEAT_SCALE=%q: want a number of tokens of at least %d", v, scaleBase)
		}
	}
	backends := []string{"sqlite"}
	if os.Getenv(pgtest.EnvURL) != "" {
		backends = append(backends, "postgres")
	} else {
		testenv.Missing(t, pgtest.EnvURL+" is not set: the scale harness runs on SQLite only")
	}
	sample := 200
	if n > scaleDefault {
		sample = 1000
	}
	var results []scaleResult
	for _, b := range backends {
		for _, size := range []int{scaleBase, n} {
			t.Run(fmt.Sprintf("%s/%d", b, size), func(t *testing.T) {
				results = append(results, runScale(t, b, size, sample))
			})
		}
	}
	table := scaleTable(results)
	t.Logf("machine: %s, GOMAXPROCS %d, race %v\n%s", cpuModel(), runtime.GOMAXPROCS(0), raceEnabled, table)
	if out := os.Getenv("CAVEAT_SCALE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// scaleServer is one caveat server process of a run.
type scaleServer struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func runScale(t *testing.T, backend string, n, authorizeSample int) scaleResult {
	ctx := context.Background()
	bin, _ := buildBinaries(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "caveat.db")
	if backend == "postgres" {
		db = pgtest.FreshDatabase(t)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	res := scaleResult{backend: backend, n: n, orgs: max(1, n/tokensPerOrg), bigApp: n / 10, revoked: n / 10}

	start := func() (*scaleServer, time.Time) {
		t.Helper()
		s := &scaleServer{log: filepath.Join(dir, "server.log"), done: make(chan struct{})}
		logf, err := os.OpenFile(s.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		s.cmd = exec.Command(bin, "server", "--listen", addr, "--data", dir, "--db", db, "--log-level", "warn")
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		dieWithTest(s.cmd)
		began := time.Now()
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		t.Cleanup(func() { s.stop(t) })
		return s, began
	}

	// The admin, the organization and the big app, through a first
	// server.
	s1, _ := start()
	waitHealthy(t, base, s1)
	anon := client.New(base, nil)
	const email = "scale@example.com"
	if _, err := anon.Signup(ctx, email, password, "scale"); err != nil {
		t.Fatal(err)
	}
	sess, err := anon.Login(ctx, email, password)
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(base, &http.Client{Transport: client.NewTransport(base, "FlyV1 "+sess.Token, sess.Secret), Timeout: time.Minute})
	if _, err := admin.CreateApp(ctx, "scale", "big"); err != nil {
		t.Fatal(err)
	}
	s1.stop(t)

	// The fill, through the store.
	before := dbSize(t, backend, db)
	res.fillRate = fill(t, db, n)
	if backend == "postgres" {
		analyze(t, db)
	}
	res.bytesPerToken = float64(dbSize(t, backend, db)-before) / float64(n)

	// A new replica on the full database: until it answers.
	s2, began := start()
	for {
		if _, err := admin.Organizations(ctx); err == nil {
			break
		}
		select {
		case <-s2.done:
			t.Fatalf("the server exited:\n%s", tail(s2.log))
		default:
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("the new replica did not answer within a minute:\n%s", tail(s2.log))
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.startToServe = time.Since(began)
	res.rssStart = rssKB(t, s2.cmd.Process.Pid)

	// Mint: two samples, authorized and revoked.
	minted, took := parallelDo(authorizeSample+revokeSample, func(int) (client.Token, error) {
		return admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "deploy", Org: "scale", App: "big", Expiry: "8760h"})
	})
	res.mintRate = float64(len(minted)) / took.Seconds()
	toAuthorize, toRevoke := minted[:authorizeSample], minted[authorizeSample:]
	access := json.RawMessage(fmt.Sprintf(`{"orgid": %d, "appid": %d, "action": "r"}`, toAuthorize[0].OrgID, toAuthorize[0].AppID))
	authorize := func(toks []client.Token) []time.Duration {
		var lat []time.Duration
		for _, tok := range toks {
			s := time.Now()
			if err := anon.Authorize(ctx, tok.Header, access); err != nil {
				t.Fatalf("authorize a fresh token: %v", err)
			}
			lat = append(lat, time.Since(s))
		}
		return lat
	}
	cold := authorize(toAuthorize)
	var warm []time.Duration
	for range warmPasses {
		warm = append(warm, authorize(toAuthorize)...)
	}
	res.coldP50, res.coldP99 = quantile(cold, 0.5), quantile(cold, 0.99)
	res.warmP50, res.warmP99 = quantile(warm, 0.5), quantile(warm, 0.99)

	// Revoke, and check that every revocation is honoured.
	_, took = parallelDo(len(toRevoke), func(i int) (bool, error) { return admin.RevokeToken(ctx, toRevoke[i].ID) })
	res.revokeRate = float64(len(toRevoke)) / took.Seconds()
	for _, tok := range toRevoke[:10] {
		if err := anon.Authorize(ctx, tok.Header, access); !client.IsStatus(err, http.StatusUnauthorized) {
			t.Fatalf("a revoked token is not refused: %v", err)
		}
	}

	// client.Remote's first read of the feed: every revocation.
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rm := client.NewRemote(client.RemoteConfig{URL: base, FeedToken: toAuthorize[0].Header,
		HTTP: &http.Client{Timeout: time.Minute}})
	s := time.Now()
	if err := rm.Poll(ctx); err != nil {
		t.Fatalf("Remote's catch-up: %v", err)
	}
	res.remoteCatchUp = time.Since(s)
	res.remoteFeed = res.revoked + revokeSample
	runtime.GC()
	runtime.ReadMemStats(&m1)
	res.remoteHeap = int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	runtime.KeepAlive(rm)

	// The first page of the organization's tokens, and the big app's
	// tokens a thousand at a time.
	var firsts []time.Duration
	for range firstPages {
		s := time.Now()
		page, next, err := admin.TokensPage(ctx, client.TokenQuery{Org: "scale"}, client.Page{Limit: 100})
		if err != nil || len(page) != 100 || next == "" {
			t.Fatalf("first page: %d tokens, next %q, %v", len(page), next, err)
		}
		firsts = append(firsts, time.Since(s))
	}
	res.firstPageP50 = quantile(firsts, 0.5)
	s = time.Now()
	listed := 0
	for page, err := range admin.Tokens(ctx, client.TokenQuery{Org: "scale", App: "big"}, client.Page{Limit: 1000}) {
		if err != nil {
			t.Fatalf("paging through the big app: %v", err)
		}
		listed += len(page)
		res.pageAllPages++
	}
	res.pageAllTook = time.Since(s)
	if want := res.bigApp + len(minted); listed != want {
		t.Fatalf("paging through the big app listed %d tokens, want %d", listed, want)
	}
	res.rssSteady = rssKB(t, s2.cmd.Process.Pid)
	s2.stop(t)
	t.Logf("%+v", res)
	return res
}

// fill imports n tokens: a tenth in the big app of the admin's
// organization, the rest over organizations of a thousand each, every
// tenth revoked; it returns the tokens imported a second.
func fill(t *testing.T, db string, n int) float64 {
	ctx := context.Background()
	st, err := open.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.GetUserByEmail(ctx, "scale@example.com")
	if err != nil {
		t.Fatal(err)
	}
	home, err := st.GetOrganizationBySlug(ctx, "scale")
	if err != nil {
		t.Fatal(err)
	}
	big, err := st.GetAppByName(ctx, home.ID, "big")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	orgs := []uint64{home.ID}
	apps := map[uint64]uint64{home.ID: 0} // the rest of home's tokens: no app
	for i := 1; i < max(1, n/tokensPerOrg); i++ {
		o, err := st.CreateOrganization(ctx, store.NewOrganization{Slug: fmt.Sprintf("org-%d", i), Admin: u.ID, CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		a, err := st.CreateApp(ctx, store.NewApp{OrgID: o.ID, Name: "app", CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		orgs, apps[o.ID] = append(orgs, o.ID), a.ID
	}
	began := time.Now()
	first := now.Add(-300 * 24 * time.Hour)
	batch := make([]store.Token, 0, importBatch)
	for i := range n {
		tok := store.Token{ID: uuid.NewString(), Name: fmt.Sprintf("token-%d", i), Profile: "deploy", CreatedBy: u.ID,
			CreatedAt: first.Add(time.Duration(i) * time.Millisecond)}
		tok.ExpiresAt = tok.CreatedAt.Add(365 * 24 * time.Hour)
		if i%10 == 0 {
			tok.OrgID, tok.AppID = home.ID, big.ID
		} else {
			tok.OrgID = orgs[i%len(orgs)]
			if i%2 == 1 {
				tok.AppID = apps[tok.OrgID]
			}
		}
		if i%10 == 5 {
			tok.RevokedAt = tok.CreatedAt.Add(time.Hour)
		}
		batch = append(batch, tok)
		if len(batch) == importBatch || i == n-1 {
			if err := st.ImportTokens(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return float64(n) / time.Since(began).Seconds()
}

// analyze refreshes PostgreSQL's statistics after the bulk load, as
// autovacuum would soon after.
func analyze(t *testing.T, db string) {
	c, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
}

// dbSize is the database's size in bytes: the SQLite file and its WAL, or
// PostgreSQL's pg_database_size.
func dbSize(t *testing.T, backend, db string) int64 {
	if backend == "postgres" {
		c, err := pgx.Connect(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		var n int64
		if err := c.QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var n int64
	for _, f := range []string{db, db + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// parallelDo runs do(i) for i in [0, n) on clients goroutines and returns
// the results in order and the time it all took.
func parallelDo[T any](n int, do func(i int) (T, error)) ([]T, time.Duration) {
	out := make([]T, n)
	errs := make([]error, n)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	began := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= n {
					return
				}
				out[j], errs[j] = do(j)
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	for _, err := range errs {
		if err != nil {
			panic(fmt.Sprintf("scale: %v", err))
		}
	}
	return out, took
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// rssKB is the resident set of a process, from /proc.
func rssKB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("RSS: %v", err)
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func waitHealthy(t *testing.T, base string, s *scaleServer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("the server exited:\n%s", tail(s.log))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server is not healthy after a minute:\n%s", tail(s.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the server with SIGTERM (once), and fails the test if its
// log shows a data race or a panic.
func (s *scaleServer) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("the server did not stop within 30 s of SIGTERM")
	}
	b, _ := os.ReadFile(s.log)
	for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("the server's log shows %q:\n%s", bad, tail(s.log))
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// scaleTable is the results as a Markdown table, a column per run.
func scaleTable(rs []scaleResult) string {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
	}
	rows := []struct {
		name string
		f    func(r scaleResult) string
	}{
		{"named tokens (organizations; big app; revoked)", func(r scaleResult) string {
			return fmt.Sprintf("%d (%d; %d; %d)", r.n, r.orgs, r.bigApp, r.revoked)
		}},
		{"fill through ImportTokens, tokens/s", func(r scaleResult) string { return fmt.Sprintf("%.0f", r.fillRate) }},
		{"database bytes per token", func(r scaleResult) string { return fmt.Sprintf("%.0f", r.bytesPerToken) }},
		{"new replica: start to first answer, ms", func(r scaleResult) string { return ms(r.startToServe) }},
		{"client.Remote: first read of the feed, ms (revocations)", func(r scaleResult) string {
			return fmt.Sprintf("%s (%d)", ms(r.remoteCatchUp), r.remoteFeed)
		}},
		{"client.Remote: live heap after it, KiB", func(r scaleResult) string { return fmt.Sprintf("%+d", r.remoteHeap/1024) }},
		{"server RSS after start / at the end, MiB", func(r scaleResult) string {
			return fmt.Sprintf("%.0f / %.0f", float64(r.rssStart)/1024, float64(r.rssSteady)/1024)
		}},
		{"authorize cold p50 / p99, ms", func(r scaleResult) string { return ms(r.coldP50) + " / " + ms(r.coldP99) }},
		{"authorize warm p50 / p99, ms", func(r scaleResult) string { return ms(r.warmP50) + " / " + ms(r.warmP99) }},
		{"mint, tokens/s (8 clients)", func(r scaleResult) string { return fmt.Sprintf("%.0f", r.mintRate) }},
		{"revoke, tokens/s (8 clients)", func(r scaleResult) string { return fmt.Sprintf("%.0f", r.revokeRate) }},
		{"tokens list, first page of 100: p50, ms", func(r scaleResult) string { return ms(r.firstPageP50) }},
		{"paging through the big app by 1 000: s (pages)", func(r scaleResult) string {
			return fmt.Sprintf("%.2f (%d)", r.pageAllTook.Seconds(), r.pageAllPages)
		}},
	}
	var b strings.Builder
	b.WriteString("| |")
	for _, r := range rs {
		fmt.Fprintf(&b, " %s %d |", r.backend, r.n)
	}
	b.WriteString("\n|---|")
	for range rs {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s |", row.name)
		for _, r := range rs {
			fmt.Fprintf(&b, " %s |", row.f(r))
		}
		b.WriteString("\n")
	}
	return b.String()
}
