package caveat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// tokenWithCaveats encodes a token with n copies of a tiny unregistered
// caveat, bypassing Add's limit.
func tokenWithCaveats(n int) []byte {
	b := msgpack.AppendArrayHeader(nil, 4)
	b = Nonce{KID: []byte("k"), Rnd: make([]byte, 16)}.AppendEncoded(b)
	b = msgpack.AppendStr(b, "loc")
	b = msgpack.AppendArrayHeader(b, 2*n)
	for i := 0; i < n; i++ {
		b = append(b, 0xcf, 0, 1, 0, 0, 0, 0, 0, 0, 0x00) // type 2^48, body 0
	}
	return msgpack.AppendBin(b, make([]byte, 32))
}

func TestLimits(t *testing.T) {
	if _, err := Decode(tokenWithCaveats(MaxCaveats)); err != nil {
		t.Errorf("%d caveats refused: %v", MaxCaveats, err)
	}
	if _, err := Decode(tokenWithCaveats(MaxCaveats + 1)); !errors.Is(err, ErrLimit) {
		t.Errorf("%d caveats: err = %v, want ErrLimit", MaxCaveats+1, err)
	}
	big := append(tokenWithCaveats(1), make([]byte, MaxTokenSize)...)
	if _, err := Decode(big); !errors.Is(err, ErrLimit) {
		t.Errorf("oversized token: err = %v, want ErrLimit", err)
	}
	// An array header that claims more elements than there are bytes.
	lying := []byte{0x94, 0x93, 0xc0, 0xc4, 0x00, 0xc2, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff}
	if _, err := Decode(lying); !errors.Is(err, ErrMalformed) {
		t.Errorf("lying array header: err = %v", err)
	}
	if _, err := ParseBundle(strings.Repeat("a", MaxHeaderSize+1)); !errors.Is(err, ErrLimit) {
		t.Errorf("oversized header: err = %v", err)
	}
	m, _ := Mint(NewSigningKey(), NewNonce([]byte("k"), false), "loc")
	tok := m.String()
	many := strings.TrimSuffix(strings.Repeat(tok+",", MaxBundleTokens+1), ",")
	if _, err := ParseBundle(many); !errors.Is(err, ErrLimit) {
		t.Errorf("too many tokens: err = %v", err)
	}
	// Attenuation past the limit is an error, not a panic.
	cs := make([]RawCaveat, MaxCaveats+1)
	for i := range cs {
		cs[i] = RawCaveat{Type: TypeUserDefinedMin, Body: msgpack.AppendUint(nil, uint64(i))}
	}
	if err := m.AddRaw(cs...); !errors.Is(err, ErrLimit) {
		t.Errorf("adding %d caveats: err = %v", len(cs), err)
	}
	// Deeply nested bodies are refused by the decoder.
	deep := msgpack.AppendArrayHeader(nil, 4)
	deep = Nonce{KID: []byte("k"), Rnd: make([]byte, 16)}.AppendEncoded(deep)
	deep = msgpack.AppendStr(deep, "loc")
	deep = append(deep, 0x92, 0xcf, 0, 1, 0, 0, 0, 0, 0, 0)
	deep = append(deep, bytes.Repeat([]byte{0x91}, MaxDepth+2)...)
	deep = append(deep, 0xc0)
	deep = msgpack.AppendBin(deep, make([]byte, 32))
	if _, err := Decode(deep); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep body: err = %v", err)
	}
}

func TestDecodedTokenIsImmutable(t *testing.T) {
	key := NewSigningKey()
	m, _ := Mint(key, NewNonce([]byte("k"), false), "loc", NewValidityWindow(time.Unix(0, 0), time.Hour))
	h := "FlyV1 " + m.String() + "," + m.String()
	b, err := ParseBundle(h)
	if err != nil {
		t.Fatal(err)
	}
	second := b.Tokens[1].Encode()
	// Attenuating the first token must not write into the second's caveats.
	if err := b.Tokens[0].Add(&ValidityWindow{NotBefore: 1, NotAfter: 2}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Tokens[1].Encode(), second) {
		t.Fatal("attenuating one token changed another")
	}
	if len(b.Tokens[0].Caveats) != 2 || len(b.Tokens[1].Caveats) != 1 {
		t.Fatalf("caveats: %d, %d", len(b.Tokens[0].Caveats), len(b.Tokens[1].Caveats))
	}
	if _, err := b.Tokens[0].Verify(key, nil, nil); err != nil {
		t.Fatalf("attenuated token: %v", err)
	}
}
