package securitytest

// A named token is judged as the organization of the key that verified
// it, never as the organization its registry record claims: a record of
// organization A for a token signed with B's key is refused (401) by
// authenticate, authorize, and the branch revocation that verifies a
// presented branch, rather than acting in A. A token of a retired key is
// refused as unauthenticated (401), not as a failure to check (503).

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

func TestTokenJudgedByItsKeysOrganization(t *testing.T) {
	la := newLocalAuthority(t)
	ctx := context.Background()
	orgA := la.org.ID
	beta, err := la.svc.CreateOrganization(ctx, la.admin, "beta")
	if err != nil {
		t.Fatal(err)
	}
	readA := func() *flyio.Access { return &flyio.Access{OrgID: &orgA, Action: resset.ActionRead} }
	statusOf := func(err error) int {
		code, _, _ := httpjson.StatusOf(err)
		return code
	}

	// The control: a genuine token of A is allowed A.
	genuine := la.mint(authority.MintRequest{Profile: authority.ProfileOrg, Expiry: 24 * time.Hour})
	if _, err := la.svc.Authorize(ctx, genuine, readA()); err != nil {
		t.Fatalf("a genuine token of A: %v", err)
	}

	// A token signed with beta's key, whose record says it is A's (a
	// record written wrongly, or by someone who can write the database
	// but holds no key of A): its caveats allow A.
	kid, key, err := la.keyring.MintingKey(ctx, beta.ID)
	if err != nil {
		t.Fatal(err)
	}
	nonce := caveat.NewNonce(kid, false)
	tok, err := caveat.Mint(key, nonce, la.location, &flyio.Organization{ID: orgA, Mask: resset.ActionAll})
	if err != nil {
		t.Fatal(err)
	}
	if err := la.store.CreateToken(ctx, store.Token{ID: nonce.UUID().String(), Name: "misfiled", Profile: authority.ProfileOrg, OrgID: orgA,
		CreatedBy: la.user.ID, CreatedAt: la.clock.Now(), ExpiresAt: la.clock.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	misfiled := "FlyV1 " + tok.String()
	if _, err := la.svc.Authenticate(ctx, misfiled); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("a token of beta's key recorded as A's, authenticated: %v, want 401", err)
	}
	for _, org := range []uint64{orgA, beta.ID} {
		if _, err := la.svc.Authorize(ctx, misfiled, &flyio.Access{OrgID: &org, Action: resset.ActionRead}); statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("a token of beta's key recorded as A's, asking about organization %d: %v, want 401", org, err)
		}
	}
	if _, err := la.svc.RevokeBranch(ctx, la.admin, misfiled); err == nil || !strings.Contains(err.Error(), "not signed by its organization's key") {
		t.Fatalf("revoking a branch of a token of beta's key recorded as A's: %v, want a refusal", err)
	}

	// A retired key: its tokens are refused, and say so.
	if _, err := la.keyring.Rotate(ctx, orgA); err != nil {
		t.Fatal(err)
	}
	old, err := caveat.ParseBundle(genuine)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.keyring.Retire(ctx, old.Tokens[0].Nonce.KID); err != nil {
		t.Fatal(err)
	}
	_, err = la.svc.Authorize(ctx, genuine, readA())
	if statusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("a token of a retired key: %v, want 401 naming the retirement", err)
	}
	// The control: the organization's new key still mints tokens that work.
	if _, err := la.svc.Authorize(ctx, la.mint(authority.MintRequest{Profile: authority.ProfileOrg, Expiry: time.Hour}), readA()); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
}
