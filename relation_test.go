package caveat

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// relationFixture mints permission tokens at one location with login 3P
// caveats, and discharges for them.
type relationFixture struct {
	t   *testing.T
	key SigningKey
	ka  EncryptionKey
	now time.Time
}

const (
	relLoc   = "https://rel.example/v1"
	relLogin = "https://rel.example/aaa/v1"
	relOther = "https://other.example/v1"
)

func newRelationFixture(t *testing.T) *relationFixture {
	return &relationFixture{t: t, key: NewSigningKey(), ka: NewEncryptionKey(), now: time.Unix(1_800_000_000, 0)}
}

// token mints a token with kid and one 3P caveat per location, after a
// ValidityWindow (so the 3P caveats are caveats 1, 2, …).
func (f *relationFixture) token(kid string, tps ...string) *Macaroon {
	f.t.Helper()
	m, err := Mint(f.key, NewNonce([]byte(kid), false), relLoc, NewValidityWindow(f.now, time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, loc := range tps {
		if err := m.Add3P(f.ka, loc); err != nil {
			f.t.Fatal(err)
		}
	}
	return m
}

// discharge discharges m's 3P caveat k (among its 3P caveats), bound to
// bindTo (m when nil), with extra caveats; it is left unfinalised.
func (f *relationFixture) discharge(m *Macaroon, k int, bindTo *Macaroon, cs ...Caveat) *Macaroon {
	f.t.Helper()
	tk, err := OpenTicket(f.ka, m.ThirdPartyTickets()[k].Ticket)
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := tk.Discharge(relLogin, cs...)
	if err != nil {
		f.t.Fatal(err)
	}
	if bindTo == nil {
		bindTo = m
	}
	if err := d.Bind(bindTo); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *relationFixture) bundle(ms ...*Macaroon) *Bundle {
	f.t.Helper()
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	b, err := ParseBundle(strings.Join(parts, ","))
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *relationFixture) verify(b *Bundle) (*Verified, error) {
	return b.Verify(relLoc, StaticKey(f.key), TrustedThirdParties{relLogin: {f.ka}})
}

// tpSummary renders ThirdParties(i) as caveat→discharges pairs.
type tpSummary struct {
	caveat     int
	location   string
	discharges []int
}

func summarize(tps []ThirdParty) []tpSummary {
	var out []tpSummary
	for _, tp := range tps {
		out = append(out, tpSummary{tp.Caveat, tp.Location, tp.Discharges})
	}
	return out
}

func sameSummary(a, b []tpSummary) bool {
	return slices.EqualFunc(a, b, func(x, y tpSummary) bool {
		return x.caveat == y.caveat && x.location == y.location && slices.Equal(x.discharges, y.discharges)
	})
}

func TestThirdPartiesRelation(t *testing.T) {
	f := newRelationFixture(t)
	m := f.token("k1", relLogin, relOther)
	d0 := f.discharge(m, 0, nil)
	d1 := f.discharge(m, 1, nil)
	b := f.bundle(d1, m, d0)

	want := []tpSummary{{1, relLogin, []int{2}}, {2, relOther, []int{0}}}
	if got := summarize(b.ThirdParties(1)); !sameSummary(got, want) {
		t.Errorf("ThirdParties(1) = %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		token, caveat, want int
		ok                  bool
	}{
		{1, 1, 2, true},
		{1, 2, 0, true},
		{1, 0, -1, false},  // a ValidityWindow
		{1, 3, -1, false},  // out of range
		{-1, 0, -1, false}, // out of range
		{0, 0, -1, false},  // the discharge's binding
	} {
		if got, ok := b.DischargeFor(tc.token, tc.caveat); got != tc.want || ok != tc.ok {
			t.Errorf("DischargeFor(%d, %d) = %d, %v; want %d, %v", tc.token, tc.caveat, got, ok, tc.want, tc.ok)
		}
	}
	if tps := b.ThirdParties(0); tps != nil {
		t.Errorf("a discharge without 3P caveats: ThirdParties = %+v", tps)
	}
	if got := b.Discharges(1); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("Discharges(1) = %v, want [0 2]", got)
	}

	v, err := f.verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token != 1 || !bytes.Equal(v.KID, []byte("k1")) {
		t.Errorf("verified token %d with KID %q, want 1 with k1", v.Token, v.KID)
	}
	if want := []Discharged{{Caveat: 1, Discharge: 2}, {Caveat: 2, Discharge: 0}}; !slices.Equal(v.Discharges, want) {
		t.Errorf("Verified.Discharges = %+v, want %+v", v.Discharges, want)
	}
	// The token's ValidityWindow, then the discharges' (none), in the
	// order of the 3P caveats they answer.
	if len(v.Caveats) != 1 || v.Caveats[0].Type != TypeValidityWindow {
		t.Errorf("verified caveats %+v", v.Caveats)
	}
}

func TestThirdPartiesMissingDischarge(t *testing.T) {
	f := newRelationFixture(t)
	m := f.token("k1", relLogin, relOther)
	d1 := f.discharge(m, 1, nil)
	b := f.bundle(m, d1)

	want := []tpSummary{{1, relLogin, nil}, {2, relOther, []int{1}}}
	got := summarize(b.ThirdParties(0))
	if !sameSummary(got, want) {
		t.Errorf("ThirdParties(0) = %+v, want %+v", got, want)
	}
	if tps := b.ThirdParties(0); tps[0].Discharged() || !tps[1].Discharged() {
		t.Errorf("Discharged: %v, %v; want false, true", tps[0].Discharged(), tps[1].Discharged())
	}
	if j, ok := b.DischargeFor(0, 1); ok || j != -1 {
		t.Errorf("DischargeFor of the missing one = %d, %v", j, ok)
	}
	if _, err := f.verify(b); !errors.Is(err, ErrMissingDischarge) {
		t.Errorf("Verify: %v, want ErrMissingDischarge", err)
	}
}

// TestThirdPartiesDuplicateDischarge: two discharges of one ticket. The
// relation lists both, in bundle order, and DischargeFor names the first;
// Verified names the one verification accepted, the second when the first
// is bound to another token.
func TestThirdPartiesDuplicateDischarge(t *testing.T) {
	f := newRelationFixture(t)
	m := f.token("k1", relLogin)
	stranger := f.token("k2")
	good := f.discharge(m, 0, nil)
	astray := f.discharge(m, 0, stranger)
	for _, tc := range []struct {
		name     string
		order    []*Macaroon
		first    int
		verified int
	}{
		{"both bound", []*Macaroon{m, f.discharge(m, 0, nil), good}, 1, 1},
		{"the first bound elsewhere", []*Macaroon{m, astray, good}, 1, 2},
	} {
		b := f.bundle(tc.order...)
		if got := summarize(b.ThirdParties(0)); !sameSummary(got, []tpSummary{{1, relLogin, []int{1, 2}}}) {
			t.Errorf("%s: ThirdParties(0) = %+v", tc.name, got)
		}
		if j, ok := b.DischargeFor(0, 1); !ok || j != tc.first {
			t.Errorf("%s: DischargeFor = %d, %v; want %d", tc.name, j, ok, tc.first)
		}
		v, err := f.verify(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want := []Discharged{{Caveat: 1, Discharge: tc.verified}}; !slices.Equal(v.Discharges, want) {
			t.Errorf("%s: Verified.Discharges = %+v, want %+v", tc.name, v.Discharges, want)
		}
	}
}

// TestThirdPartiesDischargeOfAnotherToken: a discharge answers the token
// whose ticket it carries, not another token's caveat for the same third
// party, and never its own token's.
func TestThirdPartiesDischargeOfAnotherToken(t *testing.T) {
	f := newRelationFixture(t)
	a := f.token("ka", relLogin)
	other := f.token("kb", relLogin)
	forOther := f.discharge(other, 0, nil)
	b := f.bundle(a, other, forOther)
	if j, ok := b.DischargeFor(0, 1); ok {
		t.Errorf("token 0's caveat is answered by token %d", j)
	}
	if j, ok := b.DischargeFor(1, 1); !ok || j != 2 {
		t.Errorf("DischargeFor(1, 1) = %d, %v; want 2", j, ok)
	}
	if got := summarize(b.ThirdParties(0)); !sameSummary(got, []tpSummary{{1, relLogin, nil}}) {
		t.Errorf("ThirdParties(0) = %+v", got)
	}
	// Verification passes token 0 over and verifies token 1.
	v, err := f.verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token != 1 || string(v.KID) != "kb" || !slices.Equal(v.Discharges, []Discharged{{Caveat: 1, Discharge: 2}}) {
		t.Errorf("verified token %d (KID %q), discharges %+v; want token 1 (kb) with token 2", v.Token, v.KID, v.Discharges)
	}

	// A token whose KID is its own caveat's ticket does not answer it.
	self := f.token("placeholder", relLogin)
	self.Nonce.KID = self.ThirdPartyTickets()[0].Ticket
	bs := &Bundle{Tokens: []Macaroon{*self}}
	if j, ok := bs.DischargeFor(0, 1); ok {
		t.Errorf("a token answers its own caveat (token %d)", j)
	}
	if tps := bs.ThirdParties(0); len(tps) != 1 || tps[0].Discharged() {
		t.Errorf("ThirdParties of a self-answering token = %+v", tps)
	}
}

// TestThirdPartiesNestedInDischarge: a discharge holding a 3P caveat of its
// own. The relation relates it (the format can carry it), but verification
// refuses such a discharge: nesting is not supported (spec §4.8).
func TestThirdPartiesNestedInDischarge(t *testing.T) {
	f := newRelationFixture(t)
	m := f.token("k1", relLogin)
	d := f.discharge(m, 0, nil)
	if err := d.Add3P(f.ka, relOther); err != nil {
		t.Fatal(err)
	}
	tk, err := OpenTicket(f.ka, d.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := tk.Discharge(relOther)
	if err != nil {
		t.Fatal(err)
	}
	b := f.bundle(m, d, inner)
	if got := summarize(b.ThirdParties(1)); !sameSummary(got, []tpSummary{{1, relOther, []int{2}}}) {
		t.Errorf("ThirdParties of the discharge = %+v", got)
	}
	if j, ok := b.DischargeFor(1, 1); !ok || j != 2 {
		t.Errorf("DischargeFor(1, 1) = %d, %v; want 2", j, ok)
	}
	if j, ok := b.DischargeFor(0, 1); !ok || j != 1 {
		t.Errorf("DischargeFor(0, 1) = %d, %v; want 1", j, ok)
	}
	if !b.IsDischarge(1) || !b.IsDischarge(2) {
		t.Error("the nested discharges are not discharges")
	}
	if _, err := f.verify(b); !errors.Is(err, ErrMissingDischarge) || !strings.Contains(err.Error(), "inside a discharge") {
		t.Errorf("Verify: %v, want the nested 3P caveat refused", err)
	}
}

// TestVerifiedSeveralPermissionTokens: with several permission tokens for
// the location, Verified describes the first that verifies, with its KID:
// what the authority used to learn by watching its KeyFunc.
func TestVerifiedSeveralPermissionTokens(t *testing.T) {
	f := newRelationFixture(t)
	undischarged := f.token("first", relLogin)
	m := f.token("second", relLogin)
	d := f.discharge(m, 0, nil, NewValidityWindow(f.now, time.Minute))
	plain := f.token("third")
	b := f.bundle(undischarged, d, m, plain)
	v, err := f.verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token != 2 || string(v.KID) != "second" || !slices.Equal(v.Discharges, []Discharged{{Caveat: 1, Discharge: 1}}) {
		t.Errorf("verified token %d (KID %q), discharges %+v; want token 2 (second) with token 1", v.Token, v.KID, v.Discharges)
	}
	if len(v.Caveats) != 2 {
		t.Errorf("verified caveats %+v: want the token's window and the discharge's", v.Caveats)
	}
	// A token without third-party caveats has no Discharges.
	v, err = f.verify(f.bundle(plain))
	if err != nil || v.Token != 0 || string(v.KID) != "third" || len(v.Discharges) != 0 {
		t.Errorf("plain token: %+v, %v", v, err)
	}
}
