package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashPassword(t *testing.T) {
	h1, err := HashPassword("correct horse", cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h1) {
		t.Errorf("hash %q is not in the PHC form", h1)
	}
	h2, _ := HashPassword("correct horse", cheapArgon2)
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"correct horse ", false},
		{"", false},
	} {
		ok, err := CheckPassword(h1, tc.password)
		if err != nil || ok != tc.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tc.password, ok, err, tc.want)
		}
	}
}

// A hash keeps working after the parameters for new hashes change.
func TestCheckPasswordUsesTheHashParameters(t *testing.T) {
	p := Argon2Params{Memory: 256, Iterations: 3, Parallelism: 2, SaltLen: 8, KeyLen: 16}
	h, err := HashPassword("pw", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=256,t=3,p=2$") {
		t.Errorf("hash %q does not record its parameters", h)
	}
	if ok, err := CheckPassword(h, "pw"); !ok || err != nil {
		t.Errorf("CheckPassword = %v, %v", ok, err)
	}
}

// Hashes made by the reference C implementation (libargon2's
// argon2id_hash_encoded, password "correct horse", salt "saltsaltsaltsalt"):
// ours must read them and, from the same salt, write them byte for byte.
func TestPasswordReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		p    Argon2Params
		hash string
	}{
		{cheapArgon2, "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$rAjuexKlLdAHLvqk7TeeiWZjW4OPoRGwldJXdHbTuKI"},
		{DefaultArgon2Params, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AdweBLwcflnNX2HVW8i1Mtu7frrn4Ki7h/rYSGuU7Is"},
	} {
		if ok, err := CheckPassword(tc.hash, "correct horse"); !ok || err != nil {
			t.Errorf("CheckPassword(%s) = %v, %v", tc.hash, ok, err)
		}
		if ok, _ := CheckPassword(tc.hash, "correct horses"); ok {
			t.Errorf("CheckPassword(%s) accepts another password", tc.hash)
		}
		salt := []byte("saltsaltsaltsalt")
		key := argon2.IDKey([]byte("correct horse"), salt, tc.p.Iterations, tc.p.Memory, tc.p.Parallelism, tc.p.KeyLen)
		if got := encodeHash(tc.p, salt, key); got != tc.hash {
			t.Errorf("encodeHash = %s, want %s", got, tc.hash)
		}
	}
}

func TestCheckPasswordRefusesBadHashes(t *testing.T) {
	good, _ := HashPassword("pw", cheapArgon2)
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuuMk4Yy0I0p4lKQ0Jc6y4f5zj0bC7y5Jm",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"version 16":     strings.Replace(good, "v=19", "v=16", 1),
		"params order":   strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		"params missing": strings.Replace(good, "m=64,t=1,p=1", "m=64,t=1", 1),
		"huge memory":    strings.Replace(good, "m=64", "m=4294967295", 1),
		"zero time":      strings.Replace(good, "t=1", "t=0", 1),
		"lanes 300":      strings.Replace(good, "p=1", "p=300", 1),
		"salt not b64":   strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!!", parts[5]}, "$"),
		"padded hash":    good + "=",
		"short hash":     strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"extra field":    good + "$x",
	} {
		ok, err := CheckPassword(h, "pw")
		if ok || !errors.Is(err, ErrBadHash) {
			t.Errorf("%s: CheckPassword = %v, %v; want ErrBadHash", name, ok, err)
		}
	}
}

func TestArgon2ParamsValidate(t *testing.T) {
	if err := DefaultArgon2Params.Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
	for name, p := range map[string]Argon2Params{
		"zero":          {},
		"memory < 8p":   {Memory: 15, Iterations: 1, Parallelism: 2, SaltLen: 16, KeyLen: 32},
		"short salt":    {Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 4, KeyLen: 32},
		"short key":     {Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 8},
		"no iterations": {Memory: 64, Parallelism: 1, SaltLen: 16, KeyLen: 32},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
		if _, err := HashPassword("pw", p); err == nil {
			t.Errorf("%s: HashPassword accepted it", name)
		}
	}
}
