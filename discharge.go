package caveat

// Discharges, as one verification sees them: each is checked at most once,
// under the discharge key its ticket was first asked with, and what it
// needs from a permission token (its bindings) and from the trusted keys
// (whether its attestations count) is kept for every 3P caveat that names
// it.

import (
	"bytes"
	"crypto/subtle"
	"fmt"
)

// dischargeMemo is what is known of a token as a discharge, under its
// group's key.
type dischargeMemo struct {
	state uint8
	err   error
	// binds is the antichain of the discharge's binding values; bind1 holds
	// it when it has one value, without allocating.
	binds  [][]byte
	bind1  []byte
	nbinds int
	// tooLong is set when a binding is longer than a binding id: it binds to
	// no token.
	tooLong   []byte
	hasAttest bool
	nplain    int // caveats other than bindings and attestations
	nattest   int
}

// checkDischarge verifies d's chain under rn, once per verification, and
// records the outcome and d's bindings in dm.
func checkDischarge(d *Macaroon, dm *dischargeMemo, rn []byte) {
	dm.state = failed
	if d.building {
		dm.err = fmt.Errorf("%w: discharge not finalised: encode it first", ErrProof)
		return
	}
	t, err := nonceTail(d, rn)
	if err != nil {
		dm.err = err
		return
	}
	var more [][]byte
	for i, c := range d.Caveats {
		info, err := c.canonical()
		if err != nil {
			dm.err = caveatErr(i, c, err)
			return
		}
		switch {
		case c.Type == Type3P:
			dm.err = caveatErr(i, c, fmt.Errorf("%w: third-party caveat inside a discharge", ErrMissingDischarge))
			return
		case c.Type == TypeBindToParentToken:
			b, _ := parseBind(c.Body)
			switch {
			case len(b) > tailSize:
				if dm.tooLong == nil {
					dm.tooLong = b
				}
			case dm.nbinds == 0:
				dm.bind1, dm.nbinds = b, 1
			case !bytes.Equal(b, dm.bind1):
				more = append(more, b)
			}
		case info != nil && info.Attestation:
			if !d.Nonce.Proof {
				dm.err = caveatErr(i, c, fmt.Errorf("%w: attestation in a discharge that is not a proof", ErrBadDischarge))
				return
			}
			dm.hasAttest = true
			dm.nattest++
		default:
			dm.nplain++
		}
		t = macCaveat(t, c)
	}
	want := t
	if d.Nonce.Proof {
		want = finalize(t)
	}
	if subtle.ConstantTimeCompare(want[:], d.tail) != 1 {
		dm.err = fmt.Errorf("%w: %w", ErrBadDischarge, ErrSignature)
		return
	}
	if more != nil {
		dm.binds = antichain(append(more, dm.bind1))
		dm.nbinds = len(dm.binds)
		dm.bind1 = nil
	}
	dm.state = passed
}

// trust reports whether a trusted key opens the discharge's ticket. A
// ticket that opens but carries another discharge key is an error: the
// discharge was not made for this caveat.
//
// Keys are looked up first under the 3P caveat's location, which the
// permission token's HMAC covers, and then under the discharge's own
// Location, which nothing authenticates (the spec's rule, §4.8). For honest
// tokens the two are equal; looking at the authenticated one first means
// that editing a discharge's Location changes nothing.
func (v *verifier) trust(g *ticketGroup, d *Macaroon, caveatLoc []byte, scratch []byte) (bool, error) {
	if len(v.trusted) == 0 {
		return false, nil
	}
	loc := aliasString(caveatLoc)
	if ok, err := v.tryLocation(g, d, loc, scratch); ok || err != nil {
		return ok, err
	}
	if d.Location == loc {
		return false, nil
	}
	return v.tryLocation(g, d, d.Location, scratch)
}

// tryLocation tries the keys trusted for loc on the group's ticket, once
// per group and location (for the first two locations; a third is rare
// enough to be tried again).
func (v *verifier) tryLocation(g *ticketGroup, d *Macaroon, loc string, scratch []byte) (bool, error) {
	keys := v.trusted[loc]
	if len(keys) == 0 {
		return false, nil
	}
	for i := range g.ntrust {
		if g.trust[i].loc == loc {
			return g.trust[i].ok, g.trust[i].err
		}
	}
	ok, err := tryKeys(d.Nonce.KID, keys, g.rn[:], scratch)
	if g.ntrust < len(g.trust) {
		g.trust[g.ntrust] = trustMemo{loc: loc, ok: ok, err: err}
		g.ntrust++
	}
	return ok, err
}

func tryKeys(ticket []byte, keys []EncryptionKey, rn []byte, scratch []byte) (bool, error) {
	for i := range keys {
		got, _, err := openTicket(keys[i][:], ticket, scratch, false)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(got, rn) != 1 {
			return false, fmt.Errorf("%w: ticket's discharge key does not match the caveat", ErrBadDischarge)
		}
		return true, nil
	}
	return false, nil
}
