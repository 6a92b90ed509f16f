package caveat

import "time"

// Nested is implemented by caveats that hold a caveat set of their own
// (IfPresent), so that code such as Expiry can look inside them.
type Nested interface {
	NestedCaveats() CaveatSet
}

// Expiry is when a token stops working because of a ValidityWindow, and
// which caveat decides it.
type Expiry struct {
	// At is the earliest not_after; the zero Time means no ValidityWindow.
	At time.Time
	// Token is the bundle index of the token holding the deciding caveat.
	Token int
	// Caveat is the deciding caveat's index in that token (for a window
	// nested in IfPresent, the index of the IfPresent).
	Caveat int
}

// Never reports whether no ValidityWindow limits the token.
func (e Expiry) Never() bool { return e.At.IsZero() }

// Expiry returns the effective expiry of permission token i: the earliest
// not_after of every ValidityWindow, including those nested in IfPresent,
// over the token and the discharges in the bundle that answer its
// third-party caveats (every candidate that ThirdParties relates to them;
// spec §4.10). This is what users mean by "how long
// does this token last": a one-year token whose login discharge lasts ten
// minutes lasts ten minutes.
func (b *Bundle) Expiry(i int) Expiry {
	e := Expiry{Token: -1, Caveat: -1}
	consider := func(tok int, cs CaveatSet) {
		for ci, c := range cs {
			if at, ok := earliestNotAfter(c, 0); ok && (e.At.IsZero() || at.Before(e.At)) {
				e = Expiry{At: at, Token: tok, Caveat: ci}
			}
		}
	}
	consider(i, b.Tokens[i].Caveats)
	for _, j := range b.Discharges(i) {
		consider(j, b.Tokens[j].Caveats)
	}
	return e
}

// Expiry returns the earliest not_after among the macaroon's own caveats
// and the index of the caveat that sets it, ok false when there is none.
func (m *Macaroon) Expiry() (at time.Time, caveat int, ok bool) {
	caveat = -1
	for ci, c := range m.Caveats {
		if t, found := earliestNotAfter(c, 0); found && (!ok || t.Before(at)) {
			at, caveat, ok = t, ci, true
		}
	}
	return at, caveat, ok
}

func earliestNotAfter(c RawCaveat, depth int) (time.Time, bool) {
	if depth > MaxDepth {
		return time.Time{}, false
	}
	if c.Type == TypeValidityWindow {
		vw, err := decodeValidityWindow(c.Body)
		if err != nil {
			return time.Time{}, false
		}
		return vw.NotAfterTime(), true
	}
	info, ok := Lookup(c.Type)
	if !ok || !info.nested {
		return time.Time{}, false
	}
	v, err := info.Decode(c.Body)
	if err != nil {
		return time.Time{}, false
	}
	n, ok := v.(Nested)
	if !ok {
		return time.Time{}, false
	}
	var best time.Time
	found := false
	for _, inner := range n.NestedCaveats() {
		if t, ok := earliestNotAfter(inner, depth+1); ok && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	return best, found
}
