package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
)

// TestReplicasSQLite runs two servers on one SQLite file; TestReplicasPostgres
// on one PostgreSQL database (where revocations are also notified with
// LISTEN/NOTIFY). A token minted through one replica works on the other,
// and a token revoked through one is refused by the other within a second,
// although the other had just verified it and kept it in its cache.
func TestReplicasSQLite(t *testing.T) { testReplicas(t, "") }

func TestReplicasPostgres(t *testing.T) { testReplicas(t, pgtest.FreshDatabase(t)) }

func testReplicas(t *testing.T, db string) {
	dir := t.TempDir() // one data directory: one master key (and SQLite file)
	start := func(publicURL string) *server.Server {
		return servertest.Run(t, server.Config{DataDir: dir, DB: db, PublicURL: publicURL, Signup: true})
	}
	// Replicas share one public URL (a load balancer's); here it is A's.
	a := start("")
	b := start(a.URL())
	addrA, addrB := a.URL(), "http://"+b.Addr().String()
	ctx := context.Background()

	anon := client.New(addrA, nil)
	if _, err := anon.Signup(ctx, "ada@example.com", "correct horse battery", "acme"); err != nil {
		t.Fatal(err)
	}
	sess, err := anon.Login(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tr := client.NewTransport(a.URL(), "FlyV1 "+sess.Token, sess.Secret)
	admin := map[string]*client.Client{
		"A": client.New(addrA, &http.Client{Transport: tr}),
		"B": client.New(addrB, &http.Client{Transport: tr}),
	}
	orgs, err := admin["B"].Organizations(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("orgs through B: %v %v", orgs, err)
	}
	access := []byte(fmt.Sprintf(`{"orgid": %d, "action": "r"}`, orgs[0].ID))

	for _, tc := range []struct{ mint, check string }{{"B", "A"}, {"A", "B"}} {
		tok, err := admin[tc.mint].CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		checker := client.New(map[string]string{"A": addrA, "B": addrB}[tc.check], nil)
		if err := checker.Authorize(ctx, tok.Header, access); err != nil {
			t.Fatalf("token minted by %s, checked by %s: %v", tc.mint, tc.check, err)
		}
		if _, err := admin[tc.mint].RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		for {
			err := checker.Authorize(ctx, tok.Header, access)
			if client.IsStatus(err, http.StatusUnauthorized) && strings.Contains(err.Error(), "revoked") {
				t.Logf("revoked through %s, refused by %s after %s", tc.mint, tc.check, time.Since(revoked).Round(time.Millisecond))
				break
			}
			if time.Since(revoked) > time.Second {
				t.Fatalf("revoked through %s, still accepted by %s after a second: %v", tc.mint, tc.check, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
