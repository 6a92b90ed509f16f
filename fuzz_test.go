package caveat

// Fuzz targets for the three entry points that see untrusted input: Decode
// (one token's bytes), ParseBundle (an Authorization header) and
// verification (a permission token with a discharge). Each is seeded with
// every token and header of the spec's vectors.
//
// The helpers here (vector tokens and keys, macaroon comparison, the set of
// tokens known to be genuine) are shared with bitflip_test.go and
// vectors_test.go.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/vectors"
)

// libVectors is the library_vectors section: the upstream generator's output
// verbatim (spec §9.1). Byte fields are standard base64, as Go's JSON has
// them.
type libVectors struct {
	Location    string                       `json:"location"`
	Key         []byte                       `json:"key"`
	TPKey       []byte                       `json:"tp_key"`
	KID         []byte                       `json:"kid"`
	Macaroons   map[string]string            `json:"macaroons"`
	Attenuation map[string]map[string]string `json:"attenuation"`
	Caveats     map[string]string            `json:"caveats"`
	WithTPs     string                       `json:"with_tps"`
}

// canonicalCheck is one case of canonical_encoding_checks.
type canonicalCheck struct {
	Label       string `json:"label"`
	RootKeyHex  string `json:"root_key_hex"`
	TokenHex    string `json:"token_hex"`
	DecodeOK    bool   `json:"decode_ok"`
	DecodeError string `json:"decode_error"`
	VerifyOK    *bool  `json:"verify_ok"`
	VerifyError string `json:"verify_error"`
}

// headerEntries splits a header into the bytes of its fm2_ entries without
// going through ParseBundle, so that the seeds do not depend on the code
// under test.
func headerEntries(tb testing.TB, header string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, e := range strings.Split(strings.TrimPrefix(header, "FlyV1 "), ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		payload, ok := strings.CutPrefix(e, "fm2_")
		if !ok {
			tb.Fatalf("vector header entry %.20q… is not an fm2_ token", e)
		}
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			tb.Fatalf("vector header entry %.20q…: %v", e, err)
		}
		out = append(out, b)
	}
	return out
}

// fuzzVectors gathers what the fuzz targets and the bit-flip test need from
// the vectors.
type fuzzVectors struct {
	// tokens are every token of the vectors in binary form, by label.
	tokens map[string][]byte
	// headers are Authorization headers: the vectors' own and a few
	// combinations of their tokens.
	headers []string
	// keys maps a KID to the root key that signed the tokens carrying it.
	keys map[string]SigningKey
	// trusted holds every third-party key of the vectors.
	trusted TrustedThirdParties
	// genuine maps genuineKey of every vector token to the token.
	genuine map[string]*Macaroon
	// tp is the third_party section.
	tp vThirdParty
}

func loadFuzzVectors(tb testing.TB) *fuzzVectors {
	tb.Helper()
	v := &fuzzVectors{tokens: map[string][]byte{}, keys: map[string]SigningKey{}, genuine: map[string]*Macaroon{}}
	add := func(label string, b []byte) {
		if len(b) == 0 {
			tb.Fatalf("vector token %s is empty", label)
		}
		v.tokens[label] = b
	}
	addHeader := func(label, h string) {
		v.headers = append(v.headers, h)
		for i, b := range headerEntries(tb, h) {
			add(fmt.Sprintf("%s[%d]", label, i), b)
		}
	}

	var fp struct {
		RootKeyHex string `json:"root_key_hex"`
		KIDHex     string `json:"kid_hex"`
		Token      vToken `json:"token"`
		Attenuated vToken `json:"attenuated_with_action_r"`
	}
	vectors.Section(tb, "first_party", &fp)
	v.keys[string(hx(tb, fp.KIDHex))] = SigningKey(hx(tb, fp.RootKeyHex))
	add("first_party.token", hx(tb, fp.Token.TokenHex))
	add("first_party.attenuated", hx(tb, fp.Attenuated.TokenHex))
	v.headers = append(v.headers, fp.Token.Header, fp.Attenuated.Header)

	vectors.Section(tb, "third_party", &v.tp)
	tp := v.tp
	add("third_party.permission", hx(tb, tp.Permission.TokenHex))
	add("third_party.attenuated", hx(tb, tp.AttenuatedHex))
	add("third_party.discharge", hx(tb, tp.Discharge.TokenHex))
	add("third_party.plain_discharge", hx(tb, tp.PlainDischarge.TokenHex))
	add("third_party.wrongly_bound", hx(tb, tp.WronglyBoundHex))
	var ka EncryptionKey
	copy(ka[:], hx(tb, tp.ThirdPartyKeyHex))
	v.trusted = TrustedThirdParties{tp.Location: {ka}}
	permText := "fm2_" + base64.StdEncoding.EncodeToString(hx(tb, tp.Permission.TokenHex))
	v.headers = append(v.headers,
		tp.DischargeHeader,
		"FlyV1 "+permText+","+strings.TrimPrefix(tp.DischargeHeader, "FlyV1 "),
		"Bearer "+permText+" , fo1_x,,"+strings.TrimPrefix(tp.DischargeHeader, "FlyV1 fm2_")+",")

	var checks []canonicalCheck
	vectors.Section(tb, "canonical_encoding_checks", &checks)
	for i, c := range checks {
		b := hx(tb, c.TokenHex)
		add(fmt.Sprintf("canonical_encoding_checks[%d]", i), b)
		// The KID is the nonce's second field; these tokens all decode
		// leniently except the one with a bad caveat body.
		r := msgpack.NewReader(b)
		if r.ReadRecordHeader(4) == nil {
			if n, err := readNonce(&r); err == nil {
				v.keys[string(n.KID)] = SigningKey(hx(tb, c.RootKeyHex))
			}
		}
	}

	var lib libVectors
	vectors.Section(tb, "library_vectors", &lib)
	v.keys[string(lib.KID)] = SigningKey(lib.Key)
	if len(lib.TPKey) != 32 {
		tb.Fatalf("library_vectors.tp_key is %d bytes", len(lib.TPKey))
	}
	var libTP EncryptionKey
	copy(libTP[:], lib.TPKey)
	v.trusted["discharged"] = []EncryptionKey{libTP}
	v.trusted["undischarged"] = []EncryptionKey{libTP}
	for name, h := range lib.Macaroons {
		addHeader("library_vectors.macaroons."+name, h)
	}
	for base, results := range lib.Attenuation {
		addHeader("library_vectors.attenuation.base", base)
		for set, h := range results {
			addHeader("library_vectors.attenuation."+set, h)
		}
	}
	addHeader("library_vectors.with_tps", lib.WithTPs)
	var libExp struct {
		WithTPs struct {
			Second string `json:"example_second_discharge_header"`
		} `json:"with_tps"`
	}
	vectors.Section(tb, "library_vectors_expected", &libExp)
	addHeader("library_vectors_expected.second_discharge", libExp.WithTPs.Second)

	var hp []struct {
		Header         string   `json:"header"`
		ParseTokensHex []string `json:"parse_tokens_hex"`
	}
	vectors.Section(tb, "header_parsing", &hp)
	for i, c := range hp {
		v.headers = append(v.headers, c.Header)
		for j, th := range c.ParseTokensHex {
			add(fmt.Sprintf("header_parsing[%d][%d]", i, j), hx(tb, th))
		}
	}

	for _, b := range v.tokens {
		m, err := Decode(b)
		if err != nil {
			continue // the deliberately malformed canonical_encoding_checks case
		}
		// Keep the first of equal tokens (they differ in Location or trailing bytes only).
		if _, ok := v.genuine[genuineKey(m)]; !ok {
			v.genuine[genuineKey(m)] = m
		}
	}
	if len(v.tokens) == 0 || len(v.headers) == 0 || len(v.genuine) == 0 {
		tb.Fatal("no tokens in the vectors")
	}
	return v
}

// genuineKey identifies a token by everything verification reads: its
// encoding with the Location (which no MAC covers) left out.
func genuineKey(m *Macaroon) string {
	c := *m
	c.Location = ""
	c.text = ""
	return string(c.Encode())
}

// macaroonDiff describes how two macaroons differ, or returns "".
func macaroonDiff(a, b *Macaroon) string {
	an, bn := a.Nonce, b.Nonce
	switch {
	case !bytes.Equal(an.KID, bn.KID) || (an.KID == nil) != (bn.KID == nil):
		return fmt.Sprintf("nonce KID %x (nil %v) != %x (nil %v)", an.KID, an.KID == nil, bn.KID, bn.KID == nil)
	case !bytes.Equal(an.Rnd, bn.Rnd):
		return fmt.Sprintf("nonce Rnd %x != %x", an.Rnd, bn.Rnd)
	case an.Proof != bn.Proof || an.Legacy != bn.Legacy:
		return fmt.Sprintf("nonce proof/legacy %v/%v != %v/%v", an.Proof, an.Legacy, bn.Proof, bn.Legacy)
	case !bytes.Equal(nonceBytes(a), nonceBytes(b)):
		return fmt.Sprintf("nonce bytes %x != %x", nonceBytes(a), nonceBytes(b))
	case a.Location != b.Location:
		return fmt.Sprintf("location %q != %q", a.Location, b.Location)
	case !sameCaveats(a.Caveats, b.Caveats):
		return fmt.Sprintf("caveats %x != %x", a.Caveats.AppendEncoded(nil), b.Caveats.AppendEncoded(nil))
	case !bytes.Equal(a.Tail(), b.Tail()):
		return fmt.Sprintf("tail %x != %x", a.Tail(), b.Tail())
	}
	return ""
}

func nonceBytes(m *Macaroon) []byte {
	if m.nonceRaw != nil {
		return m.nonceRaw
	}
	return m.Nonce.AppendEncoded(nil)
}

// sameCaveats compares two sets caveat by caveat, type and body bytes.
func sameCaveats(a, b CaveatSet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Body, b[i].Body) {
			return false
		}
	}
	return true
}

// strictlyCanonical reports whether b is a token in the canonical encoding
// of spec §2.2 from its first byte to its last, which is when re-encoding
// must give b back.
func strictlyCanonical(b []byte) bool {
	r := msgpack.NewStrictReader(b)
	if r.ReadRecordHeader(4) != nil {
		return false
	}
	if _, err := readNonce(&r); err != nil {
		return false
	}
	if _, err := r.ReadStr(); err != nil {
		return false
	}
	if _, err := readCaveatSet(&r, true, nil); err != nil {
		return false
	}
	if _, err := r.ReadBin(); err != nil {
		return false
	}
	return r.ExpectEnd() == nil
}

// checkGenuine is called when m verified (with ds as the discharges on
// offer) to got. Forging a MAC is out of reach of a fuzzer, so m must be one
// of the vectors' tokens, up to what no MAC covers (Location, encoding
// framing, trailing bytes), and verifying that token with the vector tokens
// that ds stand for must give exactly got. Discharges that are not vector
// tokens cannot satisfy a caveat and are left out.
func (v *fuzzVectors) checkGenuine(t *testing.T, m *Macaroon, ds []*Macaroon, trusted TrustedThirdParties, got CaveatSet) {
	t.Helper()
	orig, ok := v.genuine[genuineKey(m)]
	if !ok {
		t.Fatalf("a token that is not one of the vectors' tokens verified to %d caveats: %x", len(got), m.Encode())
	}
	var origDs []*Macaroon
	for _, d := range ds {
		if o, ok := v.genuine[genuineKey(d)]; ok {
			origDs = append(origDs, o)
		}
	}
	want, err := orig.Verify(v.keys[string(orig.Nonce.KID)], origDs, trusted)
	if err != nil {
		t.Fatalf("the modified bundle verifies, but the vector tokens it stands for do not: %v\ntoken %x", err, m.Encode())
	}
	if !sameCaveats(got, want) {
		t.Fatalf("verified caveats differ from the unmodified tokens':\n got %x\nwant %x", got.AppendEncoded(nil), want.AppendEncoded(nil))
	}
}

// errUnknownKey is what keyFunc returns for a KID of no vector.
var errUnknownKey = class("unknown key", ErrInvalid)

func (v *fuzzVectors) keyFunc(kid []byte) (SigningKey, error) {
	if k, ok := v.keys[string(kid)]; ok {
		return k, nil
	}
	return nil, errUnknownKey
}

// FuzzDecode decodes arbitrary bytes as a token. It must never panic, and
// for every input that decodes:
//   - the text form of the same bytes parses to the same macaroon;
//   - the re-encoding decodes to an equal macaroon and is a fixed point of
//     Decode/Encode;
//   - a strictly canonical input re-encodes to itself, byte for byte;
//   - when the token verifies under the key of its KID, it is a vector
//     token and verifies to that token's caveats.
//
// Decoding errors must wrap ErrMalformed.
func FuzzDecode(f *testing.F) {
	v := loadFuzzVectors(f)
	seeds := 0
	for _, label := range slices.Sorted(maps.Keys(v.tokens)) {
		f.Add(v.tokens[label])
		seeds++
	}
	if seeds == 0 {
		f.Fatal("no seed tokens")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		pm, perr := Parse("fm2_" + base64.StdEncoding.EncodeToString(b))
		if (err == nil) != (perr == nil) {
			t.Fatalf("Decode error %v but Parse error %v", err, perr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !errors.Is(perr, ErrMalformed) {
				t.Fatalf("errors %v / %v do not wrap ErrMalformed", err, perr)
			}
			return
		}
		if d := macaroonDiff(m, pm); d != "" {
			t.Fatalf("Parse of the text form differs from Decode: %s", d)
		}
		enc := m.Encode()
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", enc, err)
		}
		if d := macaroonDiff(m, m2); d != "" {
			t.Fatalf("re-encoding decodes to another macaroon: %s", d)
		}
		if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point:\n%x\n%x", enc, enc2)
		}
		if strictlyCanonical(b) && !bytes.Equal(enc, b) {
			t.Fatalf("canonical token re-encodes differently:\n in %x\nout %x", b, enc)
		}
		if m3, err := Parse(m.String()); err != nil {
			t.Fatalf("String() does not parse: %v", err)
		} else if d := macaroonDiff(m, m3); d != "" {
			t.Fatalf("String() parses to another macaroon: %s", d)
		}
		if key, ok := v.keys[string(m.Nonce.KID)]; ok {
			if cs, err := m.Verify(key, nil, nil); err == nil {
				v.checkGenuine(t, m, nil, nil, cs)
			} else if !errors.Is(err, ErrInvalid) {
				t.Fatalf("verification error %v does not wrap ErrInvalid", err)
			}
		}
	})
}

// FuzzParseBundle parses arbitrary headers. It must never panic; errors
// wrap ErrMalformed; a parsed bundle's Header() and String() parse again to
// the same tokens, and its Header() is a fixed point.
func FuzzParseBundle(f *testing.F) {
	v := loadFuzzVectors(f)
	seeds := 0
	for _, h := range v.headers {
		f.Add(h)
		seeds++
	}
	if seeds == 0 {
		f.Fatal("no seed headers")
	}
	f.Fuzz(func(t *testing.T, h string) {
		b, err := ParseBundle(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(b.Tokens) == 0 {
			t.Fatal("a bundle without tokens parsed")
		}
		hdr := b.Header()
		for _, again := range []string{hdr, b.String()} {
			b2, err := ParseBundle(again)
			if err != nil {
				t.Fatalf("%q does not parse again: %v", again, err)
			}
			if len(b2.Tokens) != len(b.Tokens) {
				t.Fatalf("%d tokens, then %d", len(b.Tokens), len(b2.Tokens))
			}
			for i := range b.Tokens {
				if d := macaroonDiff(&b.Tokens[i], &b2.Tokens[i]); d != "" {
					t.Fatalf("token %d differs after re-parsing: %s", i, d)
				}
			}
			if h2 := b2.Header(); h2 != hdr {
				t.Fatalf("Header() is not a fixed point:\n%q\n%q", hdr, h2)
			}
		}
		for i := range b.Tokens {
			m, err := Parse(b.Tokens[i].String())
			if err != nil {
				t.Fatalf("token %d: String() does not parse: %v", i, err)
			}
			if d := macaroonDiff(&b.Tokens[i], m); d != "" {
				t.Fatalf("token %d: String() parses to another macaroon: %s", i, d)
			}
		}
	})
}

// FuzzVerify verifies a permission token and a discharge, given as bytes
// mutated from the vectors' valid pairs, both directly and as a parsed
// bundle, trusted and untrusted. It must never panic, and a verification
// that succeeds must be of vector tokens and return exactly their caveats
// (checkGenuine): without the keys, no mutation can make another token
// valid.
func FuzzVerify(f *testing.F) {
	v := loadFuzzVectors(f)
	pairs := [][2]string{
		{"third_party.permission", "third_party.discharge"},
		{"third_party.permission", "third_party.plain_discharge"},
		{"third_party.attenuated", "third_party.discharge"},
		{"third_party.permission", "third_party.wrongly_bound"},
		{"first_party.token", "third_party.discharge"},
		{"library_vectors.with_tps[0]", "library_vectors.with_tps[1]"},
		{"library_vectors.with_tps[0]", "library_vectors_expected.second_discharge[0]"},
	}
	seeds := 0
	for _, p := range pairs {
		perm, dis := v.tokens[p[0]], v.tokens[p[1]]
		if perm == nil || dis == nil {
			f.Fatalf("vector tokens %s / %s not found", p[0], p[1])
		}
		f.Add(perm, dis)
		seeds++
	}
	if seeds == 0 {
		f.Fatal("no seed pairs")
	}
	f.Fuzz(func(t *testing.T, permB, disB []byte) {
		perm, err := Decode(permB)
		if err == nil {
			var ds []*Macaroon
			if d, err := Decode(disB); err == nil {
				ds = append(ds, d)
			}
			if key, ok := v.keys[string(perm.Nonce.KID)]; ok {
				for _, trusted := range []TrustedThirdParties{nil, v.trusted} {
					cs, err := perm.Verify(key, ds, trusted)
					if err == nil {
						v.checkGenuine(t, perm, ds, trusted, cs)
					} else if !errors.Is(err, ErrInvalid) {
						t.Fatalf("verification error %v does not wrap ErrInvalid", err)
					}
				}
			}
		}

		h := "FlyV1 fm2_" + base64.StdEncoding.EncodeToString(permB) + ",fm2_" + base64.StdEncoding.EncodeToString(disB)
		b, err := ParseBundle(h)
		if err != nil {
			return
		}
		cs, i, err := verifiedParts(b.Verify(b.Tokens[0].Location, v.keyFunc, v.trusted))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("bundle verification error %v does not wrap ErrInvalid", err)
			}
			return
		}
		all := make([]*Macaroon, len(b.Tokens))
		for j := range b.Tokens {
			all[j] = &b.Tokens[j]
		}
		v.checkGenuine(t, &b.Tokens[i], all, v.trusted, cs)
	})
}
