package caveat

// The rules the linear verifier adds, on bundles a holder can craft (it
// knows every tail of its token, so it can add 3P caveats with any ticket
// and discharge key): a discharge's caveats are taken once however many 3P
// caveats it satisfies; a ticket names one discharge key; bindings are
// checked as a set, including the odd ones (empty, too long, prefixes of
// one another, more of them than the parent has tails).

import (
	"errors"
	"testing"
)

func verifyBundle(t *testing.T, b *costBuilder, ms ...*Macaroon) (CaveatSet, error) {
	t.Helper()
	bundle, err := ParseBundle(costHeader(t, ms...))
	if err != nil {
		t.Fatal(err)
	}
	cs, _, err := verifiedParts(bundle.Verify(costLocation, StaticKey(b.key), b.trusted))
	return cs, err
}

// TestDischargeCaveatsOnce: three 3P caveats with one ticket and key, and
// their one discharge, which carries 5 caveats and a binding: the verified
// set has the token's own caveat and the discharge's 5, once.
func TestDischargeCaveatsOnce(t *testing.T) {
	b := newCostBuilder(t)
	m := b.perm()
	b.add(m, b.tinyCaveat(0))
	rn := randBytes(t, dischargeKeySize)
	ticket := b.ticket(rn)
	for range 3 {
		b.add3P(m, ticket, rn)
	}
	var dcs []RawCaveat
	for i := range 5 {
		dcs = append(dcs, b.tinyCaveat(i+1))
	}
	dcs = append(dcs, bindTo(m.tail))
	cs, err := verifyBundle(t, b, m, b.discharge(rn, ticket, dcs...))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 6 {
		t.Errorf("verified set of %d caveats, want 6 (1 + the discharge's 5, once)", len(cs))
	}
}

// TestTicketNamesOneKey: a second 3P caveat with the same ticket and another
// discharge key is refused, even when a discharge for that key is present.
func TestTicketNamesOneKey(t *testing.T) {
	b := newCostBuilder(t)
	m := b.perm()
	ticket := randBytes(t, 16)
	rn1, rn2 := randBytes(t, dischargeKeySize), randBytes(t, dischargeKeySize)
	b.add3P(m, ticket, rn1)
	b.add3P(m, ticket, rn2)
	_, err := verifyBundle(t, b, m, b.discharge(rn1, ticket), b.discharge(rn2, ticket))
	if !errors.Is(err, ErrBadDischarge) {
		t.Errorf("%v, want ErrBadDischarge", err)
	}
}

// TestBindingSet: bindings looked up in the parent's set of binding ids.
func TestBindingSet(t *testing.T) {
	b := newCostBuilder(t)
	m := b.perm()
	tails := [][]byte{m.tail}
	for i := range 4 {
		b.add(m, b.tinyCaveat(i))
		tails = append(tails, m.tail)
	}
	rn := randBytes(t, dischargeKeySize)
	ticket := randBytes(t, 16)
	b.add3P(m, ticket, rn)
	tails = append(tails, m.tail)
	idOf := func(k, n int) []byte {
		var tl [tailSize]byte
		copy(tl[:], tails[k])
		id := bindingID(tl)
		return id[:n]
	}
	bind := func(v []byte) RawCaveat {
		c := BindToParentToken(v)
		return Encode(&c)
	}
	foreign := randBytes(t, bindingIDSize)
	for _, tc := range []struct {
		name  string
		binds [][]byte
		ok    bool
	}{
		{"empty", [][]byte{{}}, true},
		{"one step", [][]byte{idOf(2, 16)}, true},
		{"whole id", [][]byte{idOf(0, 32)}, true},
		{"longer than an id", [][]byte{append(idOf(0, 32), 0)}, false},
		{"a prefix and its extension", [][]byte{idOf(3, 4), idOf(3, 16), idOf(3, 4)}, true},
		{"every step, twice", [][]byte{idOf(0, 16), idOf(1, 16), idOf(2, 16), idOf(3, 16), idOf(4, 16), idOf(5, 16), idOf(0, 16)}, true},
		{"steps and a foreign id", [][]byte{idOf(0, 16), idOf(1, 16), foreign}, false},
		{"more distinct values than tails", [][]byte{idOf(0, 16), idOf(1, 16), idOf(2, 16), idOf(3, 16), idOf(4, 16), idOf(5, 16), foreign[:3]}, false},
	} {
		var cs []RawCaveat
		for _, v := range tc.binds {
			cs = append(cs, bind(v))
		}
		_, err := verifyBundle(t, b, m, b.discharge(rn, ticket, cs...))
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrWrongParent) {
			t.Errorf("%s: %v, want ErrWrongParent", tc.name, err)
		}
	}
}

// TestBindIndexManyTokens: 70 permission tokens verified together (a
// hand-built bundle, over the 64 of a header, so that the index needs two
// words per id), all attenuations of one token, sharing a discharge bound to
// the last one only: only the last verifies, and a discharge bound to the
// shared root verifies the first.
func TestBindIndexManyTokens(t *testing.T) {
	b := newCostBuilder(t)
	root := b.perm()
	rn, ticket := randBytes(t, dischargeKeySize), randBytes(t, 16)
	b.add3P(root, ticket, rn)
	const n = 70
	var parents []*Macaroon
	for i := range n {
		m := b.clone(root)
		b.add(m, b.tinyCaveat(i))
		parents = append(parents, m)
	}
	for _, tc := range []struct {
		name string
		to   []byte
		want int
	}{
		{"bound to the last", parents[n-1].tail, n - 1},
		{"bound to the root", root.tail, 0},
	} {
		d := b.discharge(rn, ticket, bindTo(tc.to))
		var bundle Bundle
		for _, m := range append(parents, d) {
			c, err := Parse(m.String())
			if err != nil {
				t.Fatal(err)
			}
			bundle.Tokens = append(bundle.Tokens, *c)
		}
		_, i, err := verifiedParts(bundle.Verify(costLocation, StaticKey(b.key), nil))
		if err != nil || i != tc.want {
			t.Errorf("%s: token %d, %v; want token %d", tc.name, i, err, tc.want)
		}
	}
}
