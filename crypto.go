package caveat

// The token's three primitives (spec §4): HMAC-SHA256 for the caveat chain,
// SHA-256 for binding IDs, and ChaCha20-Poly1305 (IETF, 12-byte nonce
// prefixed to the ciphertext, no associated data) for sealing.
//
// The HMAC is written out over crypto/sha256 instead of crypto/hmac because a
// token verification computes a dozen of them, each with a fresh key, and
// crypto/hmac allocates its state for every key. The construction is RFC 2104
// exactly; TestHMACMatchesStdlib compares it with crypto/hmac.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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

// finalizationKey is the HMAC key that finalises a proof's tail (spec §4.6).
var finalizationKey = []byte("proof-signature-finalization")

// hmacSHA256 returns HMAC-SHA256(key, msg ‖ msg2) without allocating. The
// digest of crypto/sha256.New stays on the stack; writing the pad block and
// the messages to it in turn hashes them where they are, where Sum256 of
// one buffer would need them copied together first.
func hmacSHA256(key, msg, msg2 []byte) [tailSize]byte {
	if counting.Load() {
		opCount.hmac.Add(1)
	}
	var k [hmacBlockSize]byte
	if len(key) > hmacBlockSize {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var pad [hmacBlockSize]byte
	var sum [tailSize]byte
	d := sha256.New()
	xorPad(pad[:], &k, 0x3636363636363636)
	d.Write(pad[:])
	d.Write(msg)
	d.Write(msg2)
	d.Sum(sum[:0])
	d.Reset()
	xorPad(pad[:], &k, 0x5c5c5c5c5c5c5c5c)
	d.Write(pad[:])
	d.Write(sum[:])
	d.Sum(sum[:0])
	return sum
}

// xorPad writes key XOR pad into dst (64 bytes), eight bytes at a time.
func xorPad(dst []byte, key *[hmacBlockSize]byte, pad uint64) {
	_ = dst[hmacBlockSize-1]
	for i := 0; i < hmacBlockSize; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(key[i:])^pad)
	}
}

// finalize turns a proof's last tail into the tail that is encoded.
func finalize(tail [tailSize]byte) [tailSize]byte {
	return hmacSHA256(finalizationKey, tail[:], nil)
}

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

// bindingID is SHA-256 of a tail; a BindToParentToken caveat holds a prefix
// of one of the parent's binding IDs (spec §4.7).
func bindingID(tail [tailSize]byte) [sha256.Size]byte {
	if counting.Load() {
		opCount.hash.Add(1)
	}
	return sha256.Sum256(tail[:])
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
