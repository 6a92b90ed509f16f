package auth_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/internal/vectors"
)

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
			// RawCaveat.Check (from the wire form) and the typed
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
