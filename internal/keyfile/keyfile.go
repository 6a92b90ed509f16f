// Package keyfile is the text form of caveat's key files — the server's
// master key and the root and third-party keys the CLI reads: the key bytes
// as standard padded base64 on one line. It lives beside the two readers of
// key files rather than in the token library, which does no I/O and has no
// opinion on how keys are stored.
package keyfile

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Decode decodes a key file's contents: standard padded base64 of the key
// bytes, surrounding whitespace ignored. The error never quotes the input,
// which is a secret even when it is malformed.
func Decode(text []byte) ([]byte, error) {
	s := strings.TrimSpace(string(text))
	if s == "" {
		return nil, fmt.Errorf("key is empty")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key is not standard padded base64 (%d characters)", len(s))
	}
	return b, nil
}

// Encode encodes key bytes for a key file: standard padded base64 and a
// newline.
func Encode(k []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(k) + "\n")
}
