package msgpack

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/internal/vectors"
)

func TestDecodeAny(t *testing.T) {
	tests := []struct {
		name, hex string
		json      string // "" means an error is expected
	}{
		{"nil", "c0", `null`},
		{"bools", "92c2c3", `[false,true]`},
		{"fixint", "7b", `123`},
		{"uint64 above 2^63", "cfffffffffffffffff", `18446744073709551615`},
		{"negative fixint", "ff", `-1`},
		{"int8", "d085", `-123`},
		{"int64 min", "d38000000000000000", `-9223372036854775808`},
		{"lenient signed code for positive", "d005", `5`},
		{"str", "a3666f6f", `"foo"`},
		{"str8", "d903666f6f", `"foo"`},
		{"bin as base64", "c403010203", `"AQID"`},
		{"empty bin", "c400", `""`},
		{"string map", "82a162c3a163c2", `{"b":true,"c":false}`},
		{"int keys", "8301a161ff a162cfffffffffffffffff a163", `{"-1":"b","1":"a","18446744073709551615":"c"}`},
		{"bin key", "81c4010100", `{"AQ==":0}`},
		{"nil and bool keys", "82c000c301", `{"null":0,"true":1}`},
		{"array key", "81920102a178", `{"[1,2]":"x"}`},
		{"map key", "8181a161a162a178", `{"{\"a\":\"b\"}":"x"}`},
		{"nested", "92940d9292059181a277671f000492010208", `[[13,[[5,[{"wg":31}]],0],4,[1,2]],8]`},
		{"generator Struct", "98a3666f6fd0857bc40301020383a161a161a162a162a163a16383011f021f031f83a1611fa1621fa1631f83a1611fa1621fa1631f",
			`["foo",-123,123,"AQID",{"a":"a","b":"b","c":"c"},{"1":31,"2":31,"3":31},{"a":31,"b":31,"c":31},{"a":31,"b":31,"c":31}]`},
		{"duplicate key", "82a16101a16102", ""},
		{"keys that render alike", "8201 00 a131 00", ""},
		{"float", "ca00000000", ""},
		{"ext", "d40100", ""},
		{"truncated array", "93 01 02", ""},
		{"truncated str", "a3 6161", ""},
		{"trailing bytes", "0101", ""},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			v, err := DecodeAny(b)
			if tc.json == "" {
				if err == nil {
					t.Fatalf("decoded %#v, want an error", v)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(js) != tc.json {
				t.Errorf("JSON %s, want %s", js, tc.json)
			}
		})
	}
}

func TestDecodeAnyDepth(t *testing.T) {
	nested := func(n int) []byte { // n arrays, each holding the next
		b := bytes.Repeat([]byte{0x91}, n-1)
		return append(b, 0x90)
	}
	if _, err := DecodeAny(nested(MaxDepth + 1)); err != nil {
		t.Errorf("%d levels: %v", MaxDepth+1, err)
	}
	if _, err := DecodeAny(nested(MaxDepth + 2)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("%d levels: %v, want ErrTooDeep", MaxDepth+2, err)
	}
	// Keys count as a level, as they do for Skip.
	deepKey := append([]byte{0x81}, nested(MaxDepth+1)...)
	deepKey = append(deepKey, 0x00)
	if _, err := DecodeAny(deepKey); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep key: %v, want ErrTooDeep", err)
	}
	r := NewReader(deepKey)
	if err := r.Skip(); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Skip disagrees: %v", err)
	}
}

func TestReadAnyLeavesReaderOnError(t *testing.T) {
	r := NewReader([]byte{0x92, 0x01, 0xca})
	if _, err := r.ReadAny(); err == nil {
		t.Fatal("want an error")
	}
	if r.Offset() != 0 {
		t.Errorf("offset %d after a failed ReadAny, want 0", r.Offset())
	}
	s := NewStrictReader([]byte{0x91, 0xcc, 0x05})
	if _, err := s.ReadAny(); !errors.Is(err, ErrNonCanonical) {
		t.Errorf("strict ReadAny of a wide integer: %v", err)
	}
}

// appendAny re-encodes what ReadAny returns, for values without maps (whose
// key types ReadAny does not keep).
func appendAny(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return AppendNil(b), true
	case bool:
		return AppendBool(b, v), true
	case uint64:
		return AppendUint(b, v), true
	case int64:
		return AppendInt(b, v), true
	case string:
		return AppendStr(b, v), true
	case []byte:
		return AppendBin(b, v), true
	case []any:
		b = AppendArrayHeader(b, len(v))
		for _, e := range v {
			var ok bool
			if b, ok = appendAny(b, e); !ok {
				return nil, false
			}
		}
		return b, true
	}
	return nil, false
}

// FuzzAnyDecode: DecodeAny never panics, agrees with Skip on what is well
// formed (apart from duplicate keys, which Skip does not look for), always
// yields something encoding/json can render, and, for canonical input
// without maps, yields a value that re-encodes to the input.
func FuzzAnyDecode(f *testing.F) {
	for _, h := range []string{"c0", "92c2c3", "cfffffffffffffffff", "d38000000000000000", "d005",
		"d903666f6f", "c403010203", "8301a161ffa162cfffffffffffffffffa163", "81920102a178",
		"82a16101a16102", "ca00000000", strings.Repeat("91", 40) + "90"} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	var encodings []struct {
		BodyHex string `json:"body_hex"`
	}
	vectors.Section(f, "caveat_encodings", &encodings)
	for _, e := range encodings {
		f.Add(vectors.Hex(f, e.BodyHex))
	}
	var lib struct {
		Caveats map[string]struct {
			BodyHex string `json:"body_hex"`
		} `json:"caveats"`
	}
	vectors.Section(f, "library_vectors_expected", &lib)
	for _, c := range lib.Caveats {
		f.Add(vectors.Hex(f, c.BodyHex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeAny(b)
		r := NewReader(b)
		skipErr := r.Skip()
		if skipErr == nil {
			skipErr = r.ExpectEnd()
		}
		if err == nil && skipErr != nil {
			t.Fatalf("DecodeAny accepts %x, Skip does not: %v", b, skipErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			// Valid MessagePack that DecodeAny refuses to display: two keys
			// that render alike, or a composite key too long to render.
			if skipErr == nil && !strings.Contains(err.Error(), "duplicate map key") &&
				!strings.Contains(err.Error(), "map key of") {
				t.Fatalf("Skip accepts %x, DecodeAny does not: %v", b, err)
			}
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("JSON of %x: %v", b, err)
		}
		s := NewStrictReader(b)
		sv, err := s.ReadAny()
		if err != nil || !s.Done() {
			return
		}
		if enc, ok := appendAny(nil, sv); ok && !bytes.Equal(enc, b) {
			t.Fatalf("canonical %x decodes to %#v, which encodes as %x", b, sv, enc)
		}
	})
}

// TestNestedMapKeysBounded: maps used as keys of maps used as keys… are
// rendered with their JSON text, which doubles at each level; the length
// limit keeps a 30-level input from taking minutes (found by FuzzAnyDecode).
func TestNestedMapKeysBounded(t *testing.T) {
	b := []byte{0x81, 0xa1, 'k', 0xa1, 'v'} // {"k": "v"}
	for i := 0; i < 30; i++ {
		// {<previous>: "v"}
		b = append(append([]byte{0x81}, b...), 0xa1, 'v')
	}
	v, err := DecodeAny(b)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "map key of") {
		t.Fatalf("DecodeAny = %v, %v; want the key length error", v != nil, err)
	}
	// A few levels are still rendered.
	short := []byte{0x81, 0x81, 0x81, 0xa1, 'k', 0xa1, 'v', 0xa1, 'v', 0xa1, 'v'}
	if _, err := DecodeAny(short); err != nil {
		t.Fatalf("three levels: %v", err)
	}
}
