package caveat_test

// The registry as a whole, with the caveat packages linked in: it must be
// exactly the table of spec §5.1–5.2 (caveat_registry, caveat_type_ranges),
// and unregistered types must survive decoding byte for byte while refusing
// every access (spec §5.4).

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	_ "github.com/caveatdev/caveat/auth"
	_ "github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/internal/wire"
)

// linkedPackages are the caveat packages (as caveat_registry names them)
// imported above; every type of theirs must be registered. flyio imports
// resset.
var linkedPackages = map[string]bool{"macaroon (core)": true, "auth": true, "flyio": true, "resset": true}

type registryEntry struct {
	Type        uint64   `json:"type"`
	Name        string   `json:"name"`
	Package     string   `json:"package"`
	Aliases     []string `json:"json_aliases"`
	Attestation bool     `json:"attestation"`
}

func TestRegistryMatchesSpec(t *testing.T) {
	var entries []registryEntry
	vectors.Section(t, "caveat_registry", &entries)
	if len(entries) == 0 {
		t.Fatal("caveat_registry is empty")
	}
	want := map[caveat.CaveatType]registryEntry{}
	for _, e := range entries {
		want[caveat.CaveatType(e.Type)] = e
	}
	checked := 0
	for _, e := range entries {
		if !linkedPackages[e.Package] {
			t.Errorf("type %d (%s): package %q is not linked into this test", e.Type, e.Name, e.Package)
			continue
		}
		checked++
		typ := caveat.CaveatType(e.Type)
		info, ok := caveat.Lookup(typ)
		if !ok {
			t.Errorf("type %d (%s, package %s) is not registered", e.Type, e.Name, e.Package)
			continue
		}
		if info.Name != e.Name {
			t.Errorf("type %d: name %q, want %q", e.Type, info.Name, e.Name)
		}
		if got := slices.Sorted(slices.Values(info.Aliases)); !slices.Equal(got, slices.Sorted(slices.Values(e.Aliases))) {
			t.Errorf("type %d (%s): aliases %q, want %q", e.Type, e.Name, info.Aliases, e.Aliases)
		}
		if info.Attestation != e.Attestation {
			t.Errorf("type %d (%s): attestation %v, want %v", e.Type, e.Name, info.Attestation, e.Attestation)
		}
		if got := caveat.TypeName(typ); got != e.Name {
			t.Errorf("TypeName(%d) = %q, want %q", e.Type, got, e.Name)
		}
		for _, name := range append([]string{e.Name, strconv.FormatUint(e.Type, 10)}, e.Aliases...) {
			if got, _, ok := caveat.LookupName(name); !ok || got != typ {
				t.Errorf("LookupName(%q) = %d, %v, want %d", name, got, ok, e.Type)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no registry entry checked")
	}
	for _, info := range caveat.Registered() {
		if info.Type >= caveat.TypeUserDefinedMin {
			continue // private types are ours to add
		}
		if _, ok := want[info.Type]; !ok {
			t.Errorf("type %d (%s) is registered but not in the spec's registry", info.Type, info.Name)
		}
	}
}

func TestTypeRanges(t *testing.T) {
	var r struct {
		FlyReservedMaxExclusive uint64   `json:"fly_reserved_max_exclusive"`
		ReservedUnused          []uint64 `json:"reserved_unused"`
		UnregisteredSentinel    uint64   `json:"unregistered_sentinel"`
		UserDefinedMax          uint64   `json:"user_defined_max"`
		UserDefinedMin          uint64   `json:"user_defined_min"`
		UserRegisterableMax     uint64   `json:"user_registerable_max"`
		UserRegisterableMin     uint64   `json:"user_registerable_min"`
	}
	vectors.Section(t, "caveat_type_ranges", &r)
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"TypeUserRegisterableMin", uint64(caveat.TypeUserRegisterableMin), r.UserRegisterableMin},
		{"TypeUserRegisterableMin (end of Fly's range)", uint64(caveat.TypeUserRegisterableMin), r.FlyReservedMaxExclusive},
		{"TypeUserDefinedMin", uint64(caveat.TypeUserDefinedMin), r.UserDefinedMin},
		{"TypeUserDefinedMin - 1", uint64(caveat.TypeUserDefinedMin) - 1, r.UserRegisterableMax},
		{"TypeUnregistered", uint64(caveat.TypeUnregistered), r.UnregisteredSentinel},
		{"TypeUnregistered - 1", uint64(caveat.TypeUnregistered) - 1, r.UserDefinedMax},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for _, n := range r.ReservedUnused {
		if info, ok := caveat.Lookup(caveat.CaveatType(n)); ok {
			t.Errorf("reserved type %d is registered as %s", n, info.Name)
		}
	}
	if _, ok := caveat.Lookup(caveat.TypeUnregistered); ok {
		t.Error("the unregistered sentinel is registered")
	}
	// JSON names switch to decimal strings at 2^48, registered or not.
	for _, typ := range []caveat.CaveatType{caveat.TypeUserDefinedMin, caveat.TypeUnregistered - 1} {
		if got := caveat.TypeName(typ); got != strconv.FormatUint(uint64(typ), 10) {
			t.Errorf("TypeName(%d) = %q", typ, got)
		}
	}
	if typ, _, ok := caveat.LookupName("NoSuchCaveat"); ok || typ != caveat.TypeUnregistered {
		t.Errorf("LookupName of an unknown name = %d, %v", typ, ok)
	}
}

type unregisteredCase struct {
	label     string
	typ       uint64
	packedHex string
	bodyHex   string
}

// unregisteredCases collects every vector of a type this process does not
// know: caveat_encodings, the generator's private types, and the
// validation case of an unregistered caveat.
func unregisteredCases(t *testing.T) []unregisteredCase {
	t.Helper()
	// Which cases are unregistered is the vectors' word (the name
	// "Unregistered", or a private type of the generator), not what happens
	// to be linked; each must also be unknown here.
	isUnregistered := func(typ uint64) bool {
		_, ok := caveat.Lookup(caveat.CaveatType(typ))
		return !ok || caveat.CaveatType(typ) >= caveat.TypeUserDefinedMin
	}
	var out []unregisteredCase
	var enc []struct {
		Label     string `json:"label"`
		Type      uint64 `json:"type"`
		Name      string `json:"name"`
		PackedHex string `json:"packed_hex"`
		BodyHex   string `json:"body_hex"`
	}
	vectors.Section(t, "caveat_encodings", &enc)
	for _, e := range enc {
		if e.Name == "Unregistered" || caveat.CaveatType(e.Type) >= caveat.TypeUserDefinedMin {
			if !isUnregistered(e.Type) {
				t.Errorf("%s: type %d is registered here", e.Label, e.Type)
			}
			out = append(out, unregisteredCase{e.Label, e.Type, e.PackedHex, e.BodyHex})
		}
	}
	var lib struct {
		Caveats map[string]struct {
			Type       uint64 `json:"type"`
			PackedHex  string `json:"packed_hex"`
			BodyHex    string `json:"body_hex"`
			Registered *bool  `json:"registered_in_library"`
		} `json:"caveats"`
	}
	vectors.Section(t, "library_vectors_expected", &lib)
	for name, c := range lib.Caveats {
		if c.Registered != nil && !*c.Registered {
			if !isUnregistered(c.Type) {
				t.Errorf("generator-only type %d (%s) is registered here", c.Type, name)
			}
			out = append(out, unregisteredCase{"generator " + name, c.Type, c.PackedHex, c.BodyHex})
		}
	}
	var val []struct {
		Label     string `json:"label"`
		PackedHex string `json:"caveats_packed_hex"`
	}
	vectors.Section(t, "validation_flyio_access", &val)
	for _, v := range val {
		if strings.Contains(v.Label, "unregistered") {
			// A one-caveat set 92 ‖ type ‖ body.
			b := vectors.Hex(t, v.PackedHex)
			r, err := caveat.ParseCaveatSet(b)
			if err != nil || len(r) != 1 {
				t.Fatalf("%s: %v", v.Label, err)
			}
			out = append(out, unregisteredCase{v.Label, uint64(r[0].Type), v.PackedHex, hex.EncodeToString(r[0].Body)})
		}
	}
	if len(out) == 0 {
		t.Fatal("no unregistered caveat vectors")
	}
	return out
}

func TestUnregisteredVectors(t *testing.T) {
	for _, tc := range unregisteredCases(t) {
		t.Run(tc.label, func(t *testing.T) {
			packed := vectors.Hex(t, tc.packedHex)
			body := vectors.Hex(t, tc.bodyHex)
			// The packed caveat 92 ‖ type ‖ body is also a one-caveat set.
			set, err := caveat.ParseCaveatSet(packed)
			if err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			if len(set) != 1 || uint64(set[0].Type) != tc.typ || !bytes.Equal(set[0].Body, body) {
				t.Fatalf("decoded %+v, want type %d body %s", set, tc.typ, tc.bodyHex)
			}
			if got := wire.AppendPacked(nil, uint64(set[0].Type), set[0].Body); !bytes.Equal(got, packed) {
				t.Errorf("packed %x, want %s", got, tc.packedHex)
			}
			if got := set.AppendEncoded(nil); !bytes.Equal(got, packed) {
				t.Errorf("re-encoded set %x, want %s", got, tc.packedHex)
			}
			if set[0].Attestation() {
				t.Error("an unregistered caveat counts as an attestation")
			}

			c, err := set[0].Decode()
			if err != nil {
				t.Fatal(err)
			}
			u, ok := c.(*caveat.Unregistered)
			if !ok {
				t.Fatalf("decoded %T, want *caveat.Unregistered", c)
			}
			if !bytes.Equal(u.AppendBody(nil), body) || uint64(u.CaveatType()) != tc.typ {
				t.Errorf("Unregistered %d %x, want %d %s", u.CaveatType(), u.AppendBody(nil), tc.typ, tc.bodyHex)
			}

			for name, err := range map[string]error{
				"Check":     set[0].Check(unregAccess{}),
				"Prohibits": u.Prohibits(unregAccess{}),
				"Clear":     set.Clear(unregAccess{}),
			} {
				if !errors.Is(err, caveat.ErrBadCaveat) {
					t.Errorf("%s = %v, want ErrBadCaveat", name, err)
				}
			}

			js, err := set.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			var shown []map[string]json.RawMessage
			if err := json.Unmarshal(js, &shown); err != nil || len(shown) != 1 {
				t.Fatalf("JSON %s: %v", js, err)
			}
			if string(shown[0]["type"]) != strconv.Quote(strconv.FormatUint(tc.typ, 10)) || shown[0]["error"] != nil {
				t.Errorf("JSON %s: want the decimal type and a generic body", js)
			}
			_, err = caveat.ParseJSON(js)
			if err == nil || !strings.Contains(err.Error(), "cannot convert unregistered caveats from JSON") {
				t.Errorf("ParseJSON(%s) = %v, want the unregistered-JSON error", js, err)
			}
		})
	}
}
