package identity

// Password hashing. Passwords are hashed with argon2id and kept in the PHC
// string form that other argon2 libraries read:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. A hash carries its own
// parameters, so that raising them for new passwords keeps old hashes
// working.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id parameters of new password hashes.
type Argon2Params struct {
	// Memory is in KiB; at least 8 × Parallelism.
	Memory uint32
	// Iterations is the number of passes over the memory; at least 1.
	Iterations uint32
	// Parallelism is the number of lanes; at least 1.
	Parallelism uint8
	// SaltLen and KeyLen are in bytes; at least 8 and 16.
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2Params are OWASP's recommended minimum for argon2id: 19 MiB,
// two passes, one lane, with a 16-byte salt and a 32-byte hash. A hash
// takes some tens of milliseconds on a current server core. Tests use far
// cheaper parameters (Config.Argon2).
var DefaultArgon2Params = Argon2Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Bounds on the parameters that a stored hash may carry, so that a
// corrupted or hostile hash cannot make a login allocate gigabytes.
const (
	maxArgon2Memory     = 1 << 20 // KiB: 1 GiB
	maxArgon2Iterations = 64
	maxArgon2Salt       = 64
	maxArgon2Key        = 64
)

// Validate reports parameters that argon2id cannot use or that are too
// weak to be meant.
func (p Argon2Params) Validate() error {
	switch {
	case p.Parallelism < 1:
		return errors.New("argon2: parallelism must be at least 1")
	case p.Iterations < 1 || p.Iterations > maxArgon2Iterations:
		return fmt.Errorf("argon2: iterations must be 1 to %d", maxArgon2Iterations)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxArgon2Memory:
		return fmt.Errorf("argon2: memory must be 8×parallelism to %d KiB", maxArgon2Memory)
	case p.SaltLen < 8 || p.SaltLen > maxArgon2Salt:
		return fmt.Errorf("argon2: salt length must be 8 to %d bytes", maxArgon2Salt)
	case p.KeyLen < 16 || p.KeyLen > maxArgon2Key:
		return fmt.Errorf("argon2: key length must be 16 to %d bytes", maxArgon2Key)
	}
	return nil
}

// ErrBadHash means a stored password hash is not an argon2id PHC string
// this package can check.
var ErrBadHash = errors.New("not an argon2id password hash")

// HashPassword hashes password with a fresh random salt under p.
func HashPassword(password string, p Argon2Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return encodeHash(p, salt, key), nil
}

func encodeHash(p Argon2Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches hash, comparing in
// constant time. The error wraps ErrBadHash for a hash it cannot read,
// and never quotes the hash.
func CheckPassword(hash, password string) (bool, error) {
	p, salt, key, err := decodeHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// decodeHash parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func decodeHash(s string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: wrong shape", ErrBadHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version", ErrBadHash)
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want m, t and p parameters", ErrBadHash)
	}
	var vals [3]uint64 // m, t, p in this order
	for i, f := range fields {
		name, val, _ := strings.Cut(f, "=")
		want := "mtp"[i : i+1]
		if name != want {
			return p, nil, nil, fmt.Errorf("%w: parameter %d is not %s", ErrBadHash, i+1, want)
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: parameter %s is not a number", ErrBadHash, want)
		}
		vals[i] = n
	}
	m, t, par := vals[0], vals[1], vals[2]
	if par > 255 {
		return p, nil, nil, fmt.Errorf("%w: parallelism out of range", ErrBadHash)
	}
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt is not base64", ErrBadHash)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: hash is not base64", ErrBadHash)
	}
	p = Argon2Params{Memory: uint32(m), Iterations: uint32(t), Parallelism: uint8(par),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.Validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrBadHash, err)
	}
	return p, salt, key, nil
}
