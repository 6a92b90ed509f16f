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
// Per permission token, the binding ids of its tails are computed at most
// once (lazily from the last tail, which is what honest discharges are bound
// to) and kept as a sorted set, so that a binding check is a lookup; and a
// discharge's caveats enter the verified set once however many 3P caveats it
// satisfies, so the verified set is never larger than the input.

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"slices"
	"unsafe"

	"github.com/caveatdev/caveat/internal/msgpack"
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
	if err := v.verifyParent(m, key, nil); err != nil {
		return nil, err
	}
	return v.collect(m), nil
}

// unsealScratch is the size of the buffer unsealed values are written to; a
// ticket with many caveats spills to the heap.
const unsealScratch = 512

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

// tailIDs is the binding ids of a permission token's tails: ids[from:],
// computed from the end, until a second lookup needs them all; then they are
// sorted, as a set.
type tailIDs struct {
	tails   [][tailSize]byte
	ids     [][tailSize]byte
	from    int
	sorted  bool
	lookups int
}

type pending3P struct {
	index int
	loc   []byte
	vk    []byte
	group int32
}

// nonceTail computes T0 = HMAC(key, nonce), refusing a non-canonical nonce.
func nonceTail(m *Macaroon, key []byte) ([tailSize]byte, error) {
	if m.nonceRaw == nil {
		var buf [128]byte
		return hmacSHA256(key, m.Nonce.AppendEncoded(buf[:0]), nil), nil
	}
	r := msgpack.NewStrictReader(m.nonceRaw)
	if _, err := readNonce(&r); err != nil {
		return [tailSize]byte{}, fmt.Errorf("%w: nonce: %v", ErrNonCanonical, err)
	}
	return hmacSHA256(key, m.nonceRaw, nil), nil
}

func macCaveat(t [tailSize]byte, c RawCaveat) [tailSize]byte {
	var hdr [10]byte
	return hmacSHA256(t[:], packedHeader(hdr[:0], c.Type), c.Body)
}

func caveatErr(i int, c RawCaveat, err error) error {
	return fmt.Errorf("caveat %d (%s): %w", i, c.Name(), err)
}

// verifyParent verifies permission token m under key: its chain, its
// revoked branches, then each 3P caveat against the bundle's discharges,
// leaving the discharges used in v.used[:v.nused].
func (v *verifier) verifyParent(m *Macaroon, key []byte, revoked BranchSet) error {
	if m.building {
		return fmt.Errorf("%w: proof not finalised: encode it first", ErrProof)
	}
	v.nused, v.npending = 0, 0
	for i := range v.tok {
		v.tok[i].usedAt, v.tok[i].bound = 0, unchecked
	}
	t, err := nonceTail(m, key)
	if err != nil {
		return err
	}
	var tailStack, idStack [24][tailSize]byte
	tails := append(tailStack[:0], t)
	var pendStack [4]pending3P
	pending := pendStack[:0]
	// With revoked branches to look for, every tail's binding id is computed
	// in the walk, and serves the binding checks too.
	var ids [][tailSize]byte
	checkBranches := len(revoked) > 0
	revokedAt := -1
	if checkBranches {
		id := bindingID(t)
		ids = append(idStack[:0], id)
		if _, ok := revoked[BranchID(id[:bindingIDSize])]; ok {
			revokedAt = 0
		}
	}

	for i, c := range m.Caveats {
		if err := c.Canonical(); err != nil {
			return caveatErr(i, c, err)
		}
		switch {
		case c.Type == Type3P:
			r, _ := parse3P(c.Body)
			if !v.indexed {
				v.index()
			}
			g := v.group(r.ticket)
			if g < 0 {
				return fmt.Errorf("caveat %d (3P %s): %w", i, r.location, ErrMissingDischarge)
			}
			pending = append(pending, pending3P{index: i, loc: r.location, vk: r.verifierKey, group: g})
		case c.Type == TypeBindToParentToken:
			return caveatErr(i, c, fmt.Errorf("%w: binding in a token that has no parent", ErrWrongParent))
		case c.Attestation() && !m.Nonce.Proof:
			return caveatErr(i, c, fmt.Errorf("%w: attestation in a macaroon that is not a proof", ErrInvalid))
		}
		t = macCaveat(t, c)
		tails = append(tails, t)
		if checkBranches {
			id := bindingID(t)
			ids = append(ids, id)
			if _, ok := revoked[BranchID(id[:bindingIDSize])]; ok && revokedAt < 0 {
				revokedAt = len(tails) - 1
			}
		}
	}

	want := t
	if m.Nonce.Proof {
		want = finalize(t)
	}
	if subtle.ConstantTimeCompare(want[:], m.tail) != 1 {
		return ErrSignature
	}
	if revokedAt >= 0 {
		return branchRevokedErr(revokedAt)
	}
	v.npending = len(pending)
	if len(pending) == 0 {
		return nil
	}

	tid := tailIDs{tails: tails}
	if checkBranches {
		tid.ids = ids
	} else if len(tails) <= len(idStack) {
		tid.ids = idStack[:len(tails)]
		tid.from = len(tails)
	} else {
		tid.ids = make([][tailSize]byte, len(tails))
		tid.from = len(tails)
	}
	// Unsealing goes through the cipher.AEAD interface, so its output buffer
	// escapes; one scratch buffer serves every unseal of this token. (It is
	// not kept in v: a pointer that v holds and that escapes would take v's
	// stack storage to the heap with it.)
	scratch := new([unsealScratch]byte)
	for i := range pending {
		q := &pending[i]
		rn, err := unseal(tails[q.index][:], q.vk, scratch[:0])
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
		if err := v.resolve(&tid, q.loc, g, scratch); err != nil {
			return fmt.Errorf("caveat %d (3P %s): discharge: %w", q.index, q.loc, err)
		}
	}
	return nil
}

// resolve finds the first token of group g that discharges a 3P caveat at
// caveatLoc for the parent whose tails are in tid, and records it in v.used.
func (v *verifier) resolve(tid *tailIDs, caveatLoc []byte, g *ticketGroup, scratch *[unsealScratch]byte) error {
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
			err = v.boundCheck(tid, di, dm)
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
		return nil
	}
	return firstErr
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
func (v *verifier) trust(g *ticketGroup, d *Macaroon, caveatLoc []byte, scratch *[unsealScratch]byte) (bool, error) {
	if len(v.trusted) == 0 {
		return false, nil
	}
	// The caveat's bytes are never written during verification.
	loc := unsafe.String(unsafe.SliceData(caveatLoc), len(caveatLoc))
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
func (v *verifier) tryLocation(g *ticketGroup, d *Macaroon, loc string, scratch *[unsealScratch]byte) (bool, error) {
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

func tryKeys(ticket []byte, keys []EncryptionKey, rn []byte, scratch *[unsealScratch]byte) (bool, error) {
	for i := range keys {
		got, _, err := openTicket(keys[i][:], ticket, scratch[:0], false)
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
		if err := c.Canonical(); err != nil {
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
		case c.Attestation():
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

// antichain sorts distinct binding values and drops each that prefixes
// another: a tail whose id has the longer value as a prefix has the shorter
// one too. What is left is pairwise prefix-free, so no binding id matches
// two of them.
func antichain(bs [][]byte) [][]byte {
	slices.SortFunc(bs, bytes.Compare)
	bs = slices.CompactFunc(bs, bytes.Equal)
	out := bs[:0]
	for i, b := range bs {
		if i+1 < len(bs) && bytes.HasPrefix(bs[i+1], b) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// boundCheck checks the bindings of discharge di against the parent's
// tails, once per parent and discharge.
func (v *verifier) boundCheck(tid *tailIDs, di int32, dm *dischargeMemo) error {
	t := &v.tok[di]
	switch t.bound {
	case passed:
		return nil
	case failed:
		return fmt.Errorf("%w: %x", ErrWrongParent, tid.firstUnbound(dm))
	}
	if b := tid.firstUnbound(dm); b != nil {
		t.bound = failed
		return fmt.Errorf("%w: %x", ErrWrongParent, b)
	}
	t.bound = passed
	return nil
}

// firstUnbound returns a binding value of dm that no tail of the parent
// has, or nil when they all match.
func (tid *tailIDs) firstUnbound(dm *dischargeMemo) []byte {
	switch {
	case dm.tooLong != nil:
		return dm.tooLong
	case dm.nbinds == 0:
		return nil
	case dm.nbinds == 1:
		if !tid.has(dm.bind1) {
			return dm.bind1
		}
		return nil
	case dm.nbinds > len(tid.tails):
		// The values are prefix-free, so each tail matches at most one.
		return dm.binds[len(dm.binds)-1]
	}
	for _, b := range dm.binds {
		if !tid.has(b) {
			return b
		}
	}
	return nil
}

// has reports whether b prefixes the binding id of one of the tails. The
// first lookup hashes from the last tail back, since a discharge is most
// often bound to the token as it was last extended; a later one computes the
// remaining ids, sorts them once, and searches.
func (tid *tailIDs) has(b []byte) bool {
	tid.lookups++
	if tid.lookups == 1 && !tid.sorted {
		for i := len(tid.tails) - 1; i >= 0; i-- {
			if i < tid.from {
				tid.ids[i] = bindingID(tid.tails[i])
				tid.from = i
			}
			if bytes.HasPrefix(tid.ids[i][:], b) {
				return true
			}
		}
		return false
	}
	if !tid.sorted {
		for tid.from > 0 {
			tid.from--
			tid.ids[tid.from] = bindingID(tid.tails[tid.from])
		}
		slices.SortFunc(tid.ids, func(x, y [tailSize]byte) int { return bytes.Compare(x[:], y[:]) })
		tid.sorted = true
	}
	// Ids with prefix b sort at or after b and before any other id above b,
	// so the first id not below b is the only candidate.
	i, _ := slices.BinarySearchFunc(tid.ids, b, func(id [tailSize]byte, b []byte) int {
		return bytes.Compare(id[:], b)
	})
	return i < len(tid.ids) && bytes.HasPrefix(tid.ids[i][:], b)
}

// collect returns the verified caveats of m: its own, then those of each
// discharge it used, once each.
func (v *verifier) collect(m *Macaroon) CaveatSet {
	size := len(m.Caveats) - v.npending
	for _, u := range v.used[:v.nused] {
		dm := &v.tok[u.index].memo
		size += dm.nplain
		if u.trusted {
			size += dm.nattest
		}
	}
	out := make(CaveatSet, 0, size)
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
