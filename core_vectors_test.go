package caveat

// Byte-exact tests of the core format against the spec's vectors: nonces,
// the deterministic first-party token, the third-party flow, header parsing.
// Caveats are handled in wire form here so that these tests need no caveat
// package; vectors_test.go repeats the verification with every type
// registered.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/internal/wire"
)

type vNonce struct {
	KIDHex     string `json:"kid_hex"`
	RndHex     string `json:"rnd_hex"`
	Proof      bool   `json:"proof"`
	NumFields  int    `json:"num_fields"`
	MsgpackHex string `json:"msgpack_hex"`
	UUID       string `json:"uuid"`
}

type vCaveat struct {
	Type         uint64 `json:"type"`
	Name         string `json:"name"`
	PackedHex    string `json:"packed_hex"`
	TailAfterHex string `json:"tail_after_hex"`
	BindingIDHex string `json:"binding_id_after_hex"`
}

type vToken struct {
	Header             string    `json:"header"`
	TokenHex           string    `json:"token_hex"`
	Location           string    `json:"location"`
	Nonce              vNonce    `json:"nonce"`
	T0Hex              string    `json:"t0_hex"`
	BindingIDT0Hex     string    `json:"binding_id_t0_hex"`
	Caveats            []vCaveat `json:"caveats"`
	TailHex            string    `json:"tail_hex"`
	UnfinalizedTailHex string    `json:"unfinalized_tail_hex"`
}

func hx(tb testing.TB, s string) []byte { tb.Helper(); return vectors.Hex(tb, s) }

// mustRaw parses a packed caveat (92 ‖ type ‖ body), which is also a caveat
// set of one.
func mustRaw(tb testing.TB, packedHex string) RawCaveat {
	tb.Helper()
	r := readerOf(hx(tb, packedHex))
	cs, err := readCaveatSet(&r, false, nil)
	if err != nil || len(cs) != 1 {
		tb.Fatalf("packed caveat %s: %v", packedHex, err)
	}
	return cs[0]
}

func vecNonce(tb testing.TB, n vNonce) Nonce {
	kid := hx(tb, n.KIDHex)
	return Nonce{KID: kid, Rnd: hx(tb, n.RndHex), Proof: n.Proof, Legacy: n.NumFields == 2}
}

// checkChain reproduces T0, every tail and binding ID of a vector token with
// key, using the caveats decoded from the token itself.
func checkChain(t *testing.T, key []byte, v vToken) {
	t.Helper()
	m, err := Decode(hx(t, v.TokenHex))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := hex.EncodeToString(m.Encode()); got != v.TokenHex {
		t.Errorf("re-encode:\n got %s\nwant %s", got, v.TokenHex)
	}
	tail, err := nonceTail(m, key)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(tail[:]); got != v.T0Hex {
		t.Errorf("T0 = %s, want %s", got, v.T0Hex)
	}
	if id := bindingID(tail); hex.EncodeToString(id[:]) != v.BindingIDT0Hex {
		t.Errorf("binding id T0 = %x, want %s", id, v.BindingIDT0Hex)
	}
	if len(m.Caveats) != len(v.Caveats) {
		t.Fatalf("%d caveats, want %d", len(m.Caveats), len(v.Caveats))
	}
	for i, c := range m.Caveats {
		if got := hex.EncodeToString(wire.AppendPacked(nil, uint64(c.Type), c.Body)); got != v.Caveats[i].PackedHex {
			t.Errorf("caveat %d packed = %s, want %s", i, got, v.Caveats[i].PackedHex)
		}
		tail = macCaveat(tail, c)
		if got := hex.EncodeToString(tail[:]); got != v.Caveats[i].TailAfterHex {
			t.Errorf("caveat %d tail = %s, want %s", i, got, v.Caveats[i].TailAfterHex)
		}
		if v.Caveats[i].BindingIDHex != "" {
			if id := bindingID(tail); hex.EncodeToString(id[:]) != v.Caveats[i].BindingIDHex {
				t.Errorf("caveat %d binding id = %x, want %s", i, id, v.Caveats[i].BindingIDHex)
			}
		}
	}
	final := tail
	if m.Nonce.Proof {
		if got := hex.EncodeToString(tail[:]); got != v.UnfinalizedTailHex {
			t.Errorf("unfinalised tail = %s, want %s", got, v.UnfinalizedTailHex)
		}
		final = finalize(tail)
	}
	if got := hex.EncodeToString(final[:]); got != v.TailHex {
		t.Errorf("tail = %s, want %s", got, v.TailHex)
	}
}

func TestFirstPartyVector(t *testing.T) {
	var fp struct {
		RootKeyHex  string `json:"root_key_hex"`
		KIDHex      string `json:"kid_hex"`
		RndHex      string `json:"rnd_hex"`
		Location    string `json:"location"`
		Token       vToken `json:"token"`
		Attenuated  vToken `json:"attenuated_with_action_r"`
		Dedup       bool   `json:"dedup_readd_existing_caveat_token_unchanged"`
		WrongKeyVer struct {
			OK bool `json:"ok"`
		} `json:"verify_with_wrong_key"`
	}
	vectors.Section(t, "first_party", &fp)
	key := SigningKey(hx(t, fp.RootKeyHex))

	// Mint with the same inputs: the bytes must be identical.
	m, err := Mint(key, Nonce{KID: hx(t, fp.KIDHex), Rnd: hx(t, fp.RndHex)}, fp.Location)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fp.Token.Caveats {
		if err := m.AddRaw(mustRaw(t, c.PackedHex)); err != nil {
			t.Fatal(err)
		}
	}
	if got := hex.EncodeToString(m.Encode()); got != fp.Token.TokenHex {
		t.Fatalf("minted token:\n got %s\nwant %s", got, fp.Token.TokenHex)
	}
	if got := "FlyV1 " + m.String(); got != fp.Token.Header {
		t.Errorf("header:\n got %s\nwant %s", got, fp.Token.Header)
	}
	t.Run("chain", func(t *testing.T) { checkChain(t, key, fp.Token) })
	t.Run("attenuated chain", func(t *testing.T) { checkChain(t, key, fp.Attenuated) })

	// Attenuate with Action r: identical to the vector's attenuated token.
	last := fp.Attenuated.Caveats[len(fp.Attenuated.Caveats)-1]
	if err := m.AddRaw(mustRaw(t, last.PackedHex)); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(m.Encode()); got != fp.Attenuated.TokenHex {
		t.Errorf("attenuated:\n got %s\nwant %s", got, fp.Attenuated.TokenHex)
	}
	// Dedup: adding an existing caveat again leaves the token unchanged.
	before := m.Encode()
	if err := m.AddRaw(mustRaw(t, fp.Token.Caveats[0].PackedHex)); err != nil {
		t.Fatal(err)
	}
	if unchanged := bytes.Equal(before, m.Encode()); unchanged != fp.Dedup {
		t.Errorf("dedup: token unchanged = %v, want %v", unchanged, fp.Dedup)
	}

	// Verification with the right key passes; with a wrong key it fails.
	dec, err := Decode(hx(t, fp.Token.TokenHex))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := dec.Verify(key, nil, nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(cs) != len(fp.Token.Caveats) {
		t.Errorf("verify returned %d caveats, want %d", len(cs), len(fp.Token.Caveats))
	}
	wrong := bytes.Clone(key)
	wrong[0] ^= 1
	if _, err := dec.Verify(wrong, nil, nil); err == nil || fp.WrongKeyVer.OK {
		t.Errorf("verify with wrong key: err = %v, vector ok = %v", err, fp.WrongKeyVer.OK)
	} else if !errors.Is(err, ErrSignature) {
		t.Errorf("verify with wrong key: %v, want ErrSignature", err)
	}
}

func TestNonceVectors(t *testing.T) {
	var cases []struct {
		Label string `json:"label"`
		JSON  string `json:"json"`
		Nonce vNonce `json:"nonce"`
	}
	vectors.Section(t, "nonce_encodings", &cases)
	if len(cases) == 0 {
		t.Fatal("no nonce vectors")
	}
	for _, tc := range cases {
		t.Run(tc.Label, func(t *testing.T) {
			n, err := ParseNonce(hx(t, tc.Nonce.MsgpackHex))
			if err != nil {
				t.Fatal(err)
			}
			want := vecNonce(t, tc.Nonce)
			if !bytes.Equal(n.KID, want.KID) || (n.KID == nil) != (tc.Nonce.KIDHex == "" && strings.Contains(tc.Label, "nil")) ||
				!bytes.Equal(n.Rnd, want.Rnd) || n.Proof != want.Proof || n.Legacy != want.Legacy {
				t.Errorf("decoded %+v, want %+v", n, want)
			}
			if got := hex.EncodeToString(n.AppendEncoded(nil)); got != tc.Nonce.MsgpackHex {
				t.Errorf("re-encoded %s, want %s", got, tc.Nonce.MsgpackHex)
			}
			if got := n.UUID().String(); got != tc.Nonce.UUID {
				t.Errorf("uuid %s, want %s", got, tc.Nonce.UUID)
			}
			j, _ := n.MarshalJSON()
			if string(j) != `"`+tc.JSON+`"` {
				t.Errorf("json %s, want %q", j, tc.JSON)
			}
		})
	}
}

// TestHMACMatchesStdlib compares both ways hmacSHA256 hashes (its own
// padding, read through AppendBinary, up to paddedMax; the digest's Sum
// beyond, or on a build where the first does not check out) with
// crypto/hmac, and bindingID with sha256.Sum256.
func TestHMACMatchesStdlib(t *testing.T) {
	if !raceBuild && !paddedOK {
		t.Error("the padded path is off on this build: hashes take the slower, portable path")
	}
	if !raceBuild && finInner == nil {
		t.Error("finalize does not resume from the pad states on this build")
	}
	for _, padded := range []bool{true, false} {
		t.Run(fmt.Sprintf("padded=%v", padded), func(t *testing.T) {
			defer func(was bool, in, out []byte) { paddedOK, finInner, finOuter = was, in, out }(paddedOK, finInner, finOuter)
			paddedOK = padded
			if !padded {
				finInner, finOuter = nil, nil
			}
			testHMACMatchesStdlib(t)
			rng := rand.New(rand.NewPCG(5, 6))
			for range 50 {
				var tail [tailSize]byte
				for i := range tail {
					tail[i] = byte(rng.Uint32())
				}
				h := hmac.New(sha256.New, finalizationKey)
				h.Write(tail[:])
				if got := finalize(tail); !bytes.Equal(got[:], h.Sum(nil)) {
					t.Fatalf("finalize(%x) = %x", tail, got)
				}
			}
			var tail [tailSize]byte
			for i := range tail {
				tail[i] = byte(i * 7)
			}
			if got := bindingID(tail); got != sha256.Sum256(tail[:]) {
				t.Errorf("bindingID %x", got)
			}
		})
	}
}

func testHMACMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, keyLen := range []int{0, 1, 16, 32, 63, 64, 65, 100, 200} {
		for _, msgLen := range []int{0, 1, 55, 56, 64, 119, 120, 200, 375, 376, 377, 439, 440, 447, 448, 449, 1000, 5000} {
			key := make([]byte, keyLen)
			msg := make([]byte, msgLen)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			h := hmac.New(sha256.New, key)
			h.Write(msg)
			want := h.Sum(nil)
			split := msgLen / 3
			got := hmacSHA256(key, msg[:split], msg[split:])
			if !bytes.Equal(got[:], want) {
				t.Fatalf("key %d bytes, msg %d bytes: hmac mismatch", keyLen, msgLen)
			}
		}
	}
}
