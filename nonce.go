package caveat

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/google/uuid"
)

// rndSize is the length of a fresh nonce's random part.
const rndSize = 16

// uuidNamespace derives token UUIDs from nonces (spec §3.2).
var uuidNamespace = uuid.MustParse("968fc2c6-a94f-4988-a544-2ad72b02f222")

// Nonce opens every macaroon and is the first input of its HMAC chain
// (spec §3.2).
//
// On the wire it is [KID: bin|nil, Rnd: bin, Proof: bool], or the legacy
// two-field form [KID, Rnd]. Rules for evolving it: the field count and
// order are fixed by the format; a legacy nonce is re-encoded with two fields,
// and nil and empty KIDs stay distinct.
type Nonce struct {
	// KID finds the root key. For a discharge it is the whole sealed ticket.
	KID []byte
	// Rnd is 16 random bytes on creation (not length-checked on decode).
	Rnd []byte
	// Proof marks a finalised macaroon (spec §4.6).
	Proof bool
	// Legacy marks the two-field form, which has no Proof field.
	Legacy bool
}

// NewNonce returns a three-field nonce with 16 fresh random bytes.
func NewNonce(kid []byte, proof bool) Nonce {
	rnd := make([]byte, rndSize)
	rand.Read(rnd)
	return Nonce{KID: kid, Rnd: rnd, Proof: proof}
}

// AppendEncoded appends the canonical encoding of the nonce.
func (n Nonce) AppendEncoded(b []byte) []byte {
	if n.Legacy {
		b = msgpack.AppendArrayHeader(b, 2)
	} else {
		b = msgpack.AppendArrayHeader(b, 3)
	}
	b = msgpack.AppendBin(b, n.KID)
	rnd := n.Rnd
	if rnd == nil {
		rnd = []byte{}
	}
	b = msgpack.AppendBin(b, rnd)
	if !n.Legacy {
		b = msgpack.AppendBool(b, n.Proof)
	}
	return b
}

// readNonce reads a nonce. A strict reader accepts only the canonical form
// (KID as bin or nil, Rnd as bin), which is what verification requires since
// the nonce's bytes are MAC'd as received.
func readNonce(r *msgpack.Reader) (Nonce, error) {
	var n Nonce
	fields, err := r.ReadArrayHeader()
	if err != nil {
		return n, err
	}
	if fields != 2 && fields != 3 {
		return n, fmt.Errorf("nonce has %d fields, want 2 or 3", fields)
	}
	if n.KID, err = r.ReadBinOrNil(); err != nil {
		return n, fmt.Errorf("nonce kid: %w", err)
	}
	if n.Rnd, err = r.ReadBin(); err != nil {
		return n, fmt.Errorf("nonce rnd: %w", err)
	}
	if fields == 2 {
		n.Legacy = true
		return n, nil
	}
	if n.Proof, err = r.ReadBool(); err != nil {
		return n, fmt.Errorf("nonce proof: %w", err)
	}
	return n, nil
}

// ParseNonce decodes an encoded nonce (leniently, as tokens are decoded).
func ParseNonce(b []byte) (Nonce, error) {
	r := msgpack.NewReader(b)
	n, err := readNonce(&r)
	if err == nil {
		err = r.ExpectEnd()
	}
	if err != nil {
		return Nonce{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return n, nil
}

// UUID is the token's identifier: UUIDv5(UUIDv5(namespace, KID), Rnd).
func (n Nonce) UUID() uuid.UUID {
	return uuid.NewSHA1(uuid.NewSHA1(uuidNamespace, n.KID), n.Rnd)
}

// MarshalJSON renders the nonce as the base64 of its encoding (spec §3.2).
func (n Nonce) MarshalJSON() ([]byte, error) {
	s := base64.StdEncoding.EncodeToString(n.AppendEncoded(nil))
	return []byte(`"` + s + `"`), nil
}
