package caveat

// The token's three primitives (spec §4): HMAC-SHA256 for the caveat chain,
// SHA-256 for binding IDs, and ChaCha20-Poly1305 (IETF, 12-byte nonce
// prefixed to the ciphertext, no associated data) for sealing.
//
// HMAC-SHA256 and SHA-256 are in hmac.go.

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	tailSize      = sha256.Size
	hmacBlockSize = sha256.BlockSize
	sealNonceSize = chacha20poly1305.NonceSize
	sealOverhead  = sealNonceSize + chacha20poly1305.Overhead
)

// opCount counts the primitive operations of this package (HMAC-SHA256,
// ChaCha20-Poly1305 open attempts, SHA-256 of a tail) while counting is set.
// Only tests set it, to hold verification to a count of operations linear in
// the input; otherwise the cost is one predictable branch per operation.
var (
	counting atomic.Bool
	opCount  struct{ hmac, open, hash atomic.Int64 }
)

var errUnseal = errors.New("unseal failed")

// seal encrypts plaintext under key with a fresh random nonce: nonce ‖ ct ‖ tag.
func seal(key []byte, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, sealNonceSize, sealNonceSize+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[:sealNonceSize], plaintext, nil), nil
}

// unseal decrypts a sealed value into dst (appending) and returns it.
func unseal(key []byte, sealed []byte, dst []byte) ([]byte, error) {
	if counting.Load() {
		opCount.open.Add(1)
	}
	if len(sealed) < sealOverhead {
		return nil, errUnseal
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	out, err := aead.Open(dst, sealed[:sealNonceSize], sealed[sealNonceSize:], nil)
	if err != nil {
		return nil, errUnseal
	}
	return out, nil
}

// sealNonce seals with a given nonce; only tests choose nonces.
func sealNonce(key, nonce, plaintext []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, len(nonce)+len(plaintext)+aead.Overhead()), nonce...)
	return aead.Seal(out, nonce, plaintext, nil), nil
}
