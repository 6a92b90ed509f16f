package caveat_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	_ "github.com/caveatdev/caveat/auth"
	_ "github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/vectors"
)

// FuzzCaveatJSON checks the JSON form of caveats (spec §5.3) against the
// wire form. For any input that ParseJSON accepts:
//
//   - the caveats encode to a set that decodes strictly (everything that
//     can be written from JSON is canonical);
//   - that set renders as JSON that parses back to the same bytes, and
//     renders again identically: JSON shown for a token is a fixed point;
//   - the first encoding already equals the round-tripped one, unless the
//     input uses the mask "*", the one documented lossy JSON value (it
//     parses to 0xffff, which renders as "rwcdC", i.e. 0x1f).
//
// Sets that exceed a decoding limit (caveat count, nesting depth) are
// skipped: ParseJSON does not enforce the wire limits.
func FuzzCaveatJSON(f *testing.F) {
	var cases []struct {
		JSON json.RawMessage `json:"json"`
	}
	vectors.Section(f, "caveat_encodings", &cases)
	seeds := 0
	for _, c := range cases {
		if len(c.JSON) > 0 {
			f.Add([]byte(c.JSON))
			seeds++
		}
	}
	if seeds == 0 {
		f.Fatal("caveat_encodings has no json fields to seed from")
	}
	for _, s := range []string{
		`[]`,
		`[{"type":"Organization","body":{"ID":1,"Mask":"*"}}]`,
		`[{"type":"DeprecatedApps","body":{"apps":{"0":"r?"}}}]`,
		`[{"type":"21","body":18446744073709551615}]`,
		`[{"type":"281474976710656","body":"x"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cs, err := caveat.ParseJSON(in)
		if err != nil {
			return
		}
		m1 := caveat.NewCaveatSet(cs...).AppendEncoded(nil)
		j1, m2, ok := jsonRoundTrip(t, m1)
		if !ok {
			return
		}
		j2, m3, _ := jsonRoundTrip(t, m2)
		if !bytes.Equal(j1, j2) || !bytes.Equal(m2, m3) {
			t.Fatalf("JSON is not a fixed point:\n%s → %x\n%s → %x", j1, m2, j2, m3)
		}
		if !bytes.Equal(m1, m2) && !usesStarMask(in) {
			t.Fatalf("%s encodes as %x but its rendering %s as %x", in, m1, j1, m2)
		}
	})
}

// jsonRoundTrip decodes an encoded set strictly, renders it as JSON, and
// parses and encodes that JSON again. ok is false when the set exceeds a
// decoding limit.
func jsonRoundTrip(t *testing.T, packed []byte) (js, repacked []byte, ok bool) {
	t.Helper()
	set, err := caveat.ParseCaveatSet(packed)
	if errors.Is(err, caveat.ErrLimit) || (err != nil && strings.Contains(err.Error(), "nested too deeply")) {
		return nil, nil, false
	}
	if err != nil {
		t.Fatalf("caveats from JSON encode as %x, which does not decode strictly: %v", packed, err)
	}
	if js, err = set.MarshalJSON(); err != nil {
		t.Fatalf("MarshalJSON of %x: %v", packed, err)
	}
	cs, err := caveat.ParseJSON(js)
	if err != nil {
		t.Fatalf("rendered JSON %s does not parse: %v", js, err)
	}
	return js, caveat.NewCaveatSet(cs...).AppendEncoded(nil), true
}

// usesStarMask reports whether a JSON input may hold the mask string "*",
// literally or escaped.
func usesStarMask(in []byte) bool {
	return bytes.Contains(in, []byte("*")) || bytes.Contains(bytes.ToLower(in), []byte(`\u002a`))
}
