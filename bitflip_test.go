package caveat

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// locationSpan returns the byte range of a token's Location text (after its
// str header), the one part of a token that no MAC covers.
func locationSpan(t *testing.T, b []byte) (start, end int) {
	t.Helper()
	r := msgpack.NewReader(b)
	if err := r.ReadRecordHeader(4); err != nil {
		t.Fatal(err)
	}
	if _, err := readNonce(&r); err != nil {
		t.Fatal(err)
	}
	loc, err := r.ReadStr()
	if err != nil {
		t.Fatal(err)
	}
	return r.Offset() - len(loc), r.Offset()
}

// TestBitFlips flips every bit of the third_party vector's permission token
// (which carries a 3P caveat) and of its bound discharge, one at a time.
// Each flipped pair must be rejected, by decoding or by verification, or
// verify to exactly the caveats of the original pair. The only flips that
// can be accepted are inside a Location, which no MAC covers.
//
// Both paths are checked: Macaroon.Verify with the pair, and ParseBundle
// plus Bundle.Verify for the permission token's original location (where a
// flip in the permission token's Location makes the bundle hold no token
// for that location). The third party is trusted, so the discharge's
// attestation is part of what must come out unchanged.
func TestBitFlips(t *testing.T) {
	tp, key := loadThirdParty(t)
	var ka EncryptionKey
	copy(ka[:], hx(t, tp.ThirdPartyKeyHex))
	trusted := TrustedThirdParties{tp.Location: {ka}}
	tokens := [2][]byte{hx(t, tp.Permission.TokenHex), hx(t, tp.Discharge.TokenHex)}
	names := [2]string{"permission", "discharge"}

	direct := func(pair [2][]byte) (CaveatSet, error) {
		p, err := Decode(pair[0])
		if err != nil {
			return nil, err
		}
		d, err := Decode(pair[1])
		if err != nil {
			return nil, err
		}
		return p.Verify(key, []*Macaroon{d}, trusted)
	}
	perm, err := Decode(tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	location := perm.Location
	bundle := func(pair [2][]byte) (CaveatSet, error) {
		b, err := ParseBundle("FlyV1 fm2_" + base64.StdEncoding.EncodeToString(pair[0]) +
			",fm2_" + base64.StdEncoding.EncodeToString(pair[1]))
		if err != nil {
			return nil, err
		}
		cs, _, err := verifiedParts(b.Verify(location, StaticKey(key), trusted))
		return cs, err
	}

	want, err := direct(tokens)
	if err != nil {
		t.Fatalf("the unmodified pair does not verify: %v", err)
	}
	if len(want) == 0 {
		t.Fatal("the unmodified pair verifies to no caveats")
	}
	if got, err := bundle(tokens); err != nil || !sameCaveats(got, want) {
		t.Fatalf("the unmodified bundle: %v, caveats %x, want %x", err, got.AppendEncoded(nil), want.AppendEncoded(nil))
	}

	paths := []struct {
		name   string
		verify func([2][]byte) (CaveatSet, error)
	}{{"Verify", direct}, {"Bundle.Verify", bundle}}
	for ti := range tokens {
		locStart, locEnd := locationSpan(t, tokens[ti])
		for _, path := range paths {
			rejected, accepted := 0, 0
			for bit := 0; bit < 8*len(tokens[ti]); bit++ {
				pair := tokens
				pair[ti] = bytes.Clone(tokens[ti])
				pair[ti][bit/8] ^= 1 << (bit % 8)
				got, err := path.verify(pair)
				if err != nil {
					if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
						t.Errorf("%s, %s bit %d: error %v is neither ErrMalformed nor ErrInvalid", names[ti], path.name, bit, err)
					}
					rejected++
					continue
				}
				accepted++
				if !sameCaveats(got, want) {
					t.Errorf("%s, %s bit %d: verified to other caveats:\n got %x\nwant %x",
						names[ti], path.name, bit, got.AppendEncoded(nil), want.AppendEncoded(nil))
				}
				if i := bit / 8; i < locStart || i >= locEnd {
					t.Errorf("%s, %s bit %d (byte %d): accepted outside the Location (bytes %d-%d)",
						names[ti], path.name, bit, i, locStart, locEnd-1)
				}
			}
			t.Logf("%s (%d bytes), %s: %d flips rejected, %d accepted (Location is bytes %d-%d)",
				names[ti], len(tokens[ti]), path.name, rejected, accepted, locStart, locEnd-1)
			if rejected == 0 {
				t.Errorf("%s, %s: no flip was rejected", names[ti], path.name)
			}
		}
	}
}
