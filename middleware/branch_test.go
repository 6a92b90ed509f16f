package middleware_test

import (
	"context"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
)

// TestRemoteBranchRevocation: a branch revocation reaches Remote through
// the same feed as a token's; Remote evicts every cached verification of
// the token, and the authority then refuses the revoked branch and
// accepts its parent.
func TestRemoteBranchRevocation(t *testing.T) {
	w := setup(t)
	_, remote, cnt := authenticators(t, w)
	ctx := context.Background()
	b, _ := caveat.ParseBundle(w.deploy)
	if err := b.Tokens[0].Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead}}); err != nil {
		t.Fatal(err)
	}
	child := b.Header()
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{w.deploy, child} {
		if _, err := remote.Authenticate(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if remote.Len() != 2 {
		t.Fatalf("cache holds %d bundles, want the parent and the child", remote.Len())
	}
	r, err := w.admin.RevokeBranch(ctx, child)
	if err != nil || !r.Revoked || r.ID != w.deployID {
		t.Fatalf("revoke branch: %+v %v", r, err)
	}
	if err := remote.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if remote.Len() != 0 {
		t.Fatalf("after the branch's feed entry the cache holds %d bundles of its token, want none", remote.Len())
	}
	calls := cnt.n.Load()
	if _, err := remote.Authenticate(ctx, child); status(err) != 401 || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked branch: %v", err)
	}
	if _, err := remote.Authenticate(ctx, w.deploy); err != nil {
		t.Fatalf("the parent of a revoked branch: %v", err)
	}
	if n := cnt.n.Load() - calls; n != 2 {
		t.Fatalf("%d calls to the authority after the eviction, want 2 (both verified afresh)", n)
	}
}
