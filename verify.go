package caveat

// Verification (spec §4.8), with work linear in the input.
//
// A bundle is untrusted input: a holder can give a token hundreds of
// third-party caveats that all name one ticket, send one discharge with a
// thousand BindToParentToken caveats, or send many permission tokens that
// share big discharges. So a verification keeps, for its whole run (every
// permission token it tries), what does not depend on the permission token:
//
//   - discharges are indexed by nonce KID (= ticket) once;
//   - a ticket names one discharge key: the first 3P caveat that presents a
//     ticket fixes its key, and a caveat presenting the same ticket with
//     another key is refused without more work (an honest token never has
//     one: the ticket holds the key, and a discharge's chain can only verify
//     under one key);
//   - each discharge's chain is verified at most once, and its distinct
//     bindings are kept as an antichain (no value a prefix of another), so
//     that a parent with n tails can satisfy at most n of them;
//   - what a trusted third-party key makes of a ticket is worked out once
//     per ticket and location.
//
// Per permission token, the chain is walked and its signature checked
// before any 3P caveat's verifier key is opened; bindings are looked up in
// a set of binding ids (binding.go), computed once per token, or once for
// all of them when several permission tokens for the location are verified
// together, which are then all walked first; and a discharge's caveats enter
// the verified set once however many 3P caveats it satisfies, so the
// verified set is never larger than the input. TestVerificationCostIsLinear
// holds all this to a count of cryptographic operations.

import (
	"bytes"
	"crypto/subtle"
	"fmt"

	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
)

// TrustedThirdParties maps a third party's location to the keys it seals
// tickets with. Attestations (user IDs) in a discharge are returned only when
// one of these keys opens the discharge's ticket (spec §4.9).
type TrustedThirdParties map[string][]EncryptionKey

// Verify checks a permission token (spec §4.8): its HMAC chain under key,
// every third-party caveat against a discharge from discharges (matched by
// nonce KID == ticket), each discharge's chain under the key its caveat
// carries, bindings to this token, and the attestation rules. It returns the
// caveats to clear: the token's own, then those of each discharge used (once
// each, in the order of the 3P caveats they first satisfy), with 3P and
// BindToParentToken consumed and untrusted attestations dropped.
//
// Every MAC'd field must be in the canonical encoding (spec §2.2); the bytes
// are MAC'd as received.
func (m *Macaroon) Verify(key SigningKey, discharges []*Macaroon, trusted TrustedThirdParties) (CaveatSet, error) {
	ds := make([]Macaroon, len(discharges))
	for i, d := range discharges {
		ds[i] = *d
	}
	var st verifierStack
	v := newVerifier(ds, trusted, &st)
	if err := v.verifyParent(m, key, nil, nil); err != nil {
		return nil, err
	}
	return v.collect(m), nil
}

// smallBundle is the number of tokens whose verification state lives on the
// stack; larger bundles allocate it once per verification.
const smallBundle = 4

// Discharge memo states.
const (
	unchecked uint8 = iota
	passed
	failed
)

// verifier is the state of one verification: of the permission tokens of a
// bundle for a location, or of one token (Macaroon.Verify).
//
// For bundles of up to smallBundle tokens its slices point into a
// verifierStack that the caller declares next to it, so that both live on
// the caller's stack: only newVerifier stores a slice of a stack array, and
// returns the verifier by value.
type verifier struct {
	ds      []Macaroon
	trusted TrustedThirdParties

	indexed  bool
	ngroups  int
	groups   []ticketGroup    // ngroups of them are in use
	byTicket map[string]int32 // for bundles of more than smallBundle tokens
	tok      []tokenState     // per token of ds

	// The discharges that the 3P caveats of the permission token being
	// verified resolved to, in the order of first use (nused of them), and
	// its number of 3P caveats.
	used     []usedDischarge
	nused    int
	npending int
}

// verifierStack is the storage of a verifier of a small bundle.
type verifierStack struct {
	groups [smallBundle]ticketGroup
	tok    [smallBundle]tokenState
	used   [smallBundle]usedDischarge
}

// tokenState is what a verification knows of one token of the bundle.
type tokenState struct {
	next int32 // the next token with the same KID, or -1
	memo dischargeMemo
	// cleared memoises, for Authorize, whether the token's caveats as a
	// discharge allow the access: unchecked, passed or failed.
	cleared uint8
	// Of the permission token being verified: usedAt is this token's place
	// in used + 1, and bound whether its bindings name one of the permission
	// token's tails (unchecked, passed, failed).
	usedAt int32
	bound  uint8
}

// ticketGroup is the tokens of the bundle that share one nonce KID, which is
// the ticket a 3P caveat names to ask for them.
type ticketGroup struct {
	first   int32
	claimed bool
	rn      [dischargeKeySize]byte // the discharge key the ticket was first asked under
	// trust memoises tryKeys on the ticket per trusted location.
	trust  [2]trustMemo
	ntrust int
}

type trustMemo struct {
	loc string
	ok  bool
	err error
}

type usedDischarge struct {
	index   int32
	trusted bool
}

// newVerifier returns a verifier for the tokens ds, kept in st when they
// are few. It returns the verifier by value: a store through a pointer would
// move st to the heap (see verifier).
func newVerifier(ds []Macaroon, trusted TrustedThirdParties, st *verifierStack) verifier {
	if n := len(ds); n <= smallBundle {
		return verifier{ds: ds, trusted: trusted, groups: st.groups[:n], tok: st.tok[:n], used: st.used[:n]}
	}
	n := len(ds)
	return verifier{ds: ds, trusted: trusted,
		groups: make([]ticketGroup, n), tok: make([]tokenState, n), used: make([]usedDischarge, n),
		byTicket: make(map[string]int32, n)}
}

// index groups the tokens by nonce KID, once per verification.
func (v *verifier) index() {
	v.indexed = true
	for i := range v.ds {
		v.tok[i].next = -1
		g := v.group(v.ds[i].Nonce.KID)
		if g < 0 {
			g = int32(v.ngroups)
			v.groups[g] = ticketGroup{first: int32(i)}
			v.tok[i].usedAt = int32(i)
			v.ngroups++
			if v.byTicket != nil {
				v.byTicket[string(v.ds[i].Nonce.KID)] = g
			}
			continue
		}
		// Link i after the group's last member, which is kept in the first
		// member's usedAt: usedAt is free until a permission token's 3P
		// caveats are resolved.
		first := &v.tok[v.groups[g].first]
		v.tok[first.usedAt].next = int32(i)
		first.usedAt = int32(i)
	}
	for i := range v.tok {
		v.tok[i].usedAt = 0
	}
}

// group returns the group of the tokens whose KID is ticket, or -1.
func (v *verifier) group(ticket []byte) int32 {
	if v.byTicket != nil {
		if g, ok := v.byTicket[string(ticket)]; ok {
			return g
		}
		return -1
	}
	for g := range v.ngroups {
		if bytes.Equal(v.ds[v.groups[g].first].Nonce.KID, ticket) {
			return int32(g)
		}
	}
	return -1
}

type pending3P struct {
	index int
	loc   []byte
	vk    []byte
	group int32
	// answer is the token of the bundle that discharged it, once resolved.
	answer int32
}

// nonceTail computes T0 = HMAC(key, nonce), refusing a non-canonical nonce.
func nonceTail(m *Macaroon, key []byte) ([tailSize]byte, error) {
	if m.nonceRaw == nil {
		var buf [128]byte
		return hmacSHA256(key, m.Nonce.AppendEncoded(buf[:0]), nil), nil
	}
	if !m.nonceCanonical {
		r := msgpack.NewStrictReader(m.nonceRaw)
		if _, err := readNonce(&r); err != nil {
			return [tailSize]byte{}, fmt.Errorf("%w: nonce: %v", ErrNonCanonical, err)
		}
	}
	return hmacSHA256(key, m.nonceRaw, nil), nil
}

func macCaveat(t [tailSize]byte, c RawCaveat) [tailSize]byte {
	var hdr [10]byte
	return hmacSHA256(t[:], wire.AppendPackedHeader(hdr[:0], uint64(c.Type)), c.Body)
}

func caveatErr(i int, c RawCaveat, err error) error {
	return fmt.Errorf("caveat %d (%s): %w", i, c.Name(), err)
}

// walked is a permission token whose chain has been walked: its tails, the
// binding ids of them when revoked branches were looked for, and its 3P
// caveats. (Its error is kept apart: returning a field of a struct that
// holds slices of stack arrays would move the arrays to the heap.)
type walked struct {
	tails   [][tailSize]byte
	ids     [][tailSize]byte
	pending []pending3P
}

// verifyParent verifies permission token m under key, alone: its chain, its
// revoked branches, then each 3P caveat against the bundle's discharges,
// leaving the discharges used in v.used[:v.nused] and, when out is not nil,
// noting in out which discharge answered each 3P caveat.
func (v *verifier) verifyParent(m *Macaroon, key []byte, revoked BranchSet, out *Verified) error {
	var tailStack, idStack [24][tailSize]byte
	var pendStack [4]pending3P
	w, err := v.walk(m, key, revoked, tailStack[:0], idStack[:0], pendStack[:0])
	if err != nil {
		return err
	}
	tid := tailIDs{tails: w.tails, ids: w.ids}
	if w.ids == nil {
		if len(w.tails) <= len(idStack) {
			tid.ids = idStack[:len(w.tails)]
		} else {
			tid.ids = make([][tailSize]byte, len(w.tails))
		}
		tid.from = len(w.tails)
	}
	if err := v.resolveAll(&w, binder{tid: &tid}); err != nil {
		return err
	}
	if out != nil {
		out.answered(w.pending)
	}
	return nil
}

// walk verifies m's chain under key and then looks its tails up in the
// revoked branches, appending to the buffers given. A 3P caveat must name a ticket that some
// token of the bundle has as nonce KID; its verifier key is opened only
// once the chain is known to be genuine.
func (v *verifier) walk(m *Macaroon, key []byte, revoked BranchSet, tails, ids [][tailSize]byte, pending []pending3P) (walked, error) {
	fail := func(err error) (walked, error) { return walked{}, err }
	if m.building {
		return fail(fmt.Errorf("%w: proof not finalised: encode it first", ErrProof))
	}
	t, err := nonceTail(m, key)
	if err != nil {
		return fail(err)
	}
	if n := len(m.Caveats) + 1; n > cap(tails) {
		tails = make([][tailSize]byte, 0, n)
	}
	tails = append(tails, t)

	for i, c := range m.Caveats {
		var info *Info
		var r raw3P
		if c.Type == Type3P {
			// Its canonical check is this parse.
			if r, err = parse3P(c.Body); err != nil {
				return fail(caveatErr(i, c, c.Canonical()))
			}
		} else if info, err = c.canonical(); err != nil {
			return fail(caveatErr(i, c, err))
		}
		switch {
		case c.Type == Type3P:
			if !v.indexed {
				v.index()
			}
			g := v.group(r.ticket)
			if g < 0 {
				return fail(fmt.Errorf("caveat %d (3P %s): %w", i, r.location, ErrMissingDischarge))
			}
			pending = append(pending, pending3P{index: i, loc: r.location, vk: r.verifierKey, group: g})
		case c.Type == TypeBindToParentToken:
			return fail(caveatErr(i, c, fmt.Errorf("%w: binding in a token that has no parent", ErrWrongParent)))
		case info != nil && info.Attestation && !m.Nonce.Proof:
			return fail(caveatErr(i, c, fmt.Errorf("%w: attestation in a macaroon that is not a proof", ErrInvalid)))
		}
		t = macCaveat(t, c)
		tails = append(tails, t)
	}

	want := t
	if m.Nonce.Proof {
		want = finalize(t)
	}
	if subtle.ConstantTimeCompare(want[:], m.tail) != 1 {
		return fail(ErrSignature)
	}
	// With revoked branches to look for, each tail of the genuine chain is
	// hashed once and looked up; the binding ids then serve the binding
	// checks too. (After the signature, so that a forged token costs no
	// hashing.)
	if len(revoked) > 0 {
		if len(tails) > cap(ids) {
			ids = make([][tailSize]byte, 0, len(tails))
		}
		ids = ids[:len(tails)]
		for k := range tails {
			ids[k] = bindingID(tails[k])
			if _, ok := revoked[BranchID(ids[k][:bindingIDSize])]; ok {
				return fail(branchRevokedErr(k))
			}
		}
	} else {
		ids = nil
	}
	return walked{tails: tails, ids: ids, pending: pending}, nil
}

// resolveAll opens the verifier key of each of w's 3P caveats and finds its
// discharge, leaving the discharges used in v.used[:v.nused].
func (v *verifier) resolveAll(w *walked, b binder) error {
	v.nused, v.npending = 0, len(w.pending)
	if len(w.pending) == 0 {
		return nil
	}
	for i := range v.tok {
		v.tok[i].usedAt, v.tok[i].bound = 0, unchecked
	}
	// Unsealing goes through the cipher.AEAD interface, so its output buffer
	// escapes; one scratch buffer, as large as the largest value to unseal,
	// serves every unseal of this token. (It is not kept in v: a pointer
	// that v holds and that escapes would take v's stack storage to the heap
	// with it.)
	need := 0
	for i := range w.pending {
		q := &w.pending[i]
		need = max(need, len(q.vk)-sealOverhead)
		if len(v.trusted) > 0 {
			need = max(need, len(v.ds[v.groups[q.group].first].Nonce.KID)-sealOverhead)
		}
	}
	scratch := make([]byte, 0, need)
	for i := range w.pending {
		q := &w.pending[i]
		rn, err := unseal(w.tails[q.index][:], q.vk, scratch)
		if err != nil || len(rn) != dischargeKeySize {
			return fmt.Errorf("caveat %d (3P %s): %w: verifier key does not open", q.index, q.loc, ErrSignature)
		}
		g := &v.groups[q.group]
		if !g.claimed {
			g.claimed = true
			copy(g.rn[:], rn)
		} else if subtle.ConstantTimeCompare(g.rn[:], rn) != 1 {
			return fmt.Errorf("caveat %d (3P %s): discharge: %w: an earlier third-party caveat names the same ticket with another discharge key",
				q.index, q.loc, ErrBadDischarge)
		}
		di, err := v.resolve(b, q.loc, g, scratch)
		if err != nil {
			return fmt.Errorf("caveat %d (3P %s): discharge: %w", q.index, q.loc, err)
		}
		q.answer = di
	}
	return nil
}

// resolve finds the first token of group g that discharges a 3P caveat at
// caveatLoc for the parent that b checks bindings for, records it in v.used
// and returns its index.
func (v *verifier) resolve(b binder, caveatLoc []byte, g *ticketGroup, scratch []byte) (int32, error) {
	var firstErr error
	for di := g.first; di >= 0; di = v.tok[di].next {
		d := &v.ds[di]
		dm := &v.tok[di].memo
		if dm.state == unchecked {
			checkDischarge(d, dm, g.rn[:])
		}
		if dm.state == failed {
			if firstErr == nil {
				firstErr = dm.err
			}
			continue
		}
		isTrusted, err := v.trust(g, d, caveatLoc, scratch)
		if err == nil {
			err = v.boundCheck(b, di, dm)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if at := v.tok[di].usedAt; at > 0 {
			v.used[at-1].trusted = v.used[at-1].trusted || isTrusted
		} else {
			v.used[v.nused] = usedDischarge{index: di, trusted: isTrusted}
			v.nused++
			v.tok[di].usedAt = int32(v.nused)
		}
		return di, nil
	}
	return -1, firstErr
}

// collect returns the verified caveats of m: its own, then those of each
// discharge it used, once each.
func (v *verifier) collect(m *Macaroon) CaveatSet {
	return v.collectInto(m, make(CaveatSet, 0, v.verifiedSize(m)))
}

// verifiedSize is the number of verified caveats of m.
func (v *verifier) verifiedSize(m *Macaroon) int {
	size := len(m.Caveats) - v.npending
	for _, u := range v.used[:v.nused] {
		dm := &v.tok[u.index].memo
		size += dm.nplain
		if u.trusted {
			size += dm.nattest
		}
	}
	return size
}

// clearVerified is collect(m).Clear(a), without keeping the set: the
// verified caveats of a small bundle are gathered on the stack.
func (v *verifier) clearVerified(m *Macaroon, a Access) error {
	var stack [16]RawCaveat
	out := stack[:0]
	if n := v.verifiedSize(m); n > len(stack) {
		out = make(CaveatSet, 0, n)
	}
	return CaveatSet(v.collectInto(m, out)).Clear(a)
}

// collectInto appends the verified caveats of m to out.
func (v *verifier) collectInto(m *Macaroon, out CaveatSet) CaveatSet {
	for _, c := range m.Caveats {
		if c.Type != Type3P {
			out = append(out, c)
		}
	}
	for _, u := range v.used[:v.nused] {
		dm := &v.tok[u.index].memo
		for _, c := range v.ds[u.index].Caveats {
			switch {
			case c.Type == TypeBindToParentToken:
			case dm.hasAttest && c.Attestation():
				if u.trusted {
					out = append(out, c)
				}
			default:
				out = append(out, c)
			}
		}
	}
	return out
}

// allows reports whether the verified caveats of m allow a, as Clear would
// (the access already validated), stopping at the first refusal, and
// clearing each discharge's caveats once per verification.
func (v *verifier) allows(m *Macaroon, a Access) bool {
	for _, c := range m.Caveats {
		if c.Type != Type3P && !c.Attestation() && c.Check(a) != nil {
			return false
		}
	}
	for _, u := range v.used[:v.nused] {
		t := &v.tok[u.index]
		if t.cleared == unchecked {
			t.cleared = passed
			for _, c := range v.ds[u.index].Caveats {
				if c.Type != TypeBindToParentToken && !c.Attestation() && c.Check(a) != nil {
					t.cleared = failed
					break
				}
			}
		}
		if t.cleared == failed {
			return false
		}
	}
	return true
}
