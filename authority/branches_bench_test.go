package authority

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/fake"
	"github.com/caveatdev/caveat/keyring"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
	"github.com/caveatdev/caveat/store/sqlite"
)

// autoscalerBundle is the autoscaler bundle of BENCHMARKS.md (the root
// package's fixture, rebuilt here): a deploy-shaped token with a login
// third-party caveat and Machines{"": rC}, and its bound discharge.
func autoscalerBundle(tb testing.TB) (header string, key caveat.SigningKey, trusted caveat.TrustedThirdParties) {
	tb.Helper()
	now := time.Unix(1764000000, 0)
	key, tpKey := caveat.NewSigningKey(), caveat.NewEncryptionKey()
	perm, err := caveat.Mint(key, caveat.NewNonce([]byte("0123456789abcdef"), false), testLocation,
		&flyio.Organization{ID: 4721, Mask: resset.ActionAll},
		&flyio.Apps{Apps: resset.ResourceSet[uint64]{555: resset.ActionAll}},
		caveat.NewValidityWindow(now, 365*24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	if err := perm.Add3P(tpKey, testLogin, &auth.ConfineOrganization{ID: 4721}); err != nil {
		tb.Fatal(err)
	}
	if err := perm.Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead | resset.ActionControl}}); err != nil {
		tb.Fatal(err)
	}
	ticket, err := caveat.OpenTicket(tpKey, perm.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		tb.Fatal(err)
	}
	uid := auth.FlyioUserID(42)
	d, err := ticket.Discharge(testLogin, caveat.NewValidityWindow(now, 10*time.Minute+30*time.Second), &uid)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Bind(perm); err != nil {
		tb.Fatal(err)
	}
	return "FlyV1 " + perm.String() + "," + d.String(), key, caveat.TrustedThirdParties{testLogin: {tpKey}}
}

// revokedSet is n revoked branches, none of them the bundle's.
func revokedSet(n int) caveat.BranchSet {
	set := make(caveat.BranchSet, n)
	for i := range n {
		var b caveat.BranchID
		copy(b[:], fmt.Sprintf("revoked %d", i))
		set[b] = struct{}{}
	}
	return set
}

// BenchmarkVerifyBranches is the cost of the branch check inside
// verification: the autoscaler bundle parsed and verified with Verify,
// and with VerifyWith asking for the token's revoked branches (none, as
// for almost every token; and store.MaxRevokedBranches, none of them the
// bundle's, so that every tail is looked up and the bundle passes).
func BenchmarkVerifyBranches(b *testing.B) {
	header, key, trusted := autoscalerBundle(b)
	for _, bc := range []struct {
		name string
		opts *caveat.VerifyOptions
	}{
		{"Verify", nil},
		{"VerifyWith/revoked=0", &caveat.VerifyOptions{RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) { return nil, nil }}},
		{"VerifyWith/revoked=1000", &caveat.VerifyOptions{RevokedBranches: func(set caveat.BranchSet) func(*caveat.Macaroon) (caveat.BranchSet, error) {
			return func(*caveat.Macaroon) (caveat.BranchSet, error) { return set, nil }
		}(revokedSet(store.MaxRevokedBranches))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bd, err := caveat.ParseBundle(header)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := bd.VerifyWith(testLocation, caveat.StaticKey(key), trusted, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthenticateBranches is the authority's whole uncached
// verification of a named token over SQLite (parse, verify, the registry
// record, the branch check) with 0 and with store.MaxRevokedBranches
// revoked branches of the token, none of them the one presented: the
// second also reads the branches (one more query) and builds the set.
func BenchmarkAuthenticateBranches(b *testing.B) {
	for _, n := range []int{0, store.MaxRevokedBranches} {
		b.Run(fmt.Sprintf("revoked=%d", n), func(b *testing.B) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "caveat.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			clk := fake.NewClock(time.Unix(1764000000, 0))
			kr := keyring.NewKeyring(keyring.NewMasterKey(), db, clk.Now)
			svc, err := New(Config{Store: db, Keyring: kr, Location: testLocation, LoginLocation: testLogin, Now: clk.Now, CacheSize: -1})
			if err != nil {
				b.Fatal(err)
			}
			u, o, err := db.CreateUserWithOrganization(ctx, store.Signup{
				User: store.NewUser{Email: "ada@example.com", PasswordHash: "x", CreatedAt: clk.Now()}, OrganizationSlug: "acme"})
			if err != nil {
				b.Fatal(err)
			}
			m, err := svc.Mint(ctx, &Principal{UserID: u.ID, SessionID: "bench"}, MintRequest{Profile: ProfileReadonly, OrgID: o.ID})
			if err != nil {
				b.Fatal(err)
			}
			tok := "FlyV1 " + m.Token.String()
			for i := range n {
				var br store.BranchID
				copy(br[:], fmt.Sprintf("revoked %d", i))
				if _, err := db.RevokeBranch(ctx, store.RevokedBranch{TokenID: m.Record.ID, Branch: br, RevokedAt: clk.Now()}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
