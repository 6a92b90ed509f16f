package caveat

import (
	"crypto/rand"
	"fmt"
)

// SigningKey is a root key: the HMAC key that mints permission tokens and
// verifies them. Any length is accepted; caveat generates 32 bytes.
type SigningKey []byte

// EncryptionKey is the 32-byte ChaCha20-Poly1305 key shared by a first party
// (or attenuator) and a third party, used to seal tickets (spec §4.3).
type EncryptionKey [32]byte

// NewSigningKey returns 32 random bytes.
func NewSigningKey() SigningKey {
	k := make(SigningKey, 32)
	rand.Read(k)
	return k
}

// NewEncryptionKey returns a random encryption key.
func NewEncryptionKey() EncryptionKey {
	var k EncryptionKey
	rand.Read(k[:])
	return k
}

// ParseEncryptionKey accepts exactly 32 bytes.
func ParseEncryptionKey(b []byte) (EncryptionKey, error) {
	var k EncryptionKey
	if len(b) != len(k) {
		return k, fmt.Errorf("encryption key must be 32 bytes, got %d", len(b))
	}
	copy(k[:], b)
	return k, nil
}

// String redacts the key, so that it cannot end up in a log line by accident.
func (k SigningKey) String() string { return "SigningKey(redacted)" }

// GoString redacts the key for %#v.
func (k SigningKey) GoString() string { return k.String() }

// String redacts the key.
func (k EncryptionKey) String() string { return "EncryptionKey(redacted)" }

// GoString redacts the key for %#v.
func (k EncryptionKey) GoString() string { return k.String() }
