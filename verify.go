package caveat

import (
	"bytes"
	"crypto/subtle"
	"fmt"

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
// caveats to clear: the token's own, then those of each discharge, with 3P
// and BindToParentToken consumed and untrusted attestations dropped.
//
// Every MAC'd field must be in the canonical encoding (spec §2.2); the bytes
// are MAC'd as received.
func (m *Macaroon) Verify(key SigningKey, discharges []*Macaroon, trusted TrustedThirdParties) (CaveatSet, error) {
	ds := make([]Macaroon, len(discharges))
	for i, d := range discharges {
		ds[i] = *d
	}
	return verifyPermission(m, key, ds, trusted, nil)
}

// unsealScratch is the size of the buffer unsealed values are written to; a
// ticket with many caveats spills to the heap.
const unsealScratch = 512

type pending3P struct {
	index  int
	loc    []byte
	ticket []byte
	rn     [dischargeKeySize]byte
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

func verifyPermission(m *Macaroon, key []byte, ds []Macaroon, trusted TrustedThirdParties, revoked BranchSet) (CaveatSet, error) {
	if m.building {
		return nil, fmt.Errorf("%w: proof not finalised: encode it first", ErrProof)
	}
	t, err := nonceTail(m, key)
	if err != nil {
		return nil, err
	}
	var tailStack [24][tailSize]byte
	tails := append(tailStack[:0], t)
	var pendStack [4]pending3P
	pending := pendStack[:0]

	size := len(m.Caveats)
	for i := range ds {
		size += len(ds[i].Caveats)
	}
	out := make(CaveatSet, 0, size)
	// Unsealing goes through the cipher.AEAD interface, so its output buffer
	// escapes; one scratch buffer, allocated only for tokens with 3P
	// caveats, serves every unseal of this verification.
	var scratch *[unsealScratch]byte

	for i, c := range m.Caveats {
		if err := c.Canonical(); err != nil {
			return nil, caveatErr(i, c, err)
		}
		switch {
		case c.Type == Type3P:
			r, _ := parse3P(c.Body)
			if !hasDischarge(ds, r.ticket) {
				return nil, fmt.Errorf("caveat %d (3P %s): %w", i, r.location, ErrMissingDischarge)
			}
			if scratch == nil {
				scratch = new([unsealScratch]byte)
			}
			rn, err := unseal(t[:], r.verifierKey, scratch[:0])
			if err != nil || len(rn) != dischargeKeySize {
				return nil, fmt.Errorf("caveat %d (3P %s): %w: verifier key does not open", i, r.location, ErrSignature)
			}
			p := pending3P{index: i, loc: r.location, ticket: r.ticket}
			copy(p.rn[:], rn)
			pending = append(pending, p)
		case c.Type == TypeBindToParentToken:
			return nil, caveatErr(i, c, fmt.Errorf("%w: binding in a token that has no parent", ErrWrongParent))
		case c.Attestation() && !m.Nonce.Proof:
			return nil, caveatErr(i, c, fmt.Errorf("%w: attestation in a macaroon that is not a proof", ErrInvalid))
		default:
			out = append(out, c)
		}
		t = macCaveat(t, c)
		tails = append(tails, t)
	}

	for _, p := range pending {
		var firstErr error
		ok := false
		for di := range ds {
			d := &ds[di]
			if !bytes.Equal(d.Nonce.KID, p.ticket) {
				continue
			}
			isTrusted, err := trustDischarge(d, p.loc, p.rn[:], trusted, scratch)
			if err == nil {
				out, err = verifyDischarge(d, p.rn[:], tails, isTrusted, out)
			}
			if err == nil {
				ok = true
				break
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		if !ok {
			return nil, fmt.Errorf("caveat %d (3P %s): discharge: %w", p.index, p.loc, firstErr)
		}
	}

	want := t
	if m.Nonce.Proof {
		want = finalize(t)
	}
	if subtle.ConstantTimeCompare(want[:], m.tail) != 1 {
		return nil, ErrSignature
	}
	if k := revokedStep(tails, revoked); k >= 0 {
		return nil, branchRevokedErr(k)
	}
	return out, nil
}

func hasDischarge(ds []Macaroon, ticket []byte) bool {
	for i := range ds {
		if bytes.Equal(ds[i].Nonce.KID, ticket) {
			return true
		}
	}
	return false
}

// trustDischarge reports whether a trusted key opens the discharge's ticket.
// A ticket that opens but carries another discharge key is an error: the
// discharge was not made for this caveat.
//
// Keys are looked up first under the 3P caveat's location, which the
// permission token's HMAC covers, and then under the discharge's own
// Location, which nothing authenticates (the spec's rule, §4.8). For honest
// tokens the two are equal; looking at the authenticated one first means
// that editing a discharge's Location changes nothing.
func trustDischarge(d *Macaroon, caveatLoc []byte, rn []byte, trusted TrustedThirdParties, scratch *[unsealScratch]byte) (bool, error) {
	if len(trusted) == 0 {
		return false, nil
	}
	if ok, err := tryKeys(d, trusted[string(caveatLoc)], rn, scratch); ok || err != nil {
		return ok, err
	}
	if d.Location == string(caveatLoc) {
		return false, nil
	}
	return tryKeys(d, trusted[d.Location], rn, scratch)
}

func tryKeys(d *Macaroon, keys []EncryptionKey, rn []byte, scratch *[unsealScratch]byte) (bool, error) {
	for i := range keys {
		got, _, err := openTicket(keys[i][:], d.Nonce.KID, scratch[:0], false)
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

// verifyDischarge checks one discharge under rn and appends its caveats to
// out; on failure out is returned unchanged.
func verifyDischarge(d *Macaroon, rn []byte, parentTails [][tailSize]byte, trustAttestations bool, out CaveatSet) (CaveatSet, error) {
	n0 := len(out)
	fail := func(err error) (CaveatSet, error) { return out[:n0], err }
	if d.building {
		return fail(fmt.Errorf("%w: discharge not finalised: encode it first", ErrProof))
	}
	t, err := nonceTail(d, rn)
	if err != nil {
		return fail(err)
	}
	for i, c := range d.Caveats {
		if err := c.Canonical(); err != nil {
			return fail(caveatErr(i, c, err))
		}
		switch {
		case c.Type == Type3P:
			return fail(caveatErr(i, c, fmt.Errorf("%w: third-party caveat inside a discharge", ErrMissingDischarge)))
		case c.Type == TypeBindToParentToken:
			b, _ := parseBind(c.Body)
			if !boundTo(b, parentTails) {
				return fail(caveatErr(i, c, fmt.Errorf("%w: %x", ErrWrongParent, b)))
			}
		case c.Attestation():
			if !d.Nonce.Proof {
				return fail(caveatErr(i, c, fmt.Errorf("%w: attestation in a discharge that is not a proof", ErrBadDischarge)))
			}
			if trustAttestations {
				out = append(out, c)
			}
		default:
			out = append(out, c)
		}
		t = macCaveat(t, c)
	}
	want := t
	if d.Nonce.Proof {
		want = finalize(t)
	}
	if subtle.ConstantTimeCompare(want[:], d.tail) != 1 {
		return fail(fmt.Errorf("%w: %w", ErrBadDischarge, ErrSignature))
	}
	return out, nil
}

// boundTo reports whether b prefixes the binding ID of one of the parent's
// tails. It hashes from the last tail back, since a discharge is most often
// bound to the token as it was last extended.
func boundTo(b []byte, tails [][tailSize]byte) bool {
	if len(b) > tailSize {
		return false
	}
	for i := len(tails) - 1; i >= 0; i-- {
		id := bindingID(tails[i])
		if bytes.HasPrefix(id[:], b) {
			return true
		}
	}
	return false
}
