package msgpack

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The examples of spec §2.2.
func TestCanonicalIntegers(t *testing.T) {
	tests := []struct {
		v    int64
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "cc80"}, {1234, "cd04d2"}, {0xffff, "cdffff"},
		{1700000000, "ce6553f100"}, {4102444800, "cef4865700"}, {1 << 40, "cf0000010000000000"},
		{-1, "ff"}, {-32, "e0"}, {-33, "d0df"}, {-128, "d080"}, {-129, "d1ff7f"},
		{-32768, "d18000"}, {-32769, "d2ffff7fff"}, {-1 << 31, "d280000000"}, {-1<<31 - 1, "d3ffffffff7fffffff"},
	}
	for _, tc := range tests {
		got := hex.EncodeToString(AppendInt(nil, tc.v))
		if got != tc.want {
			t.Errorf("AppendInt(%d) = %s, want %s", tc.v, got, tc.want)
		}
		r := NewStrictReader(AppendInt(nil, tc.v))
		v, err := r.ReadInt()
		if err != nil || v != tc.v || !r.Done() {
			t.Errorf("ReadInt(%s) = %d, %v", tc.want, v, err)
		}
	}
	if got := hex.EncodeToString(AppendUint(nil, 1<<64-1)); got != "cfffffffffffffffff" {
		t.Errorf("max uint64 = %s", got)
	}
}

func TestStrictRejectsNonCanonical(t *testing.T) {
	tests := []struct {
		name, hex string
		read      func(*Reader) error
	}{
		{"uint8 for fixint", "cc05", func(r *Reader) error { _, err := r.ReadUint(); return err }},
		{"uint16 for uint8", "cd00ff", func(r *Reader) error { _, err := r.ReadUint(); return err }},
		{"uint64 for uint32", "cf00000000ffffffff", func(r *Reader) error { _, err := r.ReadUint(); return err }},
		{"signed code for positive", "d001", func(r *Reader) error { _, err := r.ReadUint(); return err }},
		{"int64 for positive int", "d30000000000000001", func(r *Reader) error { _, err := r.ReadInt(); return err }},
		{"int8 for negative fixint", "d0ff", func(r *Reader) error { _, err := r.ReadInt(); return err }},
		{"int16 for int8", "d1ff80", func(r *Reader) error { _, err := r.ReadInt(); return err }},
		{"str8 for fixstr", "d903616263", func(r *Reader) error { _, err := r.ReadStr(); return err }},
		{"bin for str", "c403616263", func(r *Reader) error { _, err := r.ReadStr(); return err }},
		{"str for bin", "a3616263", func(r *Reader) error { _, err := r.ReadBin(); return err }},
		{"bin16 for bin8", "c5000161", func(r *Reader) error { _, err := r.ReadBin(); return err }},
		{"array16 for fixarray", "dc000100", func(r *Reader) error { _, err := r.ReadArrayHeader(); return err }},
		{"map16 for fixmap", "de00010000", func(r *Reader) error { _, err := r.ReadMapHeader(); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tc.hex)
			strict := NewStrictReader(b)
			if err := tc.read(&strict); !errors.Is(err, ErrNonCanonical) {
				t.Errorf("strict: err = %v, want ErrNonCanonical", err)
			}
			if strict.Offset() != 0 {
				t.Errorf("strict reader consumed %d bytes on error", strict.Offset())
			}
			lenient := NewReader(b)
			if err := tc.read(&lenient); err != nil {
				t.Errorf("lenient: %v", err)
			}
		})
	}
}

func TestNilAndEmptyDiffer(t *testing.T) {
	if got := hex.EncodeToString(AppendBin(nil, nil)); got != "c0" {
		t.Errorf("nil bin = %s", got)
	}
	if got := hex.EncodeToString(AppendBin(nil, []byte{})); got != "c400" {
		t.Errorf("empty bin = %s", got)
	}
	r := NewStrictReader([]byte{0xc0, 0xc4, 0x00})
	a, err1 := r.ReadBinOrNil()
	b, err2 := r.ReadBinOrNil()
	if err1 != nil || err2 != nil || a != nil || b == nil || len(b) != 0 {
		t.Errorf("nil/empty: %v %v %v %v", a, b, err1, err2)
	}
}

func TestLengths(t *testing.T) {
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		b := AppendStr(nil, s)
		r := NewStrictReader(b)
		got, err := r.ReadStr()
		if err != nil || string(got) != s || !r.Done() {
			t.Errorf("str of %d: %v", n, err)
		}
		b = AppendBin(nil, []byte(s))
		r = NewStrictReader(b)
		gotb, err := r.ReadBin()
		if err != nil || !bytes.Equal(gotb, []byte(s)) || !r.Done() {
			t.Errorf("bin of %d: %v", n, err)
		}
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		b := AppendArrayHeader(nil, n)
		b = append(b, bytes.Repeat([]byte{0xc0}, n)...)
		r := NewStrictReader(b)
		got, err := r.ReadArrayHeader()
		if err != nil || got != n {
			t.Errorf("array of %d: %d %v", n, got, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, h := range []string{"", "cd00", "a5616263", "dc00", "dd0000ffff", "92c4", "c1", "ca00000000", "de0005"} {
		b, _ := hex.DecodeString(h)
		r := NewReader(b)
		if err := r.Skip(); err == nil {
			t.Errorf("Skip(%q) accepted", h)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("Skip(%q): %v does not wrap ErrMalformed", h, err)
		}
	}
	deep := append(bytes.Repeat([]byte{0x91}, MaxDepth+5), 0xc0)
	r := NewReader(deep)
	if err := r.Skip(); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep nesting: %v", err)
	}
}

// FuzzReader: skipping never panics, and a value that a strict reader
// accepts as an integer, string or byte string re-encodes to its own bytes.
func FuzzReader(f *testing.F) {
	for _, h := range []string{"00", "cc80", "cd04d2", "cf0000010000000000", "ff", "d0df", "a3616263",
		"d92061616161616161616161616161616161616161616161616161616161616161", "c403010203", "c0",
		"9204920102", "82a162c3a163c2", "dc0010000000000000000000000000000000"} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		r.Skip()
		s := NewStrictReader(b)
		switch s.Peek() {
		case KindUint:
			if v, err := s.ReadUint(); err == nil && !bytes.Equal(AppendUint(nil, v), b[:s.Offset()]) {
				t.Fatalf("uint %d from %x re-encodes differently", v, b)
			}
		case KindInt:
			if v, err := s.ReadInt(); err == nil && !bytes.Equal(AppendInt(nil, v), b[:s.Offset()]) {
				t.Fatalf("int %d from %x re-encodes differently", v, b)
			}
		case KindStr:
			if v, err := s.ReadStr(); err == nil && !bytes.Equal(AppendStrBytes(nil, v), b[:s.Offset()]) {
				t.Fatalf("str from %x re-encodes differently", b)
			}
		case KindBin:
			if v, err := s.ReadBin(); err == nil && !bytes.Equal(AppendBin(nil, v), b[:s.Offset()]) {
				t.Fatalf("bin from %x re-encodes differently", b)
			}
		}
	})
}
