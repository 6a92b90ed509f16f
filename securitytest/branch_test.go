package securitytest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/servertest"
	"github.com/caveatdev/caveat/server"
	"github.com/caveatdev/caveat/store/postgres/pgtest"
)

// TestBranchRevocationTree: for a random tree of attenuations of a named
// token, revoking a random node refuses exactly that node's subtree, on
// every replica.
//
// Two servers share one database (a SQLite file; and PostgreSQL with
// CAVEAT_TEST_POSTGRES_URL set) and one master key, as replicas do. Each
// case mints a token through either replica and grows a tree from it:
// every node is its parent plus one to three caveats (benign ones from the
// catalogue, and a ValidityWindow whose end is the node's own, so that no
// two nodes are the same token). Both replicas authenticate every node,
// which fills their caches; then one node is revoked, through a random
// replica, either by itself (POST /v1/tokens/revoke) or by the token's
// creator presenting it (POST /v1/tokens/revoke-branch). The node that
// revoked, and every node below it, must then be refused by both
// replicas, and every other node (its ancestors, its siblings and their
// subtrees) accepted: by the replica that revoked at once, and by the
// other within a second (the revocation feed). An allowed node refused is
// a failure at once, whatever the replica.
//
// One case is one tree of 2 to 12 nodes; the short form runs 16 cases on
// each database.
func TestBranchRevocationTree(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testBranchRevocationTree(t, "") })
	t.Run("postgres", func(t *testing.T) { testBranchRevocationTree(t, pgtest.FreshDatabase(t)) })
}

// settle is how soon a revocation through one replica must reach the
// other.
const settle = time.Second

func testBranchRevocationTree(t *testing.T, db string) {
	r := newRand(t)
	replicas := startReplicas(t, db)
	ctx := context.Background()
	anon := client.New(replicas[0].URL(), nil)
	if _, err := anon.Signup(ctx, "ada@example.com", "correct horse battery", "acme"); err != nil {
		t.Fatal(err)
	}
	sess, err := anon.Login(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	tr := client.NewTransport(replicas[0].URL(), "FlyV1 "+sess.Token, sess.Secret)
	var admin [2]*client.Client
	for i, s := range replicas {
		admin[i] = client.New(replicaAddr(s), &http.Client{Transport: tr})
	}
	w := newWorld(time.Now(), []uint64{1, 2}, []uint64{1}, []uint64{1})
	farFuture := time.Now().Add(1000 * time.Hour).Unix()

	cases := iterations(t, 16)
	var sizes, refusedTotal, self int
	for c := range cases {
		via := r.IntN(2)
		tok, err := admin[via].CreateToken(ctx, client.CreateTokenRequest{Profile: "readonly", Org: "acme", Expiry: "1000h"})
		if err != nil {
			t.Fatal(err)
		}
		// The tree: node 0 is the token as minted; parent[i] < i.
		n := 2 + r.IntN(11)
		nodes, parent := []string{tok.Header}, []int{-1}
		for i := 1; i < n; i++ {
			p := r.IntN(i)
			cs := []caveat.Caveat{&caveat.ValidityWindow{NotBefore: 0, NotAfter: farFuture + int64(c*100+i)}}
			for range r.IntN(3) {
				cs = append(cs, benignCaveat(r, w))
			}
			r.Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
			nodes, parent = append(nodes, attenuateHeader(t, nodes[p], cs...)), append(parent, p)
		}
		for i, h := range nodes {
			for _, s := range replicas {
				if code, body := authenticate(t, s, h); code != http.StatusOK {
					t.Fatalf("case %d: node %d before any revocation: %d %s", c, i, code, body)
				}
			}
		}

		// Revoke one node; the oracle is the tree, not the tails.
		k := r.IntN(n)
		subtree := map[int]bool{}
		for i := range nodes {
			for j := i; j >= 0; j = parent[j] {
				if j == k {
					subtree[i] = true
					break
				}
			}
		}
		through := r.IntN(2)
		var rev client.BranchRevocation
		if chance(r, 0.5) {
			self++
			rev, err = client.New(replicaAddr(replicas[through]), &http.Client{Transport: client.NewTransport(replicas[0].URL(), nodes[k], "")}).RevokeSelf(ctx)
		} else {
			rev, err = admin[through].RevokeBranch(ctx, nodes[k])
		}
		if err != nil || !rev.Revoked || rev.ID != tok.ID {
			t.Fatalf("case %d: revoking node %d through replica %d: %+v %v", c, k, through, rev, err)
		}

		// Every replica converges to exactly the subtree refused; the one
		// that revoked has no excuse to lag.
		start := time.Now()
		for {
			lagging := ""
			for ri, s := range replicas {
				for i, h := range nodes {
					code, body := authenticate(t, s, h)
					switch {
					case !subtree[i] && code != http.StatusOK:
						t.Fatalf("case %d (tree %v, revoked node %d through replica %d): replica %d refuses node %d, which is not below the revoked node: %d %s",
							c, parent, k, through, ri, i, code, body)
					case subtree[i] && code == http.StatusOK && ri == through:
						t.Fatalf("case %d (tree %v, revoked node %d): replica %d, through which it was revoked, still accepts node %d",
							c, parent, k, ri, i)
					case subtree[i] && code == http.StatusOK:
						lagging = fmt.Sprintf("replica %d accepts node %d", ri, i)
					case subtree[i] && !strings.Contains(body, "revoked"):
						t.Fatalf("case %d: replica %d refuses node %d without saying it was revoked: %d %s", c, ri, i, code, body)
					}
				}
			}
			if lagging == "" {
				break
			}
			if time.Since(start) > settle {
				t.Fatalf("case %d (tree %v, revoked node %d through replica %d): %s more than %s after the revocation",
					c, parent, k, through, lagging, settle)
			}
			time.Sleep(20 * time.Millisecond)
		}
		sizes += n
		refusedTotal += len(subtree)
	}
	t.Logf("%d trees of %d nodes in all, %d nodes refused by revoking one node (%d by themselves, %d by their creator)",
		cases, sizes, refusedTotal, self, cases-self)
	if refusedTotal == cases || refusedTotal == sizes {
		t.Fatalf("every revoked subtree was a leaf, or every one the whole tree: the property checked too little")
	}
}

// startReplicas starts two servers on one database and one data directory
// (so one master key), the second with the first's public URL, as
// replicas behind one balancer are; each follows the revocation feed.
func startReplicas(t *testing.T, db string) [2]*server.Server {
	t.Helper()
	dir := t.TempDir()
	var out [2]*server.Server
	for i := range out {
		public := ""
		if i > 0 {
			public = out[0].URL()
		}
		out[i] = servertest.Run(t, server.Config{DataDir: dir, DB: db, PublicURL: public, Signup: true, Argon2: cheapArgon2})
	}
	return out
}

// replicaAddr is the URL that reaches this replica itself (its public URL
// may be another's).
func replicaAddr(s *server.Server) string { return "http://" + s.Addr().String() }

// authenticate asks a replica who presents header: 200 or 401; anything
// else fails the test.
func authenticate(t *testing.T, s *server.Server, header string) (int, string) {
	t.Helper()
	ts := &testServer{t: t, url: replicaAddr(s)}
	return ts.authenticate(header)
}

// attenuateHeader adds caveats to a header's first token.
func attenuateHeader(t *testing.T, header string, cs ...caveat.Caveat) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tokens[0].Add(cs...); err != nil {
		t.Fatal(err)
	}
	out := b.Header()
	if out == header {
		t.Fatalf("attenuating added nothing (the caveats were already there)")
	}
	return out
}
