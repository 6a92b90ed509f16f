package caveat

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
)

// Macaroon is one token: a nonce, a location, a list of caveats and a tail
// (the last HMAC of the chain, finalised for proofs). On the wire it is the
// record [Nonce, Location, Caveats, Tail] (spec §3.1).
//
// A decoded Macaroon is immutable in place: Add and Add3P replace its caveat
// list and tail, never the bytes it was decoded from.
type Macaroon struct {
	Nonce Nonce
	// Location names the service that checks the token (a permission token)
	// or the third party that issued it (a discharge). It is NOT covered by
	// the HMAC: never trust it without verifying the token.
	Location string
	Caveats  CaveatSet

	// tail is the chain's current tail: for a decoded macaroon the tail as
	// encoded; for a proof under construction the unfinalised tail.
	tail []byte
	// nonceRaw holds the nonce exactly as received, which is what is MAC'd,
	// and nonceCanonical whether it is in the canonical encoding.
	nonceRaw       []byte
	nonceCanonical bool
	// building marks a proof that this process is still adding caveats to;
	// it is finalised when encoded.
	building bool
	// text is the token's text form as it was parsed, if unchanged since.
	text string
}

// Mint creates a permission token signed with key (spec §4.1). Use NewNonce
// for the nonce; a fixed nonce is for tests.
func Mint(key SigningKey, nonce Nonce, location string, caveats ...Caveat) (*Macaroon, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("mint: empty signing key")
	}
	m := &Macaroon{Nonce: nonce, Location: location, Caveats: CaveatSet{}, building: nonce.Proof}
	t := hmacSHA256(key, nonce.AppendEncoded(nil), nil)
	m.tail = t[:]
	if err := m.Add(caveats...); err != nil {
		return nil, err
	}
	return m, nil
}

// IsProof reports whether the macaroon is a proof (spec §4.6).
func (m *Macaroon) IsProof() bool { return m.Nonce.Proof }

// Tail returns the tail as it is encoded (finalised for proofs).
func (m *Macaroon) Tail() []byte {
	if m.building {
		var t [tailSize]byte
		copy(t[:], m.tail)
		f := finalize(t)
		return f[:]
	}
	return bytes.Clone(m.tail)
}

// Add appends caveats (attenuation, spec §4.2). A caveat whose packed bytes
// are already in the token, or earlier in the same call, is skipped. A
// finalised proof cannot be extended; attestations need a proof; third-party
// caveats are added with Add3P.
func (m *Macaroon) Add(caveats ...Caveat) error {
	for _, c := range caveats {
		if c.CaveatType() == Type3P {
			return fmt.Errorf("add: third-party caveats are added with Add3P, which seals them")
		}
	}
	raw := make([]RawCaveat, len(caveats))
	for i, c := range caveats {
		raw[i] = Encode(c)
	}
	return m.AddRaw(raw...)
}

// AddRaw appends caveats in wire form, under the rules of Add. Registered
// bodies must be canonical; unregistered bodies are appended as given.
func (m *Macaroon) AddRaw(caveats ...RawCaveat) error {
	if m.Nonce.Proof && !m.building {
		return fmt.Errorf("%w: can't add caveats to a finalised proof", ErrProof)
	}
	for i, c := range caveats {
		if c.Type == Type3P {
			return fmt.Errorf("add: caveat %d: third-party caveats are added with Add3P, which seals them", i)
		}
		if c.Attestation() && !m.Nonce.Proof {
			return fmt.Errorf("%w: caveat %d: attestation %s can only be added to a proof", ErrProof, i, c.Name())
		}
		if err := c.Canonical(); err != nil {
			return fmt.Errorf("add: caveat %d: %w", i, err)
		}
	}
	if len(m.Caveats)+len(caveats) > MaxCaveats {
		return fmt.Errorf("%w: more than %d caveats", ErrLimit, MaxCaveats)
	}
	for _, c := range caveats {
		m.appendCaveat(c, true)
	}
	return nil
}

// appendCaveat extends the chain by one caveat, skipping duplicates if dedup.
func (m *Macaroon) appendCaveat(c RawCaveat, dedup bool) {
	if dedup {
		for _, have := range m.Caveats {
			if have.Type == c.Type && bytes.Equal(have.Body, c.Body) {
				return
			}
		}
	}
	var hdr [10]byte
	t := hmacSHA256(m.tail, wire.AppendPackedHeader(hdr[:0], uint64(c.Type)), c.Body)
	m.text = ""
	m.tail = t[:]
	// Copy-on-append: never write into a backing array shared with a bundle.
	m.Caveats = append(m.Caveats[:len(m.Caveats):len(m.Caveats)], RawCaveat{Type: c.Type, Body: bytes.Clone(c.Body)})
}

// Encode returns the token's bytes. A proof built here is finalised now.
func (m *Macaroon) Encode() []byte {
	b := make([]byte, 0, 64+len(m.Location)+len(m.Nonce.KID)+16*len(m.Caveats))
	b = msgpack.AppendArrayHeader(b, 4)
	if m.nonceRaw != nil {
		b = append(b, m.nonceRaw...)
	} else {
		b = m.Nonce.AppendEncoded(b)
	}
	b = msgpack.AppendStr(b, m.Location)
	b = m.Caveats.AppendEncoded(b)
	return msgpack.AppendBin(b, m.Tail())
}

// String returns the token's text form: "fm2_" and standard padded base64.
func (m *Macaroon) String() string {
	if m.text != "" {
		return m.text
	}
	return "fm2_" + base64.StdEncoding.EncodeToString(m.Encode())
}

// Decode parses a token's bytes (spec §1.4), as leniently as the reference
// decoder: trailing bytes are ignored and non-canonical encodings decode (they
// fail verification). It does not verify anything.
func Decode(b []byte) (*Macaroon, error) {
	m := new(Macaroon)
	if _, err := m.decode(bytes.Clone(b), nil); err != nil {
		return nil, err
	}
	return m, nil
}

// decode parses b into m. It keeps sub-slices of b (and a string that shares
// b's memory for the location), so b must be owned by the caller and never
// written again. dst, if not nil, is appended the caveats (m.Caveats is
// then a part of it); rest is what is left of it, for the next token.
func (m *Macaroon) decode(b []byte, dst CaveatSet) (rest CaveatSet, err error) {
	if len(b) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token is %d bytes (limit %d)", ErrLimit, len(b), MaxTokenSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	r := msgpack.NewReader(b)
	if err := r.ReadRecordHeader(4); err != nil {
		return nil, fmt.Errorf("%w: macaroon: %v", ErrMalformed, err)
	}
	// The nonce is MAC'd as received, so verification needs to know whether
	// it is canonical: read it strictly first, and leniently only if that
	// fails.
	start := r.Offset()
	strict := r.WithStrict(true)
	n, err := readNonce(&strict)
	m.nonceCanonical = err == nil
	if m.nonceCanonical {
		r = strict.WithStrict(false)
	} else if n, err = readNonce(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m.Nonce = n
	m.nonceRaw = b[start:r.Offset():r.Offset()]
	loc, err := r.ReadStr()
	if err != nil {
		return nil, fmt.Errorf("%w: location: %v", ErrMalformed, err)
	}
	m.Location = aliasString(loc)
	cs, err := readCaveatSet(&r, false, dst)
	if err != nil {
		return nil, err
	}
	m.Caveats = cs[:len(cs):len(cs)]
	if m.tail, err = r.ReadBin(); err != nil {
		return nil, fmt.Errorf("%w: tail: %v", ErrMalformed, err)
	}
	m.building = false
	return cs[len(cs):], nil
}

// countCaveats returns the number of caveats a token declares, for sizing,
// or 0 when the token does not get that far.
func countCaveats(b []byte) int {
	r := msgpack.NewReader(b)
	if r.ReadRecordHeader(4) != nil {
		return 0
	}
	if _, err := readNonce(&r); err != nil {
		return 0
	}
	if _, err := r.ReadStr(); err != nil {
		return 0
	}
	n, err := r.ReadArrayHeader()
	if err != nil || n/2 > MaxCaveats {
		return 0
	}
	return n / 2
}

// Parse decodes one token in text form: "fm2_", "fm1r_" or "fm1a_" and
// standard padded base64.
func Parse(s string) (*Macaroon, error) {
	b, err := decodeTokenText(s)
	if err != nil {
		return nil, err
	}
	m := new(Macaroon)
	if _, err := m.decode(b, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// splitPrefix splits "fm2_…" into "fm2" and the rest; ok is false when
// there is no underscore.
func splitPrefix(s string) (prefix, payload string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			return s[:i], s[i+1:], true
		}
	}
	return "", s, false
}

func macaroonPrefix(p string) bool { return p == "fm2" || p == "fm1r" || p == "fm1a" }

func decodeTokenText(s string) ([]byte, error) {
	prefix, payload, ok := splitPrefix(s)
	if !ok || !macaroonPrefix(prefix) {
		return nil, fmt.Errorf("%w: not an fm2_ token", ErrMalformed)
	}
	return decodeBase64(payload, nil)
}

func decodeBase64(payload string, dst []byte) ([]byte, error) {
	if payload == "" {
		return nil, fmt.Errorf("%w: blank token", ErrMalformed)
	}
	n := base64.StdEncoding.DecodedLen(len(payload))
	if n > MaxTokenSize+3 {
		return nil, fmt.Errorf("%w: token is over %d bytes", ErrLimit, MaxTokenSize)
	}
	if dst == nil {
		dst = make([]byte, n)
	}
	// The compiler converts the payload without copying it, since it is
	// only read (go build -gcflags=-m: "zero-copy string->[]byte").
	w, err := decodeStdBase64(dst[:n], []byte(payload))
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64: %v (truncated or mangled?)", ErrMalformed, err)
	}
	return dst[:w:w], nil
}
