package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// Attestations state which account authenticated; a trusted third party
// puts them into the discharges it issues (spec §4.9, §7).

// Type numbers of the attestations.
const (
	TypeFlyioUserID  caveat.CaveatType = 23
	TypeGitHubUserID caveat.CaveatType = 24
	TypeGoogleUserID caveat.CaveatType = 25
)

// FlyioUserID (type 23) attests the Fly.io user id of the principal. Body: a
// bare uint; JSON a bare number.
type FlyioUserID uint64

// CaveatType implements caveat.Caveat.
func (c *FlyioUserID) CaveatType() caveat.CaveatType { return TypeFlyioUserID }

// AppendBody implements caveat.Caveat.
func (c *FlyioUserID) AppendBody(b []byte) []byte { return msgpack.AppendUint(b, uint64(*c)) }

// Prohibits implements caveat.Caveat: an attestation refuses every access
// where it is evaluated at all (inside IfPresent).
func (c FlyioUserID) Prohibits(caveat.Access) error { return errAttestation("FlyioUserID") }

// GitHubUserID (type 24) attests the GitHub user id of the principal. Body:
// a bare uint; JSON a bare number.
type GitHubUserID uint64

// CaveatType implements caveat.Caveat.
func (c *GitHubUserID) CaveatType() caveat.CaveatType { return TypeGitHubUserID }

// AppendBody implements caveat.Caveat.
func (c *GitHubUserID) AppendBody(b []byte) []byte { return msgpack.AppendUint(b, uint64(*c)) }

// Prohibits implements caveat.Caveat: see FlyioUserID.Prohibits.
func (c GitHubUserID) Prohibits(caveat.Access) error { return errAttestation("GitHubUserID") }

// GoogleUserID (type 25) attests the Google user id (the OpenID "sub") of
// the principal, an unsigned integer that does not fit in 64 bits.
//
// Body: bin holding the big-endian magnitude in the fewest bytes, so zero
// is the empty byte string c4 00 and a leading zero byte is not canonical.
// JSON: a bare integer of any size. The zero value is the id 0.
type GoogleUserID struct {
	id big.Int // never negative
}

// NewGoogleUserID returns the attestation of id, which must not be
// negative. id is copied.
func NewGoogleUserID(id *big.Int) (*GoogleUserID, error) {
	if id.Sign() < 0 {
		return nil, errors.New("GoogleUserID: negative id")
	}
	c := new(GoogleUserID)
	c.id.Set(id)
	return c, nil
}

// ParseGoogleUserID parses a decimal id, as Google's "sub" claim gives it.
func ParseGoogleUserID(s string) (*GoogleUserID, error) {
	if !isDigits([]byte(s)) {
		return nil, fmt.Errorf("GoogleUserID: %q is not a decimal unsigned integer", s)
	}
	c := new(GoogleUserID)
	c.id.SetString(s, 10)
	return c, nil
}

// Int returns a copy of the id.
func (c *GoogleUserID) Int() *big.Int { return new(big.Int).Set(&c.id) }

// String returns the id in decimal.
func (c *GoogleUserID) String() string { return c.id.String() }

// CaveatType implements caveat.Caveat.
func (c *GoogleUserID) CaveatType() caveat.CaveatType { return TypeGoogleUserID }

// AppendBody implements caveat.Caveat.
func (c *GoogleUserID) AppendBody(b []byte) []byte {
	mag := c.id.Bytes()
	if mag == nil {
		mag = []byte{} // zero is c4 00, never nil
	}
	return msgpack.AppendBin(b, mag)
}

// Prohibits implements caveat.Caveat: see FlyioUserID.Prohibits.
func (c GoogleUserID) Prohibits(caveat.Access) error { return errAttestation("GoogleUserID") }

// MarshalJSON renders the id as a bare JSON integer.
func (c *GoogleUserID) MarshalJSON() ([]byte, error) {
	return c.id.Append(nil, 10), nil
}

// UnmarshalJSON accepts only a bare non-negative JSON integer: no string,
// fraction, exponent or sign.
func (c *GoogleUserID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '"' {
		return errors.New("GoogleUserID: want a JSON integer")
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("GoogleUserID: want a JSON integer: %w", err)
	}
	if !isDigits([]byte(n)) {
		return fmt.Errorf("GoogleUserID: %s is not an unsigned integer", n)
	}
	c.id.SetString(string(n), 10)
	return nil
}

func isDigits(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, d := range s {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// readGoogleUserID decodes the body strictly and returns the magnitude, a
// sub-slice of body.
func readGoogleUserID(body []byte) ([]byte, error) {
	r := msgpack.NewStrictReader(body)
	mag, err := r.ReadBin()
	if err != nil {
		return nil, err
	}
	if len(mag) > 0 && mag[0] == 0 {
		return nil, fmt.Errorf("%w: GoogleUserID has a leading zero byte", msgpack.ErrNonCanonical)
	}
	return mag, r.ExpectEnd()
}

func init() {
	caveat.Register(caveat.Def[FlyioUserID]{Name: "FlyioUserID", Attestation: true, Decode: func(b []byte) (FlyioUserID, error) {
		v, err := readUint(b)
		return FlyioUserID(v), err
	}})
	caveat.Register(caveat.Def[GitHubUserID]{Name: "GitHubUserID", Attestation: true, Decode: func(b []byte) (GitHubUserID, error) {
		v, err := readUint(b)
		return GitHubUserID(v), err
	}})
	// Decoding makes a big.Int: the checks read the magnitude in the body.
	fastpath.Set(uint64(TypeGoogleUserID), fastpath.Paths[caveat.Access]{
		Canonical: func(b []byte) error { _, err := readGoogleUserID(b); return err },
		Check: func(b []byte, _ caveat.Access) error {
			if _, err := readGoogleUserID(b); err != nil {
				return caveat.BadCaveat(err)
			}
			return errAttestation("GoogleUserID")
		},
	})
	caveat.Register(caveat.Def[GoogleUserID]{Name: "GoogleUserID", Attestation: true, Decode: func(b []byte) (GoogleUserID, error) {
		var c GoogleUserID
		mag, err := readGoogleUserID(b)
		if err != nil {
			return c, err
		}
		c.id.SetBytes(mag)
		return c, nil
	}})
}
