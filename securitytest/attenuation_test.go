package securitytest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/flyio"
)

// TestAttenuationNeverWidens: adding caveats to a token never lets
// through an access that was refused before, and the verified caveat set
// after is the set before with the new caveats in the token's place.
//
// The tokens are minted by an authority.Service over SQLite (every
// profile, and sessions with their bound discharges) or minted directly
// with random caveats under an organization's key, and are often already
// attenuated. Each case adds one to three caveats in one of three ways:
// Macaroon.Add (now and then with an undischargeable third-party caveat),
// "caveat tokens attenuate" (JSON), or by computing the HMAC chain by hand,
// which lets anyone append what the library refuses (attestations,
// bindings, non-canonical encodings, unregistered types). Random accesses
// are judged before and after twice: by verifying the bundle and clearing
// its caveats (the library), and by authority.Service.Authorize (for the
// tokens the authority knows). Refused before must stay refused after;
// forged caveats that no verifier may accept must make verification fail.
//
// One case is one attenuation and 10 accesses; the short form runs 300
// cases.
func TestAttenuationNeverWidens(t *testing.T) {
	r := newRand(t)
	la := newLocalAuthority(t)
	ctx := context.Background()
	var appIDs []uint64
	for _, a := range la.apps {
		appIDs = append(appIDs, a.ID)
	}
	w := newWorld(la.clock.Now(), []uint64{la.org.ID, la.org.ID + 1, 4242}, appIDs, []uint64{la.user.ID, la.user.ID + 1})

	type base struct {
		what   string
		header string
		// known: the authority registered it (a named token or a session),
		// so that Authorize can allow it.
		known bool
	}
	var bases []base
	for _, p := range authority.Profiles {
		req := authority.MintRequest{Profile: p, Expiry: time.Duration(1+r.IntN(1000)) * time.Hour}
		if p == authority.ProfileDeploy || p == authority.ProfileMachineExec {
			req.AppID = pick(r, appIDs)
		}
		if p == authority.ProfileMachineExec && chance(r, 0.5) {
			req.Commands = flyio.Commands{{Args: pick(r, w.commands), Exact: chance(r, 0.5)}}
		}
		bases = append(bases, base{"named token, profile " + p, la.mint(req), true})
	}
	bases = append(bases, base{"session", la.session(), true})
	kid, key, err := la.keyring.MintingKey(ctx, la.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var cs []caveat.Caveat
		for range r.IntN(4) {
			cs = append(cs, randomCaveat(r, w, 0, false))
		}
		m, err := caveat.Mint(key, caveat.NewNonce(kid, false), la.location, cs...)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, base{"token minted with random caveats", "FlyV1 " + m.String(), false})
	}

	cases := iterations(t, 300)
	const perCase = 10
	var narrowed, kept, stayedRefused, brokeVerification, authorityAllowed, failures int
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if failures++; failures == 20 {
			t.Fatal("stopping after 20 failures")
		}
	}
	for i := range cases {
		b := bases[i%len(bases)]
		before := b.header
		if chance(r, 0.5) {
			before = attenuated(t, r, w, before, la.location, 1+r.IntN(3))
		}
		after, added, expectInvalid, how := attenuateOnce(t, r, w, before, la.location)

		cs0, err0 := la.verify(before)
		cs1, err1 := la.verify(after)
		what := func() string {
			return b.what + " " + describeHeader(t, before, la.location) + ", " + how + " " + describeCaveats(added)
		}
		switch {
		case err0 != nil:
			// Refused before: everything stays refused below.
		case err1 != nil && !expectInvalid:
			fail("case %d: %s: the attenuated token no longer verifies: %v", i, what(), err1)
		case err1 == nil && expectInvalid:
			fail("case %d: %s: the token verifies with caveats that no verifier may accept", i, what())
		case err1 != nil:
			brokeVerification++
		default:
			k := tokenPart(t, before, la.location)
			want := append(append(append(caveat.CaveatSet{}, cs0[:k]...), added...), cs0[k:]...)
			if !sameCaveats(cs1, want) {
				fail("case %d: %s: verified caveats after\n%s\nwant the caveats before with the new ones after the token's own\n%s",
					i, what(), describeCaveats(cs1), describeCaveats(want))
			}
		}

		for range perCase {
			org := la.org.ID
			if chance(r, 0.2) {
				org = pick(r, w.orgs)
			}
			a := randomAccess(r, w, org)
			lib0 := err0 == nil && cs0.Clear(a) == nil
			lib1 := err1 == nil && cs1.Clear(a) == nil
			if lib1 && !lib0 {
				fail("case %d: %s: the library allows %s after attenuation, and refused it before", i, what(), describeAccess(a))
			}
			if b.known {
				_, e0 := la.svc.Authorize(ctx, before, a)
				_, e1 := la.svc.Authorize(ctx, after, a)
				if e0 == nil {
					authorityAllowed++
				}
				if e1 == nil && e0 != nil {
					fail("case %d: %s: the authority allows %s after attenuation, and refused it before: %v", i, what(), describeAccess(a), e0)
				}
				if (e0 == nil) != lib0 && b.what != "session" {
					fail("case %d: %s: for %s the authority says %v and the library's clearing %v", i, what(), describeAccess(a), e0, lib0)
				}
			}
			switch {
			case lib0 && lib1:
				kept++
			case lib0:
				narrowed++
			default:
				stayedRefused++
			}
		}
	}
	t.Logf("%d cases: %d attenuations made the token fail verification as they should; accesses: %d allowed before and after, %d allowed before and refused after, %d refused before and after; the authority allowed %d before",
		cases, brokeVerification, kept, narrowed, stayedRefused, authorityAllowed)
	if kept == 0 || narrowed == 0 || authorityAllowed == 0 {
		t.Error("no access was allowed before and then allowed, or refused, after: the cases test nothing")
	}
}

// attenuateOnce adds one to three caveats to the permission token of
// header in one of three ways, and returns the new header, the caveats
// that must now appear in its verified set (Add skips duplicates), whether
// verification must now fail, and the way.
func attenuateOnce(t *testing.T, r *rand.Rand, w *world, header, location string) (after string, added caveat.CaveatSet, expectInvalid bool, how string) {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	i := permissionToken(t, b, location)
	m := &b.Tokens[i]
	n := 1 + r.IntN(3)

	if r.IntN(3) == 2 {
		var raws caveat.CaveatSet
		for range n {
			c := randomForgery(r, w)
			raws = append(raws, c)
			if c.Type == caveat.TypeBindToParentToken || c.Type == caveat.Type3P || c.Attestation() || c.Canonical() != nil {
				expectInvalid = true
			}
		}
		forged, err := forge(m, raws...)
		if err != nil {
			t.Fatal(err)
		}
		b.Tokens[i] = *forged
		return b.Header(), raws, expectInvalid, "appended by hand"
	}

	var cs []caveat.Caveat
	for range n {
		cs = append(cs, randomCaveat(r, w, 0, false))
	}
	viaCLI := r.IntN(2) == 0
	if viaCLI {
		// The CLI refuses bindings: only a discharge's issuer binds it.
		cs = slices.DeleteFunc(cs, func(c caveat.Caveat) bool { return c.CaveatType() == caveat.TypeBindToParentToken })
		if len(cs) == 0 {
			cs = append(cs, &flyio.IsMember{})
		}
	}
	want := caveat.NewCaveatSet(cs...)
	if viaCLI {
		// The CLI reads caveats as JSON, which is not a lossless form: a
		// mask's bits without letters are lost ("*" becomes "rwcdC"), which
		// narrows. What it adds is what the JSON says.
		js, err := want.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := caveat.ParseJSON(js)
		if err != nil {
			t.Fatalf("caveats from JSON: %v\n%s", err, js)
		}
		want = caveat.NewCaveatSet(parsed...)
	}
	seen := append(caveat.CaveatSet{}, m.Caveats...)
	for _, c := range want {
		if !containsCaveat(seen, c) {
			seen = append(seen, c)
			added = append(added, c)
		}
		if c.Type == caveat.TypeBindToParentToken {
			expectInvalid = true
		}
	}
	if viaCLI {
		after, err := attenuateCLI(t, header, cs)
		if err != nil {
			t.Fatal(err)
		}
		return after, added, expectInvalid, "added with caveat tokens attenuate"
	}
	if err := m.Add(cs...); err != nil {
		t.Fatalf("Add: %v", err)
	}
	how = "added with Add"
	if r.IntN(20) == 0 {
		if err := thirdPartyCaveat(r, m); err != nil {
			t.Fatal(err)
		}
		expectInvalid = true
		how = "added with Add, and a third-party caveat no one can discharge,"
	}
	return b.Header(), added, expectInvalid, how
}

// tokenPart is how many of the verified caveats of header come from its
// permission token: its caveats but the third-party ones, which
// verification consumes. The discharges' caveats follow them.
func tokenPart(t testing.TB, header, location string) int {
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range b.Tokens[permissionToken(t, b, location)].Caveats {
		if c.Type != caveat.Type3P {
			n++
		}
	}
	return n
}

func containsCaveat(s caveat.CaveatSet, c caveat.RawCaveat) bool {
	for _, have := range s {
		if have.Type == c.Type && bytes.Equal(have.Body, c.Body) {
			return true
		}
	}
	return false
}

func sameCaveats(a, b caveat.CaveatSet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Body, b[i].Body) {
			return false
		}
	}
	return true
}
