package caveat_test

// Every registered caveat type's encoding vectors (caveat_encodings and
// library_vectors_expected), whichever package registers it: strict
// decoding, byte-identical re-encoding, JSON output, and JSON input back to
// MessagePack. registry_test.go links every caveat package.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/internal/wire"
)

// registered reports whether a vector's type is one this binary can encode
// (registered, and not in the user-defined range, whose vectors are the
// unregistered cases of registry_test.go).
func registered(t caveat.CaveatType) bool {
	_, ok := caveat.Lookup(t)
	return ok && t < caveat.TypeUserDefinedMin
}

type encodingCase struct {
	Label     string          `json:"label"`
	Type      uint64          `json:"type"`
	PackedHex string          `json:"packed_hex"`
	BodyHex   string          `json:"body_hex"`
	JSON      json.RawMessage `json:"json"`
	Roundtrip string          `json:"json_roundtrip_packed_hex"`
}

// TestEncodingVectors checks the encoding vector of every registered type.
func TestEncodingVectors(t *testing.T) {
	var cases []encodingCase
	vectors.Section(t, "caveat_encodings", &cases)
	var lib struct {
		Caveats map[string]encodingCase `json:"caveats"`
	}
	vectors.Section(t, "library_vectors_expected", &lib)
	for name, c := range lib.Caveats {
		c.Label = "library " + name
		if c.Roundtrip == "" {
			c.Roundtrip = c.PackedHex
		}
		cases = append(cases, c)
	}
	seen := map[caveat.CaveatType]bool{}
	for _, tc := range cases {
		typ := caveat.CaveatType(tc.Type)
		if !registered(typ) {
			continue
		}
		seen[typ] = true
		t.Run(tc.Label, func(t *testing.T) {
			body := vectors.Hex(t, tc.BodyHex)
			info, ok := caveat.Lookup(typ)
			if !ok {
				t.Fatalf("type %d not registered", tc.Type)
			}
			if err := (caveat.RawCaveat{Type: typ, Body: body}).Canonical(); err != nil {
				t.Errorf("Canonical: %v", err)
			}
			c, err := info.Decode(body)
			if err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			if got := c.AppendBody(nil); !bytes.Equal(got, body) {
				t.Errorf("re-encoded body %x, want %s", got, tc.BodyHex)
			}
			if got := hex.EncodeToString(appendPacked(nil, caveat.Encode(c))); got != tc.PackedHex {
				t.Errorf("packed %s, want %s", got, tc.PackedHex)
			}
			js, err := caveat.NewCaveatSet(c).MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			if !jsonEqual(t, js, tc.JSON) {
				t.Errorf("JSON %s, want %s", js, tc.JSON)
			}
			parsed, err := caveat.ParseJSON(tc.JSON)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			var packed []byte
			for _, p := range parsed {
				packed = appendPacked(packed, caveat.Encode(p))
			}
			if got := hex.EncodeToString(packed); got != tc.Roundtrip {
				t.Errorf("JSON → msgpack %s, want %s", got, tc.Roundtrip)
			}
		})
	}
	for _, info := range caveat.Registered() {
		if registered(info.Type) && !seen[info.Type] {
			t.Errorf("type %d (%s) has no encoding vector", info.Type, info.Name)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	for _, x := range []struct {
		in  []byte
		out *any
	}{{a, &va}, {b, &vb}} {
		d := json.NewDecoder(bytes.NewReader(x.in))
		d.UseNumber()
		if err := d.Decode(x.out); err != nil {
			t.Fatalf("JSON %s: %v", x.in, err)
		}
	}
	return reflect.DeepEqual(va, vb)
}

// appendPacked appends c's packed form, the bytes that are MAC'd.
func appendPacked(b []byte, c caveat.RawCaveat) []byte {
	return wire.AppendPacked(b, uint64(c.Type), c.Body)
}
