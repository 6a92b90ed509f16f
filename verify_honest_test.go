package caveat_test

// Honest bundles through the linear verifier: shapes that its memoisation
// (a discharge checked once per verification, bindings looked up in a set,
// a discharge's caveats taken once) must never refuse.

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
)

const (
	honestLoc   = "https://api.example/v1"
	honestLogin = "https://login.example/aaa/v1"
	honestOther = "https://other.example/3p"
)

type timeAccess struct{ now time.Time }

func (a timeAccess) Now() time.Time  { return a.now }
func (a timeAccess) Validate() error { return nil }

type honestFixture struct {
	t       *testing.T
	key     caveat.SigningKey
	ka, kb  caveat.EncryptionKey
	now     time.Time
	trusted caveat.TrustedThirdParties
}

func newHonest(t *testing.T) *honestFixture {
	return &honestFixture{t: t, key: caveat.NewSigningKey(), ka: caveat.NewEncryptionKey(), kb: caveat.NewEncryptionKey(),
		now: time.Unix(1764000000, 0)}
}

func (f *honestFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// token mints a permission token with a ValidityWindow and a 3P caveat for
// each of the given third parties.
func (f *honestFixture) token(tps ...string) *caveat.Macaroon {
	f.t.Helper()
	m, err := caveat.Mint(f.key, caveat.NewNonce([]byte("honest"), false), honestLoc, caveat.NewValidityWindow(f.now, time.Hour))
	f.must(err)
	for _, tp := range tps {
		k := f.ka
		if tp == honestOther {
			k = f.kb
		}
		f.must(m.Add3P(k, tp))
	}
	return m
}

// attenuate returns a copy of m with more caveats.
func (f *honestFixture) attenuate(m *caveat.Macaroon, cs ...caveat.Caveat) *caveat.Macaroon {
	f.t.Helper()
	c, err := caveat.Parse(m.String())
	f.must(err)
	f.must(c.Add(cs...))
	return c
}

// discharge answers m's 3P caveat for tp, with a user attestation, bound to
// each of bindTo (none: unbound), encoded as a third party sends it.
func (f *honestFixture) discharge(m *caveat.Macaroon, tp string, uid uint64, bindTo ...*caveat.Macaroon) *caveat.Macaroon {
	f.t.Helper()
	k := f.ka
	if tp == honestOther {
		k = f.kb
	}
	for _, tk := range m.ThirdPartyTickets() {
		if tk.Location != tp {
			continue
		}
		ticket, err := caveat.OpenTicket(k, tk.Ticket)
		f.must(err)
		u := auth.FlyioUserID(uid)
		d, err := ticket.Discharge(tp, caveat.NewValidityWindow(f.now, 10*time.Minute), &u)
		f.must(err)
		for _, p := range bindTo {
			f.must(d.Bind(p))
		}
		out, err := caveat.Decode(d.Encode())
		f.must(err)
		return out
	}
	f.t.Fatalf("no 3P caveat for %s", tp)
	return nil
}

func (f *honestFixture) bundle(ms ...*caveat.Macaroon) *caveat.Bundle {
	f.t.Helper()
	h := "FlyV1 "
	for i, m := range ms {
		if i > 0 {
			h += ","
		}
		h += m.String()
	}
	b, err := caveat.ParseBundle(h)
	f.must(err)
	return b
}

func typesOf(cs caveat.CaveatSet) []caveat.CaveatType {
	var out []caveat.CaveatType
	for _, c := range cs {
		out = append(out, c.Type)
	}
	return out
}

const (
	tVW  = caveat.TypeValidityWindow
	tUID = caveat.CaveatType(23) // FlyioUserID
)

// TestSharedDischargeAttenuatedCopies: a token and its attenuated copy in one
// bundle share one discharge bound to the token; either verifies, whichever
// comes first, and Authorize falls back from the narrowed copy that refuses
// to the token that allows.
func TestSharedDischargeAttenuatedCopies(t *testing.T) {
	f := newHonest(t)
	base := f.token(honestLogin)
	// The copy may no longer be used at f.now.
	narrowed := f.attenuate(base, &caveat.ValidityWindow{NotBefore: f.now.Add(-2 * time.Hour).Unix(), NotAfter: f.now.Add(-time.Hour).Unix()})
	d := f.discharge(base, honestLogin, 42, base)
	trusted := caveat.TrustedThirdParties{honestLogin: {f.ka}}
	now := timeAccess{f.now.Add(time.Minute)}

	for _, order := range [][]*caveat.Macaroon{{narrowed, base, d}, {base, narrowed, d}, {d, narrowed, base}} {
		b := f.bundle(order...)
		cs, i, err := caveat.VerifiedParts(b.Verify(honestLoc, caveat.StaticKey(f.key), trusted))
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		first := &b.Tokens[i]
		want := []caveat.CaveatType{tVW}
		if len(first.Caveats) == 3 {
			want = append(want, tVW)
		}
		want = append(want, tVW, tUID)
		if got := typesOf(cs); !slices.Equal(got, want) {
			t.Errorf("token %d verified to %v, want %v", i, got, want)
		}
		if err := b.Authorize(honestLoc, caveat.StaticKey(f.key), trusted, now); err != nil {
			t.Errorf("authorize: %v", err)
		}
	}
	// Both narrowed: refused, with the first token's reason.
	other := f.attenuate(base, &caveat.ValidityWindow{NotBefore: 0, NotAfter: 1})
	err := f.bundle(narrowed, other, d).Authorize(honestLoc, caveat.StaticKey(f.key), trusted, now)
	var denied *caveat.DeniedError
	if !errors.As(err, &denied) || denied.Index != 1 {
		t.Errorf("two narrowed copies: %v, want the first copy's caveat 1 to refuse", err)
	}
	// A discharge that refuses, shared: refused for every token.
	late := timeAccess{f.now.Add(30 * time.Minute)}
	if err := f.bundle(narrowed, base, d).Authorize(honestLoc, caveat.StaticKey(f.key), trusted, late); err == nil {
		t.Error("allowed after the shared discharge expired")
	}
}

// TestSeveralThirdParties: a token with two 3P caveats, one discharge bound
// and one not, the discharges in either order; attestations only from the
// trusted third party, and the verified set in the order of the caveats.
func TestSeveralThirdParties(t *testing.T) {
	f := newHonest(t)
	m := f.token(honestLogin, honestOther)
	d1 := f.discharge(m, honestLogin, 1, m)
	d2 := f.discharge(m, honestOther, 2)
	for _, tc := range []struct {
		name    string
		trusted caveat.TrustedThirdParties
		want    []caveat.CaveatType
	}{
		{"untrusted", nil, []caveat.CaveatType{tVW, tVW, tVW}},
		{"login trusted", caveat.TrustedThirdParties{honestLogin: {f.ka}}, []caveat.CaveatType{tVW, tVW, tUID, tVW}},
		{"both trusted", caveat.TrustedThirdParties{honestLogin: {f.ka}, honestOther: {f.kb}}, []caveat.CaveatType{tVW, tVW, tUID, tVW, tUID}},
	} {
		for _, order := range [][]*caveat.Macaroon{{m, d1, d2}, {d2, m, d1}} {
			cs, _, err := caveat.VerifiedParts(f.bundle(order...).Verify(honestLoc, caveat.StaticKey(f.key), tc.trusted))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := typesOf(cs); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	if _, _, err := caveat.VerifiedParts(f.bundle(m, d1).Verify(honestLoc, caveat.StaticKey(f.key), nil)); !errors.Is(err, caveat.ErrMissingDischarge) {
		t.Errorf("one discharge missing: %v", err)
	}
}

// TestBindings: a discharge bound to an earlier tail of a token attenuated
// since, bound twice (to two tails), or bound to another token; with and
// without revoked branches to look for (which compute the binding ids in the
// walk).
func TestBindings(t *testing.T) {
	f := newHonest(t)
	base := f.token(honestLogin)
	mid := f.attenuate(base, &caveat.ValidityWindow{NotBefore: 1, NotAfter: 1 << 40})
	last := f.attenuate(mid, caveat.NewValidityWindow(f.now, 2*time.Hour), caveat.NewValidityWindow(f.now, 3*time.Hour))
	unrelated := f.token(honestLogin)
	other := caveat.BranchSet{caveat.BranchID(caveat.BindingID(unrelated)): {}}
	for _, tc := range []struct {
		name   string
		bindTo []*caveat.Macaroon
		ok     bool
	}{
		{"unbound", nil, true},
		{"to the token as it was", []*caveat.Macaroon{base}, true},
		{"to the middle and the last step", []*caveat.Macaroon{mid, last}, true},
		{"to every step", []*caveat.Macaroon{last, base, mid}, true},
		{"to another token", []*caveat.Macaroon{unrelated}, false},
		{"to a step and another token", []*caveat.Macaroon{mid, unrelated}, false},
	} {
		d := f.discharge(base, honestLogin, 7, tc.bindTo...)
		for _, opts := range []*caveat.VerifyOptions{nil, {RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) { return other, nil }}} {
			// Alone, and after another permission token (without its
			// discharge), which makes them be verified together.
			for _, b := range []*caveat.Bundle{f.bundle(last, d), f.bundle(unrelated, last, d)} {
				_, i, err := caveat.VerifiedParts(b.VerifyWith(honestLoc, caveat.StaticKey(f.key), nil, opts))
				if tc.ok && (err != nil || i != len(b.Tokens)-2) {
					t.Errorf("%s (revoked set %v, %d tokens): token %d, %v", tc.name, opts != nil, len(b.Tokens), i, err)
				}
				if !tc.ok && !errors.Is(err, caveat.ErrWrongParent) && !errors.Is(err, caveat.ErrMissingDischarge) {
					t.Errorf("%s (revoked set %v, %d tokens): %v, want ErrWrongParent", tc.name, opts != nil, len(b.Tokens), err)
				}
				if !tc.ok && err == nil {
					t.Errorf("%s (revoked set %v, %d tokens): verified", tc.name, opts != nil, len(b.Tokens))
				}
			}
		}
	}
}

// TestNoPermissionToken: the refusal for a location the bundle has no token
// for names the permission tokens' locations and not the discharges'; and
// Discharges finds a token's discharges in any order.
func TestNoPermissionToken(t *testing.T) {
	f := newHonest(t)
	m := f.token(honestLogin, honestOther)
	d1 := f.discharge(m, honestLogin, 1, m)
	d2 := f.discharge(m, honestOther, 2)
	b := f.bundle(d2, m, d1)
	_, _, err := caveat.VerifiedParts(b.Verify("https://elsewhere.example/v1", caveat.StaticKey(f.key), nil))
	if !errors.Is(err, caveat.ErrNoPermissionToken) || !strings.Contains(err.Error(), `"`+honestLoc+`"`) ||
		strings.Contains(err.Error(), honestLogin) || strings.Contains(err.Error(), honestOther) {
		t.Errorf("%v", err)
	}
	if got := b.Discharges(1); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("Discharges(1) = %v, want [0 2]", got)
	}
	if got := b.Discharges(0); got != nil {
		t.Errorf("Discharges(0) = %v, want none", got)
	}
	_, _, err = caveat.VerifiedParts(f.bundle(d1, d2).Verify(honestLoc, caveat.StaticKey(f.key), nil))
	if !errors.Is(err, caveat.ErrNoPermissionToken) || !strings.Contains(err.Error(), "only discharges") {
		t.Errorf("only discharges: %v", err)
	}
}
