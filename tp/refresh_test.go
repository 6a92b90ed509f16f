package tp_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/tp"
)

// TestRenewal walks a holder through the life of a session: a discharge
// lasting 10 minutes, renewed when less than a minute is left.
func TestRenewal(t *testing.T) {
	clk := newClock()
	d := newDischarger(t, "aaa", immediate(t), func(c *tp.Config) {
		c.Now = clk.Now
		c.Validity = 10 * time.Minute
	})
	m := mint(t, d)
	c := &tp.Client{}
	margin := time.Minute

	h, err := c.FetchDischarges(context.Background(), m.String(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := caveat.ParseBundle(h)
	at, ok := tp.DischargeExpiry(b)
	if !ok || !at.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("discharge expiry %v %v", at, ok)
	}
	if tp.NeedsRefresh(b, clk.Now(), margin) || tp.Expiring(b, clk.Now(), margin) != nil {
		t.Fatal("a fresh discharge needs a refresh")
	}
	if got := tp.DropExpiring(b, clk.Now(), margin); got.String() != b.String() {
		t.Fatal("DropExpiring dropped a fresh discharge")
	}

	clk.Advance(9 * time.Minute)
	if !tp.NeedsRefresh(b, clk.Now(), margin) || !slices.Equal(tp.Expiring(b, clk.Now(), margin), []int{1}) {
		t.Fatalf("a discharge with a minute left: Expiring %v", tp.Expiring(b, clk.Now(), margin))
	}
	kept := tp.DropExpiring(b, clk.Now(), margin)
	if kept.String() != m.String() {
		t.Fatalf("DropExpiring kept %d tokens, want the permission token alone", len(kept.Tokens))
	}
	if len(b.Tokens) != 2 {
		t.Fatal("DropExpiring changed its input")
	}

	h, err = c.FetchDischarges(context.Background(), kept.Header(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = caveat.ParseBundle(h)
	if at, _ := tp.DischargeExpiry(b); !at.Equal(clk.Now().Add(10 * time.Minute)) {
		t.Fatalf("renewed discharge expires %v", at)
	}
	if tp.NeedsRefresh(b, clk.Now(), margin) {
		t.Fatal("the renewed discharge needs a refresh")
	}
	mustVerify(t, h, d)
}

// TestRefreshIgnoresPermissionTokens: only discharges are reported and
// dropped, however soon a permission token expires; a bundle without
// discharges has no discharge expiry.
func TestRefreshIgnoresPermissionTokens(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	m, err := caveat.Mint(rootKey, caveat.NewNonce([]byte("k"), false), firstParty,
		&caveat.ValidityWindow{NotBefore: 0, NotAfter: now.Unix() - 10})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := caveat.ParseBundle(m.String())
	if _, ok := tp.DischargeExpiry(b); ok {
		t.Fatal("expiry reported for a bundle without discharges")
	}
	if tp.NeedsRefresh(b, now, time.Hour) || len(tp.DropExpiring(b, now, time.Hour).Tokens) != 1 {
		t.Fatal("the permission token was treated as a discharge")
	}
}
