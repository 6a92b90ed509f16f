package keyfile

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, k := range [][]byte{{0}, bytes.Repeat([]byte{0xff}, 32), []byte("a key of any length")} {
		text := Encode(k)
		if !bytes.HasSuffix(text, []byte("\n")) {
			t.Fatalf("Encode(%x) = %q: want a trailing newline", k, text)
		}
		got, err := Decode(append([]byte("  \n"), text...))
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("Decode(Encode(%x)) = %x, %v", k, got, err)
		}
	}
}

func TestDecodeRejectsWithoutQuoting(t *testing.T) {
	for _, in := range []string{"", " \n", "c2VjcmV0", "c2VjcmV0IQ", "c2VjcmV0IQ==x", "c2VjcmV0IR==", "secret-key_url"} {
		_, err := Decode([]byte(in))
		if in == "c2VjcmV0" {
			if err != nil {
				t.Fatalf("Decode(%q): %v", in, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("Decode(%q) accepted", in)
		}
		if s := strings.TrimSpace(in); s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("Decode(%q) error quotes the key: %v", in, err)
		}
	}
}
