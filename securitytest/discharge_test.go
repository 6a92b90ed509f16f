package securitytest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
)

// sessionToken is one permission token descended from a session token:
// the session's, or an attenuation of it made offline.
type sessionToken struct {
	session int
	m       *caveat.Macaroon
}

// heldDischarge is a login discharge, with the token it was fetched for.
type heldDischarge struct {
	session int
	boundTo *caveat.Macaroon
	text    string
}

// satisfies reports whether d may discharge t: a discharge is for one
// session's ticket and bound to the token it was fetched for, so it
// satisfies that token and the tokens made by adding caveats to it.
func (d heldDischarge) satisfies(t sessionToken) bool {
	if d.session != t.session || len(d.boundTo.Caveats) > len(t.m.Caveats) {
		return false
	}
	return sameCaveats(d.boundTo.Caveats, t.m.Caveats[:len(d.boundTo.Caveats)])
}

// benignCaveat is a random caveat that keeps a token verifying and
// unexpired (see benign).
func benignCaveat(r *rand.Rand, w *world) caveat.Caveat {
	for {
		c := randomCaveat(r, w, 0, false)
		if benign(caveat.Encode(c)) {
			return c
		}
	}
}

// discharge returns the discharge in a bundle.
func dischargeOf(t testing.TB, header string) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Tokens {
		if b.IsDischarge(i) {
			return b.Tokens[i].String()
		}
	}
	t.Fatalf("no discharge in %.60s…", header)
	return ""
}

// TestDischargesDoNotCross: a login discharge satisfies the third-party
// caveat of the session token it was fetched for, and of the tokens made
// by attenuating that one, and of no other token.
//
// On a real server, alice logs in twice and bob once: three session
// tokens, each with its own ticket. Their tokens grow into trees of random
// offline attenuations, and discharges are fetched (with the owner's
// session secret, as the client does, bound to the token they are fetched
// for) for some of them. Each case presents one token with a random choice
// of the discharges, in random order: the authority must accept it exactly
// when one of them was fetched for that token or for one it descends from,
// and offline verification must refuse the others with ErrWrongParent or
// ErrMissingDischarge. Bob's secret never gets a discharge for alice's
// tickets, and a session's third-party caveat copied into another session
// token by hand does not carry its discharge over.
//
// One case is one bundle (an authenticate, and an authorize when it must
// be refused); the short form runs 150 cases.
func TestDischargesDoNotCross(t *testing.T) {
	r := newRand(t)
	s := startServer(t, serverOptions{})
	s.signup("alice@a.test", "alice's password", "org-a")
	s.signup("bob@b.test", "bob's password", "org-b")
	sessions := []*session{
		s.login("alice@a.test", "alice's password"),
		s.login("alice@a.test", "alice's password"),
		s.login("bob@b.test", "bob's password"),
	}
	kr := s.keyring()
	loc := s.tokenLocation()
	w := newWorld(s.clock.Now(), []uint64{1, 2}, []uint64{1, 2}, []uint64{sessions[0].User.ID, sessions[2].User.ID})
	ctx := context.Background()

	var tokens []sessionToken
	var discharges []heldDischarge
	for i, ses := range sessions {
		m, err := caveat.Parse(ses.Token)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, sessionToken{i, m})
		discharges = append(discharges, heldDischarge{i, m, dischargeOf(t, ses.bundle)})
	}
	for range 18 {
		parent := pick(r, tokens)
		m, err := caveat.Parse(parent.m.String())
		if err != nil {
			t.Fatal(err)
		}
		for range 1 + r.IntN(2) {
			if err := m.Add(benignCaveat(r, w)); err != nil {
				t.Fatal(err)
			}
		}
		tokens = append(tokens, sessionToken{parent.session, m})
	}
	for _, tok := range tokens[len(sessions):] {
		if chance(r, 0.4) {
			continue
		}
		header, err := s.discharged(tok.m.String(), sessions[tok.session].Secret)
		if err != nil {
			t.Fatalf("discharge for an attenuated session token: %v", err)
		}
		discharges = append(discharges, heldDischarge{tok.session, tok.m, dischargeOf(t, header)})
		// Another user's session secret gets no discharge for the ticket.
		other := 2
		if tok.session == 2 {
			other = 0
		}
		if _, err := s.discharged(tok.m.String(), sessions[other].Secret); err == nil || !strings.Contains(err.Error(), "ConfineUser") {
			t.Errorf("%s's session secret got a discharge for a token of %s's session: %v",
				sessions[other].User.Email, sessions[tok.session].User.Email, err)
		}
	}

	check := func(what, header string, want bool) {
		t.Helper()
		b, err := caveat.ParseBundle(header)
		if err != nil {
			t.Fatal(err)
		}
		_, verr := b.Verify(loc, kr.KeyFunc(ctx), trusted(kr, s.loginLocation()))
		code, body := s.authenticate(header)
		switch {
		case want && (code != http.StatusOK || verr != nil):
			t.Errorf("%s: refused: %d %s (offline: %v)", what, code, body, verr)
		case !want && code != http.StatusUnauthorized:
			t.Errorf("%s: the authority accepts it: %d %s", what, code, body)
		case !want && !errors.Is(verr, caveat.ErrWrongParent) && !errors.Is(verr, caveat.ErrMissingDischarge):
			t.Errorf("%s: offline verification says %v, want ErrWrongParent or ErrMissingDischarge", what, verr)
		case !want:
			a := &flyio.Access{OrgID: flyio.Ptr[uint64](1), Action: resset.ActionRead}
			if code, body := s.authorize(header, a); code != http.StatusUnauthorized {
				t.Errorf("%s: authorize answers %d %s", what, code, body)
			}
		}
	}

	// The swaps, first: each session token with each other session's
	// discharge.
	for i := range sessions {
		for j := range sessions {
			what := fmt.Sprintf("session token %d with the discharge of session %d", i, j)
			check(what, "FlyV1 "+tokens[i].m.String()+","+discharges[j].text, i == j)
		}
	}

	cases := iterations(t, 150)
	accepted := 0
	for c := range cases {
		tok := pick(r, tokens)
		entries := []string{tok.m.String()}
		want := false
		var held []string
		for range r.IntN(4) {
			d := pick(r, discharges)
			entries = append(entries, d.text)
			want = want || d.satisfies(tok)
			held = append(held, fmt.Sprintf("session %d's bound to a token with %d caveats", d.session, len(d.boundTo.Caveats)))
		}
		r.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		what := fmt.Sprintf("case %d: a token of session %d with %d caveats, with discharges [%s]",
			c, tok.session, len(tok.m.Caveats), strings.Join(held, "; "))
		check(what, "FlyV1 "+strings.Join(entries, ","), want)
		if want {
			accepted++
		}
	}
	t.Logf("%d tokens, %d discharges, %d cases: %d bundles accepted, %d refused", len(tokens), len(discharges), cases, accepted, cases-accepted)
	if accepted == 0 || accepted == cases {
		t.Error("the cases were all accepted or all refused: they test nothing")
	}

	// A session's third-party caveat appended by hand to another session
	// token, with both discharges: the caveat's verifier key is sealed
	// under the other token's chain, so it does not open.
	for i := range sessions {
		j := (i + 1) % len(sessions)
		var copied caveat.RawCaveat
		for _, c := range tokens[j].m.Caveats {
			if c.Type == caveat.Type3P {
				copied = c
			}
		}
		forged, err := forge(tokens[i].m, copied)
		if err != nil {
			t.Fatal(err)
		}
		header := "FlyV1 " + forged.String() + "," + discharges[i].text + "," + discharges[j].text
		if code, body := s.authenticate(header); code != http.StatusUnauthorized {
			t.Errorf("session %d's token with session %d's third-party caveat copied into it is accepted: %d %s", i, j, code, body)
		}
	}
}
