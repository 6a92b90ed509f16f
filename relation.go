package caveat

// Which token of a bundle answers which third-party caveat, read from the
// bundle alone: a discharge answers a 3P caveat when its nonce KID is the
// caveat's ticket (spec §4.4, §4.8). No key is needed, so this is what
// offline tools show and what holders use to renew discharges; what a
// verification actually accepted is Verified.Discharges.
//
// The relation is over top-level 3P caveats, the only ones verification
// processes (3P caveats nested in IfPresent are not; spec §10). Every token
// of the bundle has its 3P caveats related, discharges included, although
// verification refuses a discharge that holds one (nesting is not
// supported, spec §4.8). A token never answers its own caveat.

import (
	"bytes"
	"slices"
)

// ThirdParty is a top-level third-party caveat of a token of a bundle,
// with the tokens of the bundle that answer it.
type ThirdParty struct {
	// Caveat is the caveat's index in its token's Caveats.
	Caveat int
	// Location is the third party's location, as the caveat names it.
	Location string
	// Ticket is the caveat's ticket, which is its discharge's nonce KID.
	Ticket []byte
	// Discharges are the indexes of the other tokens of the bundle whose
	// nonce KID is Ticket, in bundle order: none when the bundle lacks the
	// discharge, several when it holds more than one (verification tries
	// them in this order and uses the first that verifies). An empty
	// ticket has no discharge.
	Discharges []int
}

// Discharged reports whether the bundle holds a discharge for the caveat.
func (tp ThirdParty) Discharged() bool { return len(tp.Discharges) > 0 }

// ThirdParties returns the top-level third-party caveats of token i, in
// order, each with the tokens of the bundle that answer it. A 3P caveat
// whose body does not decode is left out (verification refuses it). The
// cost is linear in the bundle, up to a logarithm: the tokens are sorted by
// KID once.
func (b *Bundle) ThirdParties(i int) []ThirdParty {
	var out []ThirdParty
	for ci, c := range b.Tokens[i].Caveats {
		if c.Type != Type3P {
			continue
		}
		r, err := parse3P(c.Body)
		if err != nil {
			continue
		}
		out = append(out, ThirdParty{Caveat: ci, Location: string(r.location), Ticket: r.ticket})
	}
	if len(out) == 0 {
		return nil
	}
	byKID := b.sortedByKID()
	for k := range out {
		tp := &out[k]
		if len(tp.Ticket) == 0 {
			continue
		}
		j, _ := slices.BinarySearchFunc(byKID, tp.Ticket, func(t int, kid []byte) int {
			return bytes.Compare(b.Tokens[t].Nonce.KID, kid)
		})
		for ; j < len(byKID) && bytes.Equal(b.Tokens[byKID[j]].Nonce.KID, tp.Ticket); j++ {
			if byKID[j] != i {
				tp.Discharges = append(tp.Discharges, byKID[j])
			}
		}
	}
	return out
}

// sortedByKID returns the indexes of the tokens ordered by nonce KID, and
// by index among equal KIDs.
func (b *Bundle) sortedByKID() []int {
	idx := make([]int, len(b.Tokens))
	for j := range idx {
		idx[j] = j
	}
	slices.SortStableFunc(idx, func(x, y int) int { return bytes.Compare(b.Tokens[x].Nonce.KID, b.Tokens[y].Nonce.KID) })
	return idx
}

// DischargeFor returns the index of the token of the bundle that answers
// caveat c of token i: the first other token, in bundle order, whose nonce
// KID is the caveat's ticket. ok is false when the bundle holds no such
// token, and when caveat c is not a third-party caveat that decodes with a
// non-empty ticket (or is out of range).
func (b *Bundle) DischargeFor(i, c int) (discharge int, ok bool) {
	if i < 0 || i >= len(b.Tokens) || c < 0 || c >= len(b.Tokens[i].Caveats) {
		return -1, false
	}
	rc := b.Tokens[i].Caveats[c]
	if rc.Type != Type3P {
		return -1, false
	}
	r, err := parse3P(rc.Body)
	if err != nil || len(r.ticket) == 0 {
		return -1, false
	}
	for j := range b.Tokens {
		if j != i && bytes.Equal(b.Tokens[j].Nonce.KID, r.ticket) {
			return j, true
		}
	}
	return -1, false
}

// Discharges returns the indexes of the tokens that answer a 3P caveat of
// token i (ThirdParties' Discharges, each once), in bundle order.
//
// It is read per request (Expiry, when a server authenticates), so it
// relates nothing else: token i's tickets are sorted on the stack (when
// few) and each other token's KID is looked up among them, allocating only
// the result.
func (b *Bundle) Discharges(i int) []int {
	var stack [8][]byte
	ts := b.Tokens[i].tickets(stack[:0])
	if len(ts) == 0 {
		return nil
	}
	var out []int
	for j := range b.Tokens {
		if j == i {
			continue
		}
		if _, ok := slices.BinarySearchFunc(ts, b.Tokens[j].Nonce.KID, bytes.Compare); ok {
			out = append(out, j)
		}
	}
	return out
}

// IsDischarge reports whether token i is a discharge: a proof, or a token
// whose nonce KID is the ticket of a third-party caveat of another token.
// The others are permission tokens. (The Location decides roles on a
// server, which knows its own; offline tools use this rule.)
func (b *Bundle) IsDischarge(i int) bool {
	d := &b.Tokens[i]
	if d.Nonce.Proof {
		return true
	}
	for j := range b.Tokens {
		if j != i && b.Tokens[j].dischargedBy(d) >= 0 {
			return true
		}
	}
	return false
}

// dischargedBy returns the index of m's 3P caveat whose ticket is d's KID,
// or -1.
func (m *Macaroon) dischargedBy(d *Macaroon) int {
	for i, c := range m.Caveats {
		if c.Type != Type3P {
			continue
		}
		if r, err := parse3P(c.Body); err == nil && len(r.ticket) > 0 && string(r.ticket) == string(d.Nonce.KID) {
			return i
		}
	}
	return -1
}

// tickets appends the non-empty tickets of m's 3P caveats to ts, sorted.
func (m *Macaroon) tickets(ts [][]byte) [][]byte {
	for _, c := range m.Caveats {
		if c.Type != Type3P {
			continue
		}
		if r, err := parse3P(c.Body); err == nil && len(r.ticket) > 0 {
			ts = append(ts, r.ticket)
		}
	}
	slices.SortFunc(ts, bytes.Compare)
	return ts
}
