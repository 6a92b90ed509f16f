// Package keyring holds a caveat server's keys: the organizations' root
// keys, sealed under the master key in the store, and the keys derived
// from the master key. The authority verifies and mints with it; the
// identity service mints session tokens and checks session secrets with
// it; neither needs the other for that.
//
// # Keys
//
// The master key (32 bytes, from a file the operator keeps) never signs
// anything itself. Every other key comes from it:
//
//   - each organization's root signing keys are random, and stored only
//     sealed: XChaCha20-Poly1305 under a key derived from the master key,
//     with the organization id and key id as associated data, so that a
//     sealed key moved to another organization or key id does not open;
//   - the session signing key, which mints the short-lived session tokens
//     of logged-in users, and the login ticket key, which seals the tickets
//     of the login third-party caveat for the identity service, are derived
//     from the master key with HKDF-SHA256, so that every replica sharing
//     the master key has them without storing them anywhere.
package keyring

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/store"
	"golang.org/x/crypto/chacha20poly1305"
)

// MasterKey is the server's master key. It is never logged or printed.
type MasterKey [32]byte

// String keeps the key out of logs and error messages.
func (MasterKey) String() string { return "[master key]" }

// GoString keeps the key out of %#v.
func (MasterKey) GoString() string { return "[master key]" }

// ParseMasterKey accepts exactly 32 bytes.
func ParseMasterKey(b []byte) (MasterKey, error) {
	var k MasterKey
	if len(b) != len(k) {
		return k, fmt.Errorf("master key must be 32 bytes, got %d", len(b))
	}
	copy(k[:], b)
	return k, nil
}

// NewMasterKey returns a random master key.
func NewMasterKey() MasterKey {
	var k MasterKey
	rand.Read(k[:])
	return k
}

// The HKDF labels of the keys derived from the master key. Changing one
// changes the key: they are part of the format of a deployment.
const (
	labelSealing      = "caveat root key sealing v1"
	labelSession      = "caveat session signing key v1"
	labelSessionKID   = "caveat session key id v1"
	labelLoginTickets = "caveat login ticket key v1"
	sealAAD           = "caveat sealed root key v1"
)

func (k MasterKey) derive(label string, n int) []byte {
	b, err := hkdf.Key(sha256.New, k[:], nil, label, n)
	if err != nil { // only for n > 255*32
		panic("keyring: hkdf: " + err.Error())
	}
	return b
}

// KIDLen is the length of the key ids that Rotate assigns.
const KIDLen = 16

// Errors of key lookup. They wrap caveat.ErrInvalid when a token's key id
// is at fault, so that verification failures stay in one class.
var (
	// ErrUnknownKey: no key has the token's key id.
	ErrUnknownKey = fmt.Errorf("%w: unknown key id", caveat.ErrInvalid)
	// ErrRetiredKey: the token's key has been retired.
	ErrRetiredKey = fmt.Errorf("%w: key retired", caveat.ErrInvalid)
)

// Keyring opens the organizations' root keys and holds the keys derived
// from the master key. It caches opened keys for CacheTTL, so that
// verification costs no database round trip; a retirement therefore
// reaches every replica within CacheTTL.
type Keyring struct {
	store   store.RootKeys
	now     func() time.Time
	aead    sealer
	session caveat.SigningKey
	sesKID  []byte
	secrets []byte // the key of the session secrets
	tickets caveat.EncryptionKey

	// CacheTTL bounds how long an opened key is used without looking at
	// the store again. It is read only by lookups, so set it before use.
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]cachedKey // by key id
}

type cachedKey struct {
	key     caveat.SigningKey
	orgID   uint64
	fetched time.Time
}

// maxCachedKeys bounds the cache; when it is full, it is emptied.
const maxCachedKeys = 4096

type sealer interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
}

// NewKeyring returns a keyring over the store's root keys. now is the
// clock for creation times and the cache.
func NewKeyring(master MasterKey, keys store.RootKeys, now func() time.Time) *Keyring {
	aead, err := chacha20poly1305.NewX(master.derive(labelSealing, chacha20poly1305.KeySize))
	if err != nil { // only for a key of the wrong size
		panic("keyring: " + err.Error())
	}
	var tickets caveat.EncryptionKey
	copy(tickets[:], master.derive(labelLoginTickets, len(tickets)))
	return &Keyring{
		store:    keys,
		now:      now,
		aead:     aead,
		session:  master.derive(labelSession, 32),
		sesKID:   master.derive(labelSessionKID, KIDLen),
		secrets:  master.derive(labelSessionSecrets, 32),
		tickets:  tickets,
		CacheTTL: time.Minute,
		cache:    map[string]cachedKey{},
	}
}

// LoginTicketKey is the key that seals the tickets of the login third-party
// caveat: the authority seals with it, the identity service opens with it.
func (kr *Keyring) LoginTicketKey() caveat.EncryptionKey { return kr.tickets }

// SessionKey returns the key id and key that mint session tokens.
func (kr *Keyring) SessionKey() (kid []byte, key caveat.SigningKey) {
	return kr.sesKID, kr.session
}

// IsSessionKID reports whether kid is the session key's id.
func (kr *Keyring) IsSessionKID(kid []byte) bool {
	return subtle.ConstantTimeCompare(kid, kr.sesKID) == 1
}

func sealAD(orgID uint64, kid []byte) []byte {
	ad := append([]byte(sealAAD), 0)
	ad = binary.BigEndian.AppendUint64(ad, orgID)
	return append(ad, kid...)
}

// seal encrypts a root key for the store: nonce ‖ ciphertext.
func (kr *Keyring) seal(orgID uint64, kid []byte, key caveat.SigningKey) store.SealedKey {
	nonce := make([]byte, kr.aead.NonceSize(), kr.aead.NonceSize()+len(key)+16)
	rand.Read(nonce)
	return kr.aead.Seal(nonce, nonce, key, sealAD(orgID, kid))
}

// open decrypts a sealed root key. The error never includes key material.
func (kr *Keyring) open(k store.RootKey) (caveat.SigningKey, error) {
	n := kr.aead.NonceSize()
	if len(k.Sealed) < n {
		return nil, fmt.Errorf("sealed key %x is too short", k.KID)
	}
	key, err := kr.aead.Open(nil, k.Sealed[:n], k.Sealed[n:], sealAD(k.OrgID, k.KID))
	if err != nil {
		return nil, fmt.Errorf("sealed key %x does not open under this master key", k.KID)
	}
	return key, nil
}

// Rotate gives the organization a new active root key (its first key, the
// first time); the previous active key keeps verifying until retired. It
// returns the new key's id.
func (kr *Keyring) Rotate(ctx context.Context, orgID uint64) ([]byte, error) {
	kid := make([]byte, KIDLen)
	rand.Read(kid)
	key := caveat.NewSigningKey()
	_, err := kr.store.RotateRootKey(ctx, store.NewRootKey{
		OrgID:     orgID,
		KID:       kid,
		Sealed:    kr.seal(orgID, kid, key),
		CreatedAt: kr.now(),
	})
	if err != nil {
		return nil, fmt.Errorf("rotate root key of organization %d: %w", orgID, err)
	}
	kr.remember(kid, key, orgID)
	return kid, nil
}

// Retire makes a rotated key stop verifying. Other replicas stop using it
// within CacheTTL.
func (kr *Keyring) Retire(ctx context.Context, kid []byte) error {
	if _, err := kr.store.RetireRootKey(ctx, kid, kr.now()); err != nil {
		return fmt.Errorf("retire root key %x: %w", kid, err)
	}
	kr.mu.Lock()
	delete(kr.cache, string(kid))
	kr.mu.Unlock()
	return nil
}

// MintingKey returns the organization's active key and its id.
func (kr *Keyring) MintingKey(ctx context.Context, orgID uint64) (kid []byte, key caveat.SigningKey, err error) {
	rk, err := kr.store.ActiveRootKey(ctx, orgID)
	if err != nil {
		return nil, nil, fmt.Errorf("root key of organization %d: %w", orgID, err)
	}
	if key, ok := kr.cached(rk.KID); ok {
		return rk.KID, key.key, nil
	}
	key, err = kr.open(rk)
	if err != nil {
		return nil, nil, err
	}
	kr.remember(rk.KID, key, orgID)
	return rk.KID, key, nil
}

// Lookup returns the key that verifies tokens with this key id, and the
// organization it belongs to (0 for the session key). An unknown key id is
// ErrUnknownKey and a retired key ErrRetiredKey.
func (kr *Keyring) Lookup(ctx context.Context, kid []byte) (caveat.SigningKey, uint64, error) {
	if kr.IsSessionKID(kid) {
		return kr.session, 0, nil
	}
	if c, ok := kr.cached(kid); ok {
		return c.key, c.orgID, nil
	}
	rk, err := kr.store.GetRootKey(ctx, kid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, ErrUnknownKey
	}
	if err != nil {
		return nil, 0, fmt.Errorf("root key %x: %w", kid, err)
	}
	if !rk.State.Verifies() {
		return nil, 0, ErrRetiredKey
	}
	key, err := kr.open(rk)
	if err != nil {
		return nil, 0, err
	}
	kr.remember(kid, key, rk.OrgID)
	return key, rk.OrgID, nil
}

// KeyFunc adapts Lookup for caveat.Bundle.Verify.
func (kr *Keyring) KeyFunc(ctx context.Context) caveat.KeyFunc {
	return func(kid []byte) (caveat.SigningKey, error) {
		key, _, err := kr.Lookup(ctx, kid)
		return key, err
	}
}

func (kr *Keyring) cached(kid []byte) (cachedKey, bool) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	c, ok := kr.cache[string(kid)]
	if !ok || kr.now().Sub(c.fetched) >= kr.CacheTTL {
		return cachedKey{}, false
	}
	return c, true
}

func (kr *Keyring) remember(kid []byte, key caveat.SigningKey, orgID uint64) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if len(kr.cache) >= maxCachedKeys {
		clear(kr.cache)
	}
	kr.cache[string(kid)] = cachedKey{key: key, orgID: orgID, fetched: kr.now()}
}
