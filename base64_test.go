package caveat

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// checkBase64 requires decodeStdBase64 to do exactly what
// base64.StdEncoding.Decode does with src: the same bytes, count and error.
func checkBase64(t *testing.T, src []byte) {
	t.Helper()
	n := base64.StdEncoding.DecodedLen(len(src))
	want, got := make([]byte, n), make([]byte, n)
	wn, werr := base64.StdEncoding.Decode(want, src)
	gn, gerr := decodeStdBase64(got, src)
	if wn != gn || !bytes.Equal(want[:wn], got[:gn]) || (werr == nil) != (gerr == nil) ||
		(werr != nil && werr.Error() != gerr.Error()) {
		t.Fatalf("%q: decoded %d %x, %v; the standard library %d %x, %v", src, gn, got[:gn], gerr, wn, want[:wn], werr)
	}
}

func TestDecodeStdBase64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 300 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		enc := []byte(base64.StdEncoding.EncodeToString(b))
		checkBase64(t, enc)
		if len(enc) == 0 {
			continue
		}
		// One character changed, dropped, or a line break or an
		// unpadded end, anywhere.
		for _, i := range []int{0, len(enc) / 3, len(enc) / 2, len(enc) - 5, len(enc) - 1} {
			i = max(i, 0)
			for _, c := range []byte{'\n', '\r', '=', '-', '_', ' ', 0x80, 'A'} {
				mut := bytes.Clone(enc)
				mut[i] = c
				checkBase64(t, mut)
				checkBase64(t, append(bytes.Clone(enc[:i]), append([]byte{c}, enc[i:]...)...))
			}
			checkBase64(t, append(bytes.Clone(enc[:i]), enc[i+1:]...))
		}
		checkBase64(t, bytes.TrimRight(enc, "="))
	}
	// Non-zero trailing bits are accepted, as StdEncoding (not Strict) does.
	checkBase64(t, []byte("AAAAAAAAAAAAAAAAAB=="))
}

func FuzzDecodeStdBase64(f *testing.F) {
	for _, s := range []string{"", "QQ==", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", "QUJD\nREVG", "QUJDREVGR0hJ*ktM"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkBase64(t, src) })
}
