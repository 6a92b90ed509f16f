package wire

import (
	"encoding/hex"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendPacked(t *testing.T) {
	for _, tc := range []struct {
		typ  uint64
		body string
		want string
	}{
		{4, "92 00 01", "92 04 92 00 01"},
		{1 << 48, "c0", "92 cf0001000000000000 c0"},
		{200, "", "92 ccc8"},
	} {
		got := AppendPacked([]byte{0xff}, tc.typ, mustHex(t, tc.body))
		if want := mustHex(t, "ff"+tc.want); string(got) != string(want) {
			t.Errorf("type %d: %x, want %x", tc.typ, got, want)
		}
	}
}

func TestReadMask(t *testing.T) {
	for in, want := range map[string]uint16{"00": 0, "1f": 0x1f, "cd ffff": 0xffff, "cc 80": 0x80} {
		if got, err := ReadMask(mustHex(t, in)); err != nil || got != want {
			t.Errorf("ReadMask(%s) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, in := range []string{
		"ce 00010000", // 17 bits
		"cc 01",       // not the shortest form
		"01 01",       // trailing data
		"a1 72",       // a string
		"",
	} {
		if got, err := ReadMask(mustHex(t, in)); err == nil {
			t.Errorf("ReadMask(%s) = %#x, want an error", in, got)
		}
	}
}

func TestEntries(t *testing.T) {
	b := mustHex(t, "83 a0 01 a1 61 03 a2 6161 1f")
	if err := CanonicalSet(b, true); err != nil {
		t.Fatal(err)
	}
	var it Entries
	if err := it.Init(b, true); err != nil || it.IsNil() || it.Len() != 3 {
		t.Fatalf("Init: %v, nil %v, len %d", err, it.IsNil(), it.Len())
	}
	var keys []string
	for it.More() {
		var e Entry
		if err := it.Next(&e); err != nil {
			t.Fatal(err)
		}
		if e.Zero() != (len(keys) == 0) {
			t.Errorf("entry %d: Zero %v", len(keys), e.Zero())
		}
		keys = append(keys, string(e.S))
	}
	if strings.Join(keys, ",") != ",a,aa" || it.End() != nil {
		t.Errorf("keys %q", keys)
	}
	if err := CanonicalSet([]byte{0xc0}, false); err != nil {
		t.Errorf("nil set: %v", err)
	}
	for _, bad := range []string{
		"82 02 01 01 01",     // uint keys out of order
		"82 a162 01 a161 01", // string keys out of order
		"82 a161 01 a161 01", // duplicate
		"81 a161 ce00010000", // mask wider than 16 bits
		"81 c40161 01",       // bin key
		"81 a161 01 00",      // trailing data
		"de0001 a161 01",     // map16 header for one entry
		"81 a161",            // truncated
	} {
		str := !strings.HasPrefix(bad, "82 02")
		if err := CanonicalSet(mustHex(t, bad), str); err == nil {
			t.Errorf("CanonicalSet(%s) accepted", bad)
		}
	}
}
