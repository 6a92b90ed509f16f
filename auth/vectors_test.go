package auth_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/internal/vectors"
)

// authTypes are the type numbers this package registers.
var authTypes = map[caveat.CaveatType]bool{
	auth.TypeConfineUser: true, auth.TypeConfineOrganization: true,
	auth.TypeConfineGoogleHD: true, auth.TypeConfineGitHubOrg: true, auth.TypeMaxValidity: true,
	auth.TypeFlyioUserID: true, auth.TypeGitHubUserID: true, auth.TypeGoogleUserID: true,
}

// errorClasses names the sentinel errors as the vectors spell them.
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

type dischargeCase struct {
	Label        string          `json:"label"`
	Caveats      json.RawMessage `json:"caveats"`
	Request      json.RawMessage `json:"discharge_request_go_json"`
	ExpiryMinus  *int64          `json:"expiry_minus_now_seconds"`
	Allowed      bool            `json:"allowed"`
	Error        string          `json:"error"`
	ErrorClasses []string        `json:"error_classes"`
}

func TestDischargeRequestVectors(t *testing.T) {
	var cases []dischargeCase
	vectors.Section(t, "validation_discharge_request", &cases)
	if len(cases) == 0 {
		t.Fatal("no validation_discharge_request cases")
	}
	now := time.Unix(1750000000, 250_000_000)
	for _, tc := range cases {
		t.Run(tc.Label, func(t *testing.T) {
			req := new(auth.DischargeRequest)
			if tc.Request != nil {
				if err := json.Unmarshal(tc.Request, req); err != nil {
					t.Fatalf("discharge request JSON: %v", err)
				}
			}
			req.Time = now
			if tc.ExpiryMinus != nil {
				req.Expiry = now.Add(time.Duration(*tc.ExpiryMinus) * time.Second)
			}
			cs, err := caveat.ParseJSON(tc.Caveats)
			if err != nil {
				t.Fatalf("caveats JSON: %v", err)
			}
			set := caveat.NewCaveatSet(cs...)
			// The registered Check (from the wire form) and the typed
			// Prohibits must agree.
			errs := []error{set.Clear(req)}
			for _, c := range cs {
				errs = append(errs, c.Prohibits(req))
			}
			for i, err := range errs {
				checkOutcome(t, i, tc, err)
			}
		})
	}
}

func checkOutcome(t *testing.T, path int, tc dischargeCase, err error) {
	t.Helper()
	if tc.Allowed {
		if err != nil {
			t.Errorf("path %d: refused: %v", path, err)
		}
		return
	}
	if err == nil {
		t.Errorf("path %d: allowed, want %q", path, tc.Error)
		return
	}
	if len(tc.ErrorClasses) == 0 {
		if errors.Is(err, caveat.ErrUnauthorized) {
			t.Errorf("path %d: %v wraps ErrUnauthorized; the vectors say it must not", path, err)
		}
		var ie *auth.IdentityError
		if !errors.As(err, &ie) {
			t.Fatalf("path %d: %v (%T) is not an *auth.IdentityError", path, err, err)
		}
		if ie.Error() != tc.Error {
			t.Errorf("path %d: error %q, want %q", path, ie.Error(), tc.Error)
		}
		if ie.Caveat == nil {
			t.Errorf("path %d: IdentityError without its caveat", path)
		}
	}
	for _, name := range tc.ErrorClasses {
		class, ok := errorClasses[name]
		if !ok {
			t.Fatalf("unknown error class %q in the vectors", name)
		}
		if !errors.Is(err, class) {
			t.Errorf("path %d: %v is not %s", path, err, name)
		}
	}
}

type encodingCase struct {
	Label            string          `json:"label"`
	Type             uint64          `json:"type"`
	PackedHex        string          `json:"packed_hex"`
	BodyHex          string          `json:"body_hex"`
	JSON             json.RawMessage `json:"json"`
	RoundtripPackedX string          `json:"json_roundtrip_packed_hex"`
}

// TestEncodingVectors checks every auth case of caveat_encodings and of the
// library's own caveats: strict decoding, byte-identical re-encoding, JSON
// output, and JSON input.
func TestEncodingVectors(t *testing.T) {
	var cases []encodingCase
	vectors.Section(t, "caveat_encodings", &cases)
	var lib struct {
		Caveats map[string]encodingCase `json:"caveats"`
	}
	vectors.Section(t, "library_vectors_expected", &lib)
	for name, c := range lib.Caveats {
		c.Label = "library " + name
		if c.RoundtripPackedX == "" {
			c.RoundtripPackedX = c.PackedHex
		}
		cases = append(cases, c)
	}
	matched := 0
	for _, tc := range cases {
		if !authTypes[caveat.CaveatType(tc.Type)] {
			continue
		}
		matched++
		t.Run(tc.Label, func(t *testing.T) {
			body := vectors.Hex(t, tc.BodyHex)
			info, ok := caveat.Lookup(caveat.CaveatType(tc.Type))
			if !ok {
				t.Fatalf("type %d not registered", tc.Type)
			}
			if err := info.Canonical(body); err != nil {
				t.Errorf("Canonical: %v", err)
			}
			c, err := info.Decode(body)
			if err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			if got := c.AppendBody(nil); !bytes.Equal(got, body) {
				t.Errorf("re-encoded body %x, want %s", got, tc.BodyHex)
			}
			if got := hex.EncodeToString(caveat.Encode(c).AppendPacked(nil)); got != tc.PackedHex {
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
				packed = caveat.Encode(p).AppendPacked(packed)
			}
			if got := hex.EncodeToString(packed); got != tc.RoundtripPackedX {
				t.Errorf("JSON → msgpack %s, want %s", got, tc.RoundtripPackedX)
			}
		})
	}
	if matched == 0 {
		t.Fatal("no auth cases in caveat_encodings")
	}
}

// jsonEqual compares two JSON documents as values, keeping numbers exact.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(x []byte) any {
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("JSON %s: %v", x, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}
