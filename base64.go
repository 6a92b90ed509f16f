package caveat

// Tokens travel as standard padded base64, and decoding it is a fifth of
// parsing a header. decodeStdBase64 decodes the bulk of the text eight
// characters at a time through four tables, one per position in a quantum,
// whose entries are the six bits already in place (so a quantum is three
// loads ORed into the fourth), and leaves the last eight characters, which
// may hold padding, and anything unusual (a line break, a character outside
// the alphabet) to encoding/base64, so that what is accepted and every
// error are exactly the standard library's.

import (
	"encoding/base64"
	"encoding/binary"
)

// base64Bad marks a byte outside the alphabet in the tables.
const base64Bad = 1 << 31

var base64Tables = func() (t [4][256]uint32) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		for c := range t[i] {
			t[i][c] = base64Bad
		}
	}
	for v := range len(alphabet) {
		c := alphabet[v]
		t[0][c], t[1][c], t[2][c], t[3][c] = uint32(v)<<18, uint32(v)<<12, uint32(v)<<6, uint32(v)
	}
	return t
}()

// decodeStdBase64 is base64.StdEncoding.Decode(dst, src): the same output,
// count and errors.
func decodeStdBase64(dst, src []byte) (int, error) {
	t := &base64Tables
	si, di := 0, 0
	// Whole groups of eight characters, while at least eight more follow
	// (the end may hold padding) and dst has room for an 8-byte store.
	for len(src)-si >= 16 && len(dst)-di >= 8 {
		s := src[si : si+8]
		a := t[0][s[0]] | t[1][s[1]] | t[2][s[2]] | t[3][s[3]]
		b := t[0][s[4]] | t[1][s[5]] | t[2][s[6]] | t[3][s[7]]
		if (a|b)&base64Bad != 0 {
			break
		}
		binary.BigEndian.PutUint64(dst[di:], uint64(a)<<40|uint64(b)<<16)
		si, di = si+8, di+6
	}
	n, err := base64.StdEncoding.Decode(dst[di:], src[si:])
	if err != nil {
		// Decode again from the start, for the standard error and offset.
		return base64.StdEncoding.Decode(dst, src)
	}
	return di + n, nil
}
