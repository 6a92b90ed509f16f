package store

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what the store accepts. They are generous for real use and keep
// a hostile request from storing megabytes in a field.
const (
	MaxEmailLen        = 254  // bytes, the longest address SMTP can carry
	MaxPasswordHashLen = 1024 // bytes of the encoded hash
	MaxNameLen         = 255  // bytes of a slug, a name, a profile or a session id
	MaxKIDLen          = 255  // bytes of a key id
	MaxSealedKeyLen    = 4096 // bytes of a sealed key
)

// checkText wants 1 to max bytes of UTF-8 without NUL (which PostgreSQL
// cannot store in text).
func checkText(field, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty: %w", field, ErrInvalid)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes long, the limit is %d: %w", field, len(s), max, ErrInvalid)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8: %w", field, ErrInvalid)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%s contains NUL: %w", field, ErrInvalid)
	}
	return nil
}

// CheckTime reports, wrapping [ErrInvalid], a timestamp that is zero or
// outside the years 1970 to 9999 that every backend stores exactly.
func CheckTime(field string, t time.Time) error { return checkTime(field, t) }

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s is not set: %w", field, ErrInvalid)
	}
	if y := t.UTC().Year(); y < 1970 || y > 9999 {
		return fmt.Errorf("%s is in the year %d, outside 1970 to 9999: %w", field, y, ErrInvalid)
	}
	return nil
}

// ValidSlug reports whether s may name an organization or an app: 1 to 63
// of a-z, 0-9 and "-", not starting or ending with "-". The store itself
// accepts any text; the services hold names to this rule so that they fit
// in URLs and host names.
func ValidSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
