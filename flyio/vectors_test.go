package flyio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	_ "github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/resset"
)

// ours are the type numbers that flyio and resset register.
var ours = map[caveat.CaveatType]bool{
	flyio.TypeOrganization: true, flyio.TypeVolumes: true, flyio.TypeApps: true,
	flyio.TypeFeatureSet: true, flyio.TypeMutations: true, flyio.TypeMachines: true,
	flyio.TypeIsUser: true, flyio.TypeMachineFeatureSet: true, flyio.TypeFromMachineSource: true,
	flyio.TypeClusters: true, flyio.TypeIsMember: true, flyio.TypeCommands: true,
	flyio.TypeAppFeatureSet: true, flyio.TypeStorageObjects: true, flyio.TypeAllowedRoles: true,
	flyio.TypeFlySrc: true, resset.TypeIfPresent: true, resset.TypeAction: true,
}

type encodingCase struct {
	Label     string          `json:"label"`
	Type      uint64          `json:"type"`
	PackedHex string          `json:"packed_hex"`
	BodyHex   string          `json:"body_hex"`
	JSON      json.RawMessage `json:"json"`
	Roundtrip string          `json:"json_roundtrip_packed_hex"`
}

var errorClasses = map[string]error{
	"ErrUnauthorized":               caveat.ErrUnauthorized,
	"ErrInvalidAccess":              caveat.ErrInvalidAccess,
	"ErrResourceUnspecified":        caveat.ErrResourceUnspecified,
	"ErrResourcesMutuallyExclusive": caveat.ErrResourcesMutuallyExclusive,
	"ErrUnauthorizedForResource":    caveat.ErrUnauthorizedForResource,
	"ErrUnauthorizedForAction":      caveat.ErrUnauthorizedForAction,
	"ErrUnauthorizedForRole":        caveat.ErrUnauthorizedForRole,
	"ErrBadCaveat":                  caveat.ErrBadCaveat,
}

type accessCase struct {
	Label        string          `json:"label"`
	Access       json.RawMessage `json:"access"`
	Caveats      json.RawMessage `json:"caveats"`
	PackedHex    string          `json:"caveats_packed_hex"`
	Allowed      bool            `json:"allowed"`
	Error        string          `json:"error"`
	ErrorClasses []string        `json:"error_classes"`
	NowUnix      int64           `json:"now_unix"`
}

// TestAccessVectors clears every case of validation_flyio_access three ways
// (the set's Clear from the wire form, and each typed caveat's Prohibits
// after the access validates) and checks the outcome and its error classes:
// every listed class must match and no other.
func TestAccessVectors(t *testing.T) {
	var cases []accessCase
	vectors.Section(t, "validation_flyio_access", &cases)
	if len(cases) < 60 {
		t.Fatalf("only %d validation_flyio_access cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Label, func(t *testing.T) {
			var a flyio.Access
			dec := json.NewDecoder(bytes.NewReader(tc.Access))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&a); err != nil {
				t.Fatalf("access JSON: %v", err)
			}
			a.Time = time.Unix(tc.NowUnix, 0)

			// The encoded set is the ground truth; the JSON, where the
			// case has one, must encode to it.
			packed := vectors.Hex(t, tc.PackedHex)
			set, err := caveat.ParseCaveatSet(packed)
			if err != nil {
				t.Fatalf("caveat set: %v", err)
			}
			if js := tc.Caveats; len(js) > 0 && js[0] == '[' {
				cs, err := caveat.ParseJSON(js)
				if err != nil {
					t.Fatalf("caveats JSON: %v", err)
				}
				if got := caveat.NewCaveatSet(cs...).AppendEncoded(nil); !bytes.Equal(got, packed) {
					t.Fatalf("JSON encodes to %x, want %s", got, tc.PackedHex)
				}
			}

			errs := map[string]error{"Clear": set.Clear(&a)}
			if verr := a.Validate(); verr != nil {
				errs["Validate"] = verr
			} else if typed, err := set.Decode(); err == nil {
				var all []error
				for i, c := range typed {
					if set[i].Attestation() {
						continue
					}
					if err := c.Prohibits(&a); err != nil {
						all = append(all, err)
					}
				}
				errs["Prohibits"] = errors.Join(all...)
			}
			for path, err := range errs {
				checkAccessOutcome(t, path, tc, err)
			}
		})
	}
}

func checkAccessOutcome(t *testing.T, path string, tc accessCase, err error) {
	t.Helper()
	if tc.Allowed {
		if err != nil {
			t.Errorf("%s: refused: %v", path, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: allowed; want refused (%q)", path, tc.Error)
		return
	}
	listed := map[string]bool{}
	for _, name := range tc.ErrorClasses {
		listed[name] = true
	}
	for name, class := range errorClasses {
		if got := errors.Is(err, class); got != listed[name] {
			t.Errorf("%s: errors.Is(%q, %s) = %v, want %v", path, err, name, got, listed[name])
		}
	}
}
