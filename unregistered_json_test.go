package caveat_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
)

func TestUnregisteredMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want string // "" means an error is expected
	}{
		{"map with string keys", []byte{0x82, 0xa1, 'b', 0x05, 0xa1, 'a', 0x01}, `{"a":1,"b":5}`},
		{"map with int keys", []byte{0x82, 0x02, 0xc3, 0xff, 0xc2}, `{"-1":false,"2":true}`},
		{"uint64 max", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, `18446744073709551615`},
		{"bin", []byte{0xc4, 0x03, 1, 2, 3}, `"AQID"`},
		{"nil", []byte{0xc0}, `null`},
		{"float", []byte{0xca, 0, 0, 0, 0}, ""},
		{"empty body", nil, ""},
		{"trailing bytes", []byte{0x01, 0x02}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &caveat.Unregistered{Type: caveat.TypeUserDefinedMin + 7, Body: tc.body}
			js, err := json.Marshal(u)
			if tc.want == "" {
				if err == nil {
					t.Errorf("rendered %s, want an error", js)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(js) != tc.want {
				t.Errorf("JSON %s, want %s", js, tc.want)
			}
		})
	}
}

func TestUnregisteredFromJSON(t *testing.T) {
	var u caveat.Unregistered
	err := json.Unmarshal([]byte(`{"a":1}`), &u)
	if err == nil || !strings.Contains(err.Error(), "cannot convert unregistered caveats from JSON") {
		t.Errorf("Unmarshal = %v, want the unregistered-JSON error", err)
	}
	for _, js := range []string{
		`[{"type":"281474976710663","body":{"a":31}}]`,
		`[{"type":"18446744073709551614","body":null}]`,
	} {
		_, err := caveat.ParseJSON([]byte(js))
		if err == nil || !strings.Contains(err.Error(), "cannot convert unregistered caveats from JSON") {
			t.Errorf("ParseJSON(%s) = %v, want the unregistered-JSON error", js, err)
		}
	}
	if _, err := caveat.ParseJSON([]byte(`[{"type":"NoSuchCaveat","body":{}}]`)); err == nil {
		t.Error("ParseJSON accepted an unknown type name")
	}
}

// A set holding an unregistered caveat renders it generically, without the
// display-only error fields that mark an undecodable registered caveat.
func TestCaveatSetJSONWithUnregistered(t *testing.T) {
	set, err := caveat.ParseCaveatSet([]byte{0x92, 0xcf, 0, 1, 0, 0, 0, 0, 0x30, 0x39, 0x82, 0xa1, 'b', 0x05, 0xa1, 'a', 0x01})
	if err != nil {
		t.Fatal(err)
	}
	js, err := set.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"type":"281474976723001","body":{"a":1,"b":5}}]`; string(js) != want {
		t.Errorf("JSON %s, want %s", js, want)
	}
	if _, err := caveat.ParseJSON(js); err == nil {
		t.Error("the rendered JSON parsed back")
	}
	var denied *caveat.DeniedError
	if err := set.Clear(unregAccess{}); !errors.As(err, &denied) || !errors.Is(err, caveat.ErrBadCaveat) {
		t.Errorf("Clear = %v, want a DeniedError wrapping ErrBadCaveat", err)
	}
}

// unregAccess is an access that no registered caveat understands.
type unregAccess struct{}

func (unregAccess) Now() time.Time  { return time.Unix(1750000000, 0) }
func (unregAccess) Validate() error { return nil }
