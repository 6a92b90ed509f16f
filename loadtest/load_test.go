package loadtest_test

// Two caveat server replicas on one PostgreSQL, as processes, under the
// load of caveat-load (64 clients, the mix): without faults, with
// a replica killed, and with PostgreSQL restarted under them.
//
// The short forms run a few seconds of load each. The long form runs each
// load for CAVEAT_LOAD_DURATION:
//
//	CAVEAT_LOAD_DURATION=60s go test -run . -v -timeout 30m ./loadtest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/loadtest"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestLoad runs the mix with 64 clients against two replicas: no error
// but intended denials and expected conflicts, every kind of request
// served, and every mint and revocation that returned success holds.
func TestLoad(t *testing.T) {
	db := pgtest.FreshDatabase(t)
	d := newDeployment(t, db, 2)
	dur := loadDuration(t, 5*time.Second)
	record := filepath.Join(t.TempDir(), "record.jsonl")
	lr := d.startLoad("--setup", "--json", "--clients", "64", "--duration", dur.String(), "--record", record)
	res, code := lr.wait(t)
	logResult(t, processes(), res)
	if code != 0 || res.Errors != 0 {
		t.Errorf("exit status %d, %d errors (outcomes %v); stderr:\n%s", code, res.Errors, res.Outcomes, lr.stderr.String())
	}
	requireEveryKind(t, res)
	if res.Outcomes["intended_denial"] == 0 {
		t.Errorf("no intended denial: the requests meant to be refused were not sent")
	}
	all := res.Op("all")
	t.Logf("throughput %.0f req/s, p99 %.2f ms (max %.2f ms) over %s with 64 clients on two replicas", res.Throughput, all.P99, all.Max, dur)
	c := d.check(t, record)
	if c.Mints == 0 || c.Revoked == 0 {
		t.Errorf("the record holds %d mints and %d revocations: nothing was checked", c.Mints, c.Revoked)
	}
}

// TestKillReplica kills one replica with SIGKILL under load, and starts it
// again later: the clients retry on the other replica and see no error,
// and afterwards every token whose mint returned success is listed and
// verifies, and every revocation that returned success is enforced, by the
// replica that survived and by the one restarted.
func TestKillReplica(t *testing.T) {
	d := newDeployment(t, pgtest.FreshDatabase(t), 2)
	dur := loadDuration(t, 6*time.Second)
	record := filepath.Join(t.TempDir(), "record.jsonl")
	lr := d.startLoad("--setup", "--json", "--clients", "64", "--duration", dur.String(), "--record", record)
	started := lr.waitStarted(t)

	sleepUntil(started.Add(dur / 3))
	d.kill(1)
	killed := time.Now()
	t.Logf("killed replica 1 (kill -9) %s into the load", killed.Sub(started).Round(time.Millisecond))
	sleepUntil(started.Add(2 * dur / 3))
	d.start(1)
	t.Logf("replica 1 answers again %s into the load", time.Since(started).Round(time.Millisecond))

	res, code := lr.wait(t)
	logResult(t, processes(), res)
	if code != 0 || res.Errors != 0 {
		t.Errorf("exit status %d, %d errors (outcomes %v): a client lost requests to the killed replica; stderr:\n%s",
			code, res.Errors, res.Outcomes, lr.stderr.String())
	}
	if res.Retries == 0 || res.Recovered == 0 {
		t.Errorf("%d retries, %d recovered: no request met the killed replica, so the test proved nothing", res.Retries, res.Recovered)
	}
	requireEveryKind(t, res)
	c := d.check(t, record)
	if c.Mints == 0 || c.Revoked == 0 {
		t.Errorf("the record holds %d mints and %d revocations: nothing was checked", c.Mints, c.Revoked)
	}
}

// TestPostgresRestart stops PostgreSQL under load and starts it again,
// without touching the replicas: requests that need the database fail
// during the outage and are counted, and succeed again after it; every
// mint and revocation that returned success holds; both replicas listen
// for revocations again, and a revocation through one reaches the other
// within a second.
//
// It needs a cluster of its own, which it may stop: it starts one with
// scripts/start-postgres.sh (CAVEAT_TEST_POSTGRES_URL must still be set,
// as for every PostgreSQL test).
func TestPostgresRestart(t *testing.T) {
	pgtest.ServerURL(t) // skips without PostgreSQL
	pg := startPostgres(t)
	d := newDeployment(t, pg.url, 2)
	dur := loadDuration(t, 8*time.Second)
	requireListeners(t, pg.url, 2)

	record := filepath.Join(t.TempDir(), "record.jsonl")
	lr := d.startLoad("--setup", "--json", "--clients", "64", "--duration", dur.String(), "--record", record,
		"--max-errors", "1000000000")
	started := lr.waitStarted(t)
	sleepUntil(started.Add(dur / 5))
	stopped := time.Now()
	pg.stopPG()
	time.Sleep(time.Second) // an outage long enough for every kind of request to meet it
	pg.startPG()
	up := time.Now()
	t.Logf("PostgreSQL stopped %s into the load, up again %s later", stopped.Sub(started).Round(time.Millisecond), up.Sub(stopped).Round(time.Millisecond))

	res, code := lr.wait(t)
	logResult(t, processes(), res)
	if code != 0 {
		t.Errorf("exit status %d with --max-errors: %s", code, lr.stderr.String())
	}
	failed := res.Outcomes["5xx"] + res.Outcomes["network_error"]
	if failed == 0 {
		t.Errorf("no request failed while PostgreSQL was down: the outage was not felt (outcomes %v)", res.Outcomes)
	}
	if n := res.Outcomes["unintended_allow"]; n > 0 {
		t.Errorf("%d unintended allows", n)
	}
	// The seconds that began 2 s after PostgreSQL was up again: no errors.
	after, clean := 0, 0
	var tl []string
	for _, s := range res.Timeline {
		tl = append(tl, fmt.Sprintf("%d:%d/%d", s.Second, s.Errors, s.Requests))
		begin := res.Start.Add(time.Duration(s.Second-1) * time.Second)
		if begin.Before(up.Add(2*time.Second)) || s.Requests == 0 {
			continue
		}
		after++
		if s.Errors == 0 {
			clean++
		}
	}
	t.Logf("timeline (second:errors/requests): %s", strings.Join(tl, " "))
	if after < 2 || clean != after {
		t.Errorf("%d of the %d seconds that began 2 s after PostgreSQL was up had errors (want at least 2 seconds, none with errors)", after-clean, after)
	}
	d.check(t, record)

	// LISTEN again on both replicas, and a revocation through one reaches
	// the other within a second.
	requireListeners(t, pg.url, 2)
	requireRevocationReaches(t, d, 0, 1)
	requireRevocationReaches(t, d, 1, 0)
}

// requireEveryKind fails the test unless every kind of request was sent
// and some of each answered as meant.
func requireEveryKind(t *testing.T, res *loadtest.Result) {
	t.Helper()
	for _, kind := range []string{"authorize", "authenticate", "machine-start", "machine-stop", "mint", "revoke"} {
		op := res.Op(kind)
		if op == nil || op.Count == 0 {
			t.Errorf("no %s request was sent", kind)
			continue
		}
		if op.Outcomes["ok"]+op.Outcomes["intended_denial"]+op.Outcomes["expected_conflict"] == 0 {
			t.Errorf("no %s request succeeded: %v", kind, op.Outcomes)
		}
	}
}

// requireListeners waits up to 5 s until n sessions of the cluster's
// database listen for revocations.
func requireListeners(t *testing.T, dbURL string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'LISTEN caveat_revocations'`).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions listen for revocations, want %d (one per replica)", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requireRevocationReaches mints a token through replica from, has
// replica to verify (and cache) it, revokes it through from and requires
// that to refuses it as revoked within a second.
func requireRevocationReaches(t *testing.T, d *deployment, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := client.New(d.url(from), nil).Login(ctx, "load@example.com", password)
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(d.url(from), &http.Client{Transport: client.NewTransport(d.public(), "FlyV1 "+sess.Token, sess.Secret)})
	tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "loadtest", Name: "feed-check"})
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := admin.Organizations(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("organizations: %v %v", orgs, err)
	}
	acc := []byte(fmt.Sprintf(`{"orgid": %d, "action": "r"}`, orgs[0].ID))
	checker := client.New(d.url(to), nil)
	if err := checker.Authorize(ctx, tok.Header, acc); err != nil {
		t.Fatalf("replica %d refuses a token minted through replica %d: %v", to, from, err)
	}
	if _, err := admin.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		err := checker.Authorize(ctx, tok.Header, acc)
		if client.IsStatus(err, http.StatusUnauthorized) && strings.Contains(err.Error(), "revoked") {
			t.Logf("revoked through replica %d, refused by replica %d after %s", from, to, time.Since(revoked).Round(time.Millisecond))
			return
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("revoked through replica %d, still not refused as revoked by replica %d after a second: %v", from, to, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStarted waits until caveat-load has prepared and started its
// clients, and returns when.
func (lr *loadRun) waitStarted(t *testing.T) time.Time {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(lr.stderr.String(), " clients for ") {
		select {
		case <-lr.done:
			t.Fatalf("caveat-load ended before starting the load: %v\n%s", lr.err, lr.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caveat-load has not started the load after 2 minutes:\n%s", lr.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}

func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }
