package caveat

// The vector sections that core_vectors_test.go, thirdparty_vectors_test.go
// and bundle_test.go leave out: canonical_encoding_checks, library_vectors
// (with library_vectors_expected), the third_party verification outcomes,
// and misc.
//
// This is an internal test, so it cannot import the caveat packages; what is
// registered is whatever the test binary links (the external tests link
// auth). Where an outcome depends on a type being registered, the test
// checks the outcome for the registry it runs with: a registered type's
// body must be canonical, an unregistered one is MAC'd as received.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/internal/wire"
)

// vResult is a recorded verification outcome.
type vResult struct {
	OK          bool     `json:"ok"`
	CaveatTypes []uint64 `json:"caveat_types"`
	Error       string   `json:"error"`
}

// libExpectedToken is one library_vectors_expected token.
type libExpectedToken struct {
	vToken
	Verify *vResult `json:"verify"`
	Notes  string   `json:"notes"`
}

// libExpected is the library_vectors_expected section.
type libExpected struct {
	KeyHex      string                      `json:"key_hex"`
	TPKeyHex    string                      `json:"tp_key_hex"`
	KIDHex      string                      `json:"kid_hex"`
	KIDIsHash   bool                        `json:"kid_equals_sha256_key_first16"`
	Macaroons   map[string]libExpectedToken `json:"macaroons"`
	Attenuation struct {
		BaseHeader    string `json:"base_header"`
		Base          vToken `json:"base_permission"`
		BaseIndex     int    `json:"base_permission_token_index"`
		OtherLocation string `json:"other_token_location"`
		Entries       []struct {
			AddedTypes   []uint64 `json:"added_caveat_types"`
			AddedB64     string   `json:"added_caveats_packed_b64"`
			AddedHex     string   `json:"added_caveats_packed_hex"`
			Reproduced   bool     `json:"reproduced_by_decode_add_encode"`
			ResultHeader string   `json:"result_header"`
			ResultHex    string   `json:"result_permission_token_hex"`
			ResultVerify vResult  `json:"result_verify"`
		} `json:"entries"`
	} `json:"attenuation"`
	WithTPs struct {
		Header            string `json:"header"`
		Permission        vToken `json:"permission"`
		Discharge         vToken `json:"discharge"`
		DischargeOf       string `json:"discharge_kid_matches_ticket_of"`
		SecondHeader      string `json:"example_second_discharge_header"`
		ThirdPartyCaveats []struct {
			Location       string `json:"location"`
			TailBeforeHex  string `json:"tail_before_hex"`
			TicketCaveats  int    `json:"ticket_caveats_count"`
			RnHex          string `json:"ticket_discharge_key_hex"`
			TicketHex      string `json:"ticket_hex"`
			TicketPlainHex string `json:"ticket_plaintext_hex"`
			VerifierKeyHex string `json:"verifier_key_hex"`
			VKPlainHex     string `json:"verifier_key_plaintext_hex"`
		} `json:"third_party_caveats"`
		VerifyAsGiven vResult `json:"verify_as_given"`
		VerifySecond  vResult `json:"verify_with_second_discharge_added"`
	} `json:"with_tps"`
}

func loadLibrary(t *testing.T) (libVectors, libExpected) {
	t.Helper()
	var lib libVectors
	vectors.Section(t, "library_vectors", &lib)
	var exp libExpected
	vectors.Section(t, "library_vectors_expected", &exp)
	if !bytes.Equal(lib.Key, hx(t, exp.KeyHex)) || !bytes.Equal(lib.TPKey, hx(t, exp.TPKeyHex)) || !bytes.Equal(lib.KID, hx(t, exp.KIDHex)) {
		t.Fatal("library_vectors and library_vectors_expected disagree on the keys")
	}
	return lib, exp
}

func mustParseBundle(t *testing.T, header string, n int) *Bundle {
	t.Helper()
	b, err := ParseBundle(header)
	if err != nil {
		t.Fatalf("ParseBundle: %v", err)
	}
	if len(b.Tokens) != n {
		t.Fatalf("bundle has %d tokens, want %d", len(b.Tokens), n)
	}
	return b
}

func setTypes(cs CaveatSet) []uint64 {
	out := make([]uint64, len(cs))
	for i, c := range cs {
		out[i] = uint64(c.Type)
	}
	return out
}

func typeRegistered(t CaveatType) bool { _, ok := Lookup(t); return ok }

// TestCanonicalEncodingChecks runs the hand-built tokens of
// canonical_encoding_checks (spec §2): decoding is lenient, verification
// refuses a registered caveat or a nonce that is not in the canonical
// encoding, and accepts an unregistered type's raw body, the legacy nonce, a
// changed Location and trailing bytes.
func TestCanonicalEncodingChecks(t *testing.T) {
	var cases []canonicalCheck
	vectors.Section(t, "canonical_encoding_checks", &cases)
	if len(cases) == 0 {
		t.Fatal("no canonical_encoding_checks")
	}
	// Why each refused case is refused. needs is the registered type whose
	// body is not canonical; when it is not registered in this binary, its
	// body is MAC'd as received and the token verifies. The caveat type
	// number is re-encoded canonically before it is MAC'd (spec §2.1), so
	// a wide one breaks the chain rather than a canonical-body check.
	type refusal struct {
		needs CaveatType
		err   error
	}
	const noType = TypeUnregistered
	refused := map[string]refusal{
		"ValidityWindow with int64 written as 0xd3 (non-compact)": {TypeValidityWindow, ErrNonCanonical},
		"caveat type number written as uint64 0xcf":               {noType, ErrSignature},
		"Organization body encoded as a map instead of array":     {0, ErrNonCanonical},
		"Apps map keys unsorted (2 before 1)":                     {3, ErrNonCanonical},
		"string written as str8 although < 32 bytes":              {19, ErrNonCanonical},
		"nonce KID as str instead of bin":                         {noType, ErrNonCanonical},
	}
	// The tokens whose re-encoding is not their own bytes.
	reencoded := map[string]bool{
		"caveat type number written as uint64 0xcf":                    true,
		"token followed by trailing garbage bytes (ignored by Decode)": true,
	}
	seen := 0
	for _, tc := range cases {
		t.Run(tc.Label, func(t *testing.T) {
			b := hx(t, tc.TokenHex)
			key := SigningKey(hx(t, tc.RootKeyHex))
			m, err := Decode(b)
			_, berr := ParseBundle("fm2_" + base64.StdEncoding.EncodeToString(b))
			if !tc.DecodeOK {
				if err == nil || !errors.Is(err, ErrMalformed) {
					t.Fatalf("Decode: %v, want an ErrMalformed (vector: %s)", err, tc.DecodeError)
				}
				if berr == nil || !errors.Is(berr, ErrMalformed) {
					t.Fatalf("ParseBundle: %v, want an ErrMalformed", berr)
				}
				if tc.VerifyOK != nil {
					t.Errorf("vector has a verification outcome for a token that does not decode")
				}
				return
			}
			if err != nil || berr != nil {
				t.Fatalf("Decode: %v; ParseBundle: %v", err, berr)
			}
			if tc.VerifyOK == nil {
				t.Fatal("vector has no verify_ok")
			}
			enc := m.Encode()
			if reencoded[tc.Label] {
				if bytes.Equal(enc, b) {
					t.Errorf("re-encoding is the input, want it to differ")
				}
			} else if !bytes.Equal(enc, b) {
				t.Errorf("re-encoding:\n got %x\nwant %x", enc, b)
			}

			wantErr := error(nil)
			if !*tc.VerifyOK {
				why, ok := refused[tc.Label]
				if !ok {
					t.Fatalf("unclassified refused case (vector error %q): add it to the table", tc.VerifyError)
				}
				if why.needs == noType || typeRegistered(why.needs) {
					wantErr = why.err
				} else {
					t.Logf("type %d is not registered in this binary: its body is MAC'd as received", why.needs)
				}
			}
			cs, err := m.Verify(key, nil, nil)
			b2 := mustParseBundle(t, "FlyV1 fm2_"+base64.StdEncoding.EncodeToString(b), 1)
			bcs, _, berr := verifiedParts(b2.Verify(m.Location, StaticKey(key), nil))
			if wantErr != nil {
				if !errors.Is(err, wantErr) || !errors.Is(berr, wantErr) {
					t.Fatalf("Verify: %v; Bundle.Verify: %v; want %v (vector: %s)", err, berr, wantErr, tc.VerifyError)
				}
				// The re-encoded token is no better.
				if m2, err := Decode(enc); err == nil {
					if _, err := m2.Verify(key, nil, nil); err == nil {
						t.Errorf("the re-encoded token verifies")
					}
				}
				return
			}
			if err != nil || berr != nil {
				t.Fatalf("Verify: %v; Bundle.Verify: %v", err, berr)
			}
			// No 3P, binding or attestation: every caveat is returned.
			if !sameCaveats(cs, m.Caveats) || !sameCaveats(bcs, m.Caveats) {
				t.Errorf("verified caveats %x, want the token's %x", cs.AppendEncoded(nil), m.Caveats.AppendEncoded(nil))
			}
			// A wrong key is refused, whatever the encoding.
			wrong := bytes.Clone(key)
			wrong[len(wrong)-1] ^= 0x80
			if _, err := m.Verify(wrong, nil, nil); !errors.Is(err, ErrSignature) {
				t.Errorf("Verify with a wrong key: %v, want ErrSignature", err)
			}
		})
		seen++
	}
	// Every refused label of the table is a case of the vectors.
	for label := range refused {
		if !slices.ContainsFunc(cases, func(c canonicalCheck) bool { return c.Label == label }) {
			t.Errorf("no vector case %q", label)
		}
	}
}

// TestLibraryVectorMacaroons decodes every token of library_vectors.macaroons
// and compares it with library_vectors_expected: nonce, location, packed
// caveats, the chain of tails under key, the re-encoding, and verification.
// A top-level BindToParentToken must fail; attestation discharges (signed
// with a key the generator discarded) are decode-only.
func TestLibraryVectorMacaroons(t *testing.T) {
	lib, exp := loadLibrary(t)
	if exp.KIDIsHash {
		if sum := sha256.Sum256(lib.Key); !bytes.Equal(sum[:16], lib.KID) {
			t.Errorf("kid %x is not SHA-256(key)[:16] = %x", lib.KID, sum[:16])
		}
	}
	if len(lib.Macaroons) == 0 || len(lib.Macaroons) != len(exp.Macaroons) {
		t.Fatalf("%d macaroons, %d expected", len(lib.Macaroons), len(exp.Macaroons))
	}
	key := SigningKey(lib.Key)
	verified, decodeOnly := 0, 0
	for name, header := range lib.Macaroons {
		t.Run(name, func(t *testing.T) {
			want, ok := exp.Macaroons[name]
			if !ok {
				t.Fatal("no expected entry")
			}
			b := mustParseBundle(t, header, 1)
			m := &b.Tokens[0]
			if got := hex.EncodeToString(m.Encode()); got != want.TokenHex {
				t.Fatalf("token:\n got %s\nwant %s", got, want.TokenHex)
			}
			if b.Header() != header {
				t.Errorf("Header() = %s, want %s", b.Header(), header)
			}
			if m.Location != want.Location || m.Location != lib.Location && want.Verify != nil {
				t.Errorf("location %q, want %q", m.Location, want.Location)
			}
			n := vecNonce(t, want.Nonce)
			if !bytes.Equal(m.Nonce.KID, n.KID) || !bytes.Equal(m.Nonce.Rnd, n.Rnd) || m.Nonce.Proof != n.Proof || m.Nonce.Legacy != n.Legacy {
				t.Errorf("nonce %+v, want %+v", m.Nonce, n)
			}
			if got := m.Nonce.UUID().String(); got != want.Nonce.UUID {
				t.Errorf("uuid %s, want %s", got, want.Nonce.UUID)
			}
			if len(m.Caveats) != len(want.Caveats) {
				t.Fatalf("%d caveats, want %d", len(m.Caveats), len(want.Caveats))
			}
			for i, c := range m.Caveats {
				if got := hex.EncodeToString(wire.AppendPacked(nil, uint64(c.Type), c.Body)); got != want.Caveats[i].PackedHex {
					t.Errorf("caveat %d: %s, want %s", i, got, want.Caveats[i].PackedHex)
				}
			}
			if got := hex.EncodeToString(m.Tail()); got != want.TailHex {
				t.Errorf("tail %s, want %s", got, want.TailHex)
			}

			if want.Verify == nil {
				// An attestation in a discharge: decode-only.
				if !m.Nonce.Proof {
					t.Error("decode-only token is not a proof")
				}
				for _, c := range m.Caveats {
					if typeRegistered(c.Type) && !c.Attestation() {
						t.Errorf("decode-only token holds %s, which is not an attestation", c.Name())
					}
				}
				decodeOnly++
				return
			}
			checkChain(t, key, want.vToken)
			cs, i, err := verifiedParts(b.Verify(lib.Location, StaticKey(key), nil))
			if !want.Verify.OK {
				if name != "BindToParentToken" {
					t.Fatalf("unexpected refused vector %s: %s", name, want.Verify.Error)
				}
				if !errors.Is(err, ErrWrongParent) {
					t.Fatalf("Verify: %v, want ErrWrongParent (vector: %s)", err, want.Verify.Error)
				}
				return
			}
			if err != nil || i != 0 {
				t.Fatalf("Verify: token %d, %v", i, err)
			}
			if got := setTypes(cs); !slices.Equal(got, want.Verify.CaveatTypes) {
				t.Errorf("verified caveat types %v, want %v", got, want.Verify.CaveatTypes)
			}
			if !sameCaveats(cs, m.Caveats) {
				t.Errorf("verified caveats %x, want the token's %x", cs.AppendEncoded(nil), m.Caveats.AppendEncoded(nil))
			}
			verified++
		})
	}
	if verified == 0 || decodeOnly == 0 {
		t.Errorf("%d tokens verified, %d decode-only: want some of each", verified, decodeOnly)
	}
}

// TestLibraryVectorAttenuation repeats the generator's attenuation: the base
// permission token of the base header, extended with each packed set, must
// give the recorded token byte for byte, leave the bundle's other tokens
// alone, and verify (except a top-level BindToParentToken). Then all the sets
// are added one after another to one token: each step must verify to the
// previous step's caveats followed by the new ones, and every earlier token
// must still verify as it did.
func TestLibraryVectorAttenuation(t *testing.T) {
	lib, exp := loadLibrary(t)
	key := SigningKey(lib.Key)
	att := exp.Attenuation
	results, ok := lib.Attenuation[att.BaseHeader]
	if !ok || len(lib.Attenuation) != 1 {
		t.Fatalf("library_vectors.attenuation has %d bases, want exactly the expected one", len(lib.Attenuation))
	}
	base := mustParseBundle(t, att.BaseHeader, 3)
	bi := att.BaseIndex
	if got := hex.EncodeToString(base.Tokens[bi].Encode()); got != att.Base.TokenHex {
		t.Fatalf("base token %s, want %s", got, att.Base.TokenHex)
	}
	t.Run("base chain", func(t *testing.T) { checkChain(t, key, att.Base) })
	for i := range base.Tokens {
		if i != bi && base.Tokens[i].Location != att.OtherLocation {
			t.Errorf("token %d location %q, want %q", i, base.Tokens[i].Location, att.OtherLocation)
		}
	}
	if _, i, err := verifiedParts(base.Verify(lib.Location, StaticKey(key), nil)); err != nil || i != bi {
		t.Fatalf("base bundle: token %d, %v", i, err)
	}
	baseBytes := base.Tokens[bi].Encode()
	if len(att.Entries) != len(results) {
		t.Fatalf("%d expected entries, %d results", len(att.Entries), len(results))
	}

	var sets []CaveatSet // the added sets, in entry order, that verify
	for _, e := range att.Entries {
		t.Run(e.AddedHex, func(t *testing.T) {
			header, ok := results[e.AddedB64]
			if !ok || header != e.ResultHeader {
				t.Fatalf("library_vectors has no result for %s, or another one", e.AddedB64)
			}
			added, err := ParseCaveatSet(hx(t, e.AddedHex))
			if err != nil {
				t.Fatalf("packed set: %v", err)
			}
			if got := setTypes(added); !slices.Equal(got, e.AddedTypes) {
				t.Errorf("added types %v, want %v", got, e.AddedTypes)
			}
			m, err := Decode(baseBytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.AddRaw(added...); err != nil {
				t.Fatalf("AddRaw: %v", err)
			}
			if got := hex.EncodeToString(m.Encode()); (got == e.ResultHex) != e.Reproduced {
				t.Fatalf("attenuated token:\n got %s\nwant %s", got, e.ResultHex)
			}
			res := mustParseBundle(t, header, 3)
			if got := hex.EncodeToString(res.Tokens[bi].Encode()); got != e.ResultHex {
				t.Errorf("result header token %s, want %s", got, e.ResultHex)
			}
			for i := range res.Tokens {
				if i != bi && !bytes.Equal(res.Tokens[i].Encode(), base.Tokens[i].Encode()) {
					t.Errorf("token %d changed", i)
				}
			}
			cs, i, err := verifiedParts(res.Verify(lib.Location, StaticKey(key), nil))
			if !e.ResultVerify.OK {
				if !slices.Equal(e.AddedTypes, []uint64{uint64(TypeBindToParentToken)}) {
					t.Fatalf("unexpected refused entry: %s", e.ResultVerify.Error)
				}
				if !errors.Is(err, ErrWrongParent) {
					t.Fatalf("Verify: %v, want ErrWrongParent", err)
				}
				return
			}
			if err != nil || i != bi {
				t.Fatalf("Verify: token %d, %v", i, err)
			}
			if got := setTypes(cs); !slices.Equal(got, e.ResultVerify.CaveatTypes) {
				t.Errorf("verified types %v, want %v", got, e.ResultVerify.CaveatTypes)
			}
			// The result keeps the base token's caveats, then the added ones.
			if !sameCaveats(cs, append(slices.Clone(base.Tokens[bi].Caveats), added...)) {
				t.Errorf("verified caveats %x", cs.AppendEncoded(nil))
			}
			sets = append(sets, added)
		})
	}
	if len(sets) < 2 {
		t.Fatalf("only %d sets to chain", len(sets))
	}

	// Cumulative attenuation.
	m, err := Decode(baseBytes)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		token []byte
		want  CaveatSet
	}
	steps := []step{{baseBytes, slices.Clone(m.Caveats)}}
	for _, s := range sets {
		if err := m.AddRaw(s...); err != nil {
			t.Fatalf("AddRaw %x: %v", s.AppendEncoded(nil), err)
		}
		prev := steps[len(steps)-1]
		steps = append(steps, step{m.Encode(), append(slices.Clone(prev.want), s...)})
	}
	for si, s := range steps {
		d, err := Decode(s.token)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := d.Verify(key, nil, nil)
		if err != nil {
			t.Fatalf("step %d: %v", si, err)
		}
		if !sameCaveats(cs, s.want) {
			t.Errorf("step %d: verified %x, want %x", si, cs.AppendEncoded(nil), s.want.AppendEncoded(nil))
		}
		if si > 0 && !sameCaveats(cs[:len(steps[si-1].want)], steps[si-1].want) {
			t.Errorf("step %d lost an earlier caveat", si)
		}
	}
	added := 0
	for _, s := range sets {
		added += len(s)
	}
	if last := steps[len(steps)-1]; len(last.want) != len(m.Caveats) || len(last.want) != len(steps[0].want)+added || added < 2 {
		t.Errorf("the final token has %d caveats, the steps %d, for %d added", len(m.Caveats), len(last.want), added)
	}
}

// TestLibraryVectorWithTPs checks the generator's token with two 3P caveats
// and a discharge for the first only: as given it must fail for the missing
// discharge; the tickets open with tp_key; the library's second discharge,
// or one made here from the second ticket, completes the bundle.
func TestLibraryVectorWithTPs(t *testing.T) {
	lib, exp := loadLibrary(t)
	key := SigningKey(lib.Key)
	w := exp.WithTPs
	if lib.WithTPs != w.Header {
		t.Fatal("with_tps headers differ")
	}
	if len(w.ThirdPartyCaveats) != 2 {
		t.Fatalf("%d 3P caveats, want 2", len(w.ThirdPartyCaveats))
	}
	b := mustParseBundle(t, lib.WithTPs, 2)
	perm, dis := &b.Tokens[0], &b.Tokens[1]
	if got := hex.EncodeToString(perm.Encode()); got != w.Permission.TokenHex {
		t.Fatalf("permission %s, want %s", got, w.Permission.TokenHex)
	}
	if got := hex.EncodeToString(dis.Encode()); got != w.Discharge.TokenHex {
		t.Fatalf("discharge %s, want %s", got, w.Discharge.TokenHex)
	}
	t.Run("permission chain", func(t *testing.T) { checkChain(t, key, w.Permission) })
	t.Run("discharge chain", func(t *testing.T) { checkChain(t, hx(t, w.ThirdPartyCaveats[0].RnHex), w.Discharge) })

	if b.IsDischarge(0) || !b.IsDischarge(1) {
		t.Errorf("IsDischarge = %v, %v; want false, true", b.IsDischarge(0), b.IsDischarge(1))
	}
	if got := b.Discharges(0); !slices.Equal(got, []int{1}) {
		t.Errorf("Discharges(0) = %v, want [1]", got)
	}

	var tpKey EncryptionKey
	copy(tpKey[:], lib.TPKey)
	threeP := 0
	for i, c := range perm.Caveats {
		if c.Type != Type3P {
			continue
		}
		want := w.ThirdPartyCaveats[threeP]
		threeP++
		r, err := parse3P(c.Body)
		if err != nil {
			t.Fatalf("caveat %d: %v", i, err)
		}
		if string(r.location) != want.Location || hex.EncodeToString(r.ticket) != want.TicketHex || hex.EncodeToString(r.verifierKey) != want.VerifierKeyHex {
			t.Errorf("3P caveat %d differs from the expected one for %s", i, want.Location)
		}
		rn, err := unseal(hx(t, want.TailBeforeHex), r.verifierKey, nil)
		if err != nil || hex.EncodeToString(rn) != want.VKPlainHex || want.VKPlainHex != want.RnHex {
			t.Errorf("verifier key of %s: %x, %v", want.Location, rn, err)
		}
		ticket, err := OpenTicket(tpKey, r.ticket)
		if err != nil {
			t.Fatalf("ticket of %s does not open with tp_key: %v", want.Location, err)
		}
		if hex.EncodeToString(ticket.rn) != want.RnHex || len(ticket.Caveats) != want.TicketCaveats {
			t.Errorf("ticket of %s: rn %x, %d caveats", want.Location, ticket.rn, len(ticket.Caveats))
		}
		if plain, _ := unseal(tpKey[:], r.ticket, nil); hex.EncodeToString(plain) != want.TicketPlainHex {
			t.Errorf("ticket plaintext %x, want %s", plain, want.TicketPlainHex)
		}
		if (hex.EncodeToString(dis.Nonce.KID) == want.TicketHex) != (want.Location == w.DischargeOf) {
			t.Errorf("discharge KID matches the ticket of %s: want only %s", want.Location, w.DischargeOf)
		}
	}
	if threeP != 2 {
		t.Fatalf("%d 3P caveats in the token", threeP)
	}
	tickets := perm.ThirdPartyTickets(dis)
	if len(tickets) != 1 || tickets[0].Location == w.DischargeOf {
		t.Fatalf("undischarged tickets: %+v", tickets)
	}

	_, _, err := verifiedParts(b.Verify(lib.Location, StaticKey(key), nil))
	if w.VerifyAsGiven.OK || !errors.Is(err, ErrMissingDischarge) {
		t.Fatalf("as given: %v, want ErrMissingDischarge (vector: %s)", err, w.VerifyAsGiven.Error)
	}

	second := headerEntries(t, w.SecondHeader)
	if len(second) != 1 {
		t.Fatalf("second discharge header has %d tokens", len(second))
	}
	full := mustParseBundle(t, lib.WithTPs+","+strings.TrimPrefix(w.SecondHeader, "FlyV1 "), 3)
	for _, trusted := range []TrustedThirdParties{nil, {"discharged": {tpKey}, "undischarged": {tpKey}}} {
		cs, i, err := verifiedParts(full.Verify(lib.Location, StaticKey(key), trusted))
		if err != nil || i != 0 || !w.VerifySecond.OK {
			t.Fatalf("with the second discharge: token %d, %v", i, err)
		}
		if got := setTypes(cs); !slices.Equal(got, w.VerifySecond.CaveatTypes) {
			t.Errorf("caveat types %v, want %v", got, w.VerifySecond.CaveatTypes)
		}
	}

	// A discharge made here for the second ticket, bound to the token.
	ticket, err := OpenTicket(tpKey, tickets[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := ticket.Discharge(tickets[0].Location)
	if err != nil {
		t.Fatal(err)
	}
	if err := mine.Bind(perm); err != nil {
		t.Fatal(err)
	}
	// Encoding finalises the proof, as sending it would.
	sent, err := Decode(mine.Encode())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := perm.Verify(key, []*Macaroon{dis, sent}, nil)
	if err != nil {
		t.Fatalf("with a discharge made here: %v", err)
	}
	if len(cs) != 0 {
		t.Errorf("%d caveats, want none", len(cs))
	}
	// Bound to another token, it does not count.
	other, err := ticket.Discharge(tickets[0].Location)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Bind(dis); err != nil {
		t.Fatal(err)
	}
	if sent, err = Decode(other.Encode()); err != nil {
		t.Fatal(err)
	}
	if _, err := perm.Verify(key, []*Macaroon{dis, sent}, nil); !errors.Is(err, ErrWrongParent) {
		t.Errorf("with a discharge bound to another token: %v, want ErrWrongParent", err)
	}
}

// TestThirdPartyVectorOutcomes checks every recorded outcome of
// third_party.verify, with trusted third-party keys where the case says so:
// the caveat types returned, in order, and the bodies, which must be the
// permission token's (without its 3P caveat) then the discharge's (without
// its binding, and without attestations unless the third party is trusted).
func TestThirdPartyVectorOutcomes(t *testing.T) {
	tp, key := loadThirdParty(t)
	var outcomes map[string]vResult
	var raw struct {
		Verify          json.RawMessage `json:"verify"`
		TicketCaveatsJS json.RawMessage `json:"ticket_caveats_json"`
	}
	vectors.Section(t, "third_party", &raw)
	if err := json.Unmarshal(raw.Verify, &outcomes); err != nil {
		t.Fatal(err)
	}
	var fp struct {
		Token vToken `json:"token"`
	}
	vectors.Section(t, "first_party", &fp)
	dec := func(h string) *Macaroon {
		m, err := Decode(hx(t, h))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	perm, att, pre := dec(tp.Permission.TokenHex), dec(tp.AttenuatedHex), dec(fp.Token.TokenHex)
	bound, plain, wrong := dec(tp.Discharge.TokenHex), dec(tp.PlainDischarge.TokenHex), dec(tp.WronglyBoundHex)
	var ka, otherKey EncryptionKey
	copy(ka[:], hx(t, tp.ThirdPartyKeyHex))
	copy(otherKey[:], ka[:])
	otherKey[31] ^= 1
	trusted := TrustedThirdParties{tp.Location: {ka}}

	type tcase struct {
		m       *Macaroon
		ds      []*Macaroon
		trusted TrustedThirdParties
		used    *Macaroon // the discharge that satisfies the 3P caveat
		err     error
	}
	cases := map[string]tcase{
		"attenuated_perm_plus_bound_discharge":        {att, []*Macaroon{bound}, trusted, bound, nil},
		"perm_plus_bound_discharge_trusted_3p_key":    {perm, []*Macaroon{bound}, trusted, bound, nil},
		"perm_plus_bound_discharge_untrusted":         {perm, []*Macaroon{bound}, nil, bound, nil},
		"perm_plus_bound_discharge_wrong_trusted_key": {perm, []*Macaroon{bound}, TrustedThirdParties{tp.Location: {otherKey}}, bound, nil},
		"perm_plus_plain_discharge":                   {perm, []*Macaroon{plain}, nil, plain, nil},
		"perm_plus_wrongly_bound_discharge":           {perm, []*Macaroon{wrong}, trusted, nil, ErrWrongParent},
		"perm_plus_wrongly_bound_then_good_discharge": {perm, []*Macaroon{wrong, plain}, trusted, plain, nil},
		"perm_without_discharge":                      {perm, nil, trusted, nil, ErrMissingDischarge},
		"pre_3p_token_plus_bound_discharge_ignored":   {pre, []*Macaroon{bound}, trusted, nil, nil},
	}
	if len(outcomes) != len(cases) {
		t.Errorf("%d recorded outcomes, %d cases here", len(outcomes), len(cases))
	}
	for name, want := range outcomes {
		t.Run(name, func(t *testing.T) {
			tc, ok := cases[name]
			if !ok {
				t.Fatal("no case for this outcome")
			}
			cs, err := tc.m.Verify(key, tc.ds, tc.trusted)
			if tc.err != nil {
				if want.OK || !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v (vector: %s)", err, tc.err, want.Error)
				}
				return
			}
			if err != nil || !want.OK {
				t.Fatalf("err = %v (vector ok %v)", err, want.OK)
			}
			isTrusted := tc.trusted != nil && slices.Contains(tc.trusted[tp.Location], ka)
			var wantCs CaveatSet
			for _, c := range tc.m.Caveats {
				if c.Type != Type3P {
					wantCs = append(wantCs, c)
				}
			}
			if tc.used != nil {
				for _, c := range tc.used.Caveats {
					if c.Type != TypeBindToParentToken && (!c.Attestation() || isTrusted) {
						wantCs = append(wantCs, c)
					}
				}
			}
			if !sameCaveats(cs, wantCs) {
				t.Errorf("caveats %x, want %x", cs.AppendEncoded(nil), wantCs.AppendEncoded(nil))
			}
			// The vector's types treat FlyioUserID as an attestation; here it
			// is one only when auth is linked in.
			wantTypes := want.CaveatTypes
			if !(RawCaveat{Type: 23}).Attestation() && tc.used == bound && !isTrusted {
				wantTypes = append(slices.Clone(wantTypes), 23)
			}
			if got := setTypes(cs); !slices.Equal(got, wantTypes) {
				t.Errorf("caveat types %v, want %v", got, wantTypes)
			}
		})
	}

	// The same through a parsed header: the permission token and the
	// discharge as the third party sends it.
	b := mustParseBundle(t, "FlyV1 "+perm.String()+", "+strings.TrimPrefix(tp.DischargeHeader, "FlyV1 "), 2)
	cs, i, err := verifiedParts(b.Verify(perm.Location, StaticKey(key), trusted))
	if err != nil || i != 0 {
		t.Fatalf("bundle: token %d, %v", i, err)
	}
	want, err := perm.Verify(key, []*Macaroon{bound}, trusted)
	if err != nil || !sameCaveats(cs, want) {
		t.Errorf("bundle caveats %x, want %x (%v)", cs.AppendEncoded(nil), want.AppendEncoded(nil), err)
	}

	// The ticket's caveats, as JSON, when their types are registered.
	ticket, err := OpenTicket(ka, hx(t, tp.Caveat3P.TicketHex))
	if err != nil {
		t.Fatal(err)
	}
	all := true
	for _, c := range ticket.Caveats {
		all = all && typeRegistered(c.Type)
	}
	if !all {
		t.Logf("ticket caveat types %v are not all registered here: JSON not compared", setTypes(ticket.Caveats))
		return
	}
	js, err := ticket.Caveats.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got, wantJS any
	if json.Unmarshal(js, &got) != nil || json.Unmarshal(raw.TicketCaveatsJS, &wantJS) != nil {
		t.Fatalf("JSON %s / %s", js, raw.TicketCaveatsJS)
	}
	if !reflect.DeepEqual(got, wantJS) {
		t.Errorf("ticket caveats JSON %s, want %s", js, raw.TicketCaveatsJS)
	}
}

// TestMiscConstants checks the misc section against the values the core
// uses, and the finalisation key and binding length against the
// third_party vectors. (The action bits belong to resset.)
func TestMiscConstants(t *testing.T) {
	var misc struct {
		BindingIDLength int    `json:"binding_id_length"`
		Namespace       string `json:"kid_uuid_namespace"`
		MaxUint64       uint64 `json:"max_uint64"`
		RndLength       int    `json:"nonce_rnd_length"`
		FinalizationKey string `json:"proof_finalization_hmac_key_utf8"`
		SealNonceLength int    `json:"seal_nonce_length"`
	}
	vectors.Section(t, "misc", &misc)
	if bindingIDSize != misc.BindingIDLength {
		t.Errorf("binding ID length %d, want %d", bindingIDSize, misc.BindingIDLength)
	}
	if uuidNamespace.String() != misc.Namespace {
		t.Errorf("UUID namespace %s, want %s", uuidNamespace, misc.Namespace)
	}
	if uint64(TypeUnregistered) != misc.MaxUint64 {
		t.Errorf("TypeUnregistered = %d, want %d", uint64(TypeUnregistered), misc.MaxUint64)
	}
	if n := NewNonce(nil, false); len(n.Rnd) != misc.RndLength || rndSize != misc.RndLength {
		t.Errorf("nonce Rnd is %d bytes, want %d", len(n.Rnd), misc.RndLength)
	}
	if string(finalizationKey) != misc.FinalizationKey {
		t.Errorf("finalisation key %q, want %q", finalizationKey, misc.FinalizationKey)
	}
	if sealNonceSize != misc.SealNonceLength {
		t.Errorf("seal nonce %d bytes, want %d", sealNonceSize, misc.SealNonceLength)
	}

	tp, _ := loadThirdParty(t)
	// Finalisation is HMAC-SHA256 under the key, by crypto/hmac.
	for _, d := range []vToken{tp.Discharge, tp.PlainDischarge} {
		mac := hmac.New(sha256.New, []byte(misc.FinalizationKey))
		mac.Write(hx(t, d.UnfinalizedTailHex))
		if got := hex.EncodeToString(mac.Sum(nil)); got != d.TailHex {
			t.Errorf("HMAC(%q, unfinalised tail) = %s, want the tail %s", misc.FinalizationKey, got, d.TailHex)
		}
	}
	// The binding written by the vector's discharge has that length, and
	// the 3P caveat's seals start with nonces of the seal nonce length.
	if n := len(hx(t, tp.BindExpectedHex)); n != misc.BindingIDLength {
		t.Errorf("vector binding is %d bytes, want %d", n, misc.BindingIDLength)
	}
	if !strings.HasPrefix(tp.Caveat3P.TicketHex, tp.Caveat3P.TicketNonceHex) || len(hx(t, tp.Caveat3P.TicketNonceHex)) != misc.SealNonceLength {
		t.Errorf("ticket nonce %s is not the first %d bytes of the ticket", tp.Caveat3P.TicketNonceHex, misc.SealNonceLength)
	}
	if !strings.HasPrefix(tp.Caveat3P.VerifierKeyHex, tp.Caveat3P.VKNonceHex) || len(hx(t, tp.Caveat3P.VKNonceHex)) != misc.SealNonceLength {
		t.Errorf("verifier key nonce %s is not the first %d bytes of the verifier key", tp.Caveat3P.VKNonceHex, misc.SealNonceLength)
	}
	// A binding made by Bind has that length too.
	var ka EncryptionKey
	copy(ka[:], hx(t, tp.ThirdPartyKeyHex))
	ticket, err := OpenTicket(ka, hx(t, tp.Caveat3P.TicketHex))
	if err != nil {
		t.Fatal(err)
	}
	d, err := ticket.Discharge(tp.Location)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := Decode(hx(t, tp.Permission.TokenHex))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Bind(parent); err != nil {
		t.Fatal(err)
	}
	bind, err := parseBind(d.Caveats[len(d.Caveats)-1].Body)
	if err != nil || len(bind) != misc.BindingIDLength {
		t.Errorf("Bind wrote %x (%v), want %d bytes", bind, err, misc.BindingIDLength)
	}
}
