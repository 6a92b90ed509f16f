package caveat

import (
	"errors"
	"fmt"

	"github.com/caveatdev/caveat/internal/wire"
)

// CaveatType is a caveat's registered type number (spec §5.1). It is an
// unsigned 64-bit integer on the wire, encoded in its shortest form.
type CaveatType uint64

// Type numbers and ranges that the core needs. The other registered types are
// declared by the packages that implement them (flyio, auth, resset).
const (
	TypeValidityWindow    CaveatType = 4
	Type3P                CaveatType = 11
	TypeBindToParentToken CaveatType = 12

	// TypeUserRegisterableMin starts the range registered by pull request
	// upstream; TypeUserDefinedMin starts the range free for private use,
	// where caveat puts its own caveats.
	TypeUserRegisterableMin CaveatType = 1 << 32
	TypeUserDefinedMin      CaveatType = 1 << 48
	// TypeUnregistered is the sentinel that a JSON caveat of unknown name
	// decodes to; it can never be encoded.
	TypeUnregistered CaveatType = 1<<64 - 1
)

// Caveat is one restriction (or, for attestations, one fact) in a token.
//
// Implementations are plain values whose MessagePack body follows spec §5.2
// and whose JSON form (encoding/json) is the spec's JSON body. They are
// registered once with Register; a registered type T implements Caveat as
// *T, with Prohibits on the value T.
type Caveat interface {
	// CaveatType returns the registered type number.
	CaveatType() CaveatType
	// AppendBody appends the canonical MessagePack encoding of the body.
	AppendBody(b []byte) []byte
	// Prohibits returns nil if the caveat allows the access, or an error
	// wrapping one of the ErrUnauthorized classes that says which action on
	// which resource it refuses.
	Prohibits(a Access) error
}

// RawCaveat is one caveat as it is on the wire: its type number and the
// MessagePack encoding of its body. Decoded tokens keep caveats in this form,
// so that the bytes that were MAC'd are the bytes that are kept.
type RawCaveat struct {
	Type CaveatType
	Body []byte
}

// Encode returns the raw form of a typed caveat.
func Encode(c Caveat) RawCaveat {
	return RawCaveat{Type: c.CaveatType(), Body: c.AppendBody(nil)}
}

// Name is the caveat's JSON type name.
func (c RawCaveat) Name() string { return TypeName(c.Type) }

// AppendPacked appends the packed form that is MAC'd: 92 ‖ uint(type) ‖ body.
//
// Deprecated: the packed form is wire detail that only tests build by hand;
// it is kept for authority's tests, which are not changed with the library.
func (c RawCaveat) AppendPacked(b []byte) []byte {
	return wire.AppendPacked(b, uint64(c.Type), c.Body)
}

// Decode returns the typed caveat. An unregistered type yields *Unregistered.
func (c RawCaveat) Decode() (Caveat, error) {
	info, ok := Lookup(c.Type)
	if !ok {
		return &Unregistered{Type: c.Type, Body: c.Body}, nil
	}
	v, err := info.Decode(c.Body)
	if err != nil {
		return nil, fmt.Errorf("%s caveat: %w", info.Name, err)
	}
	return v, nil
}

// Canonical checks, without allocating, that a registered caveat's body is
// in the canonical encoding of spec §2.2, so that it may be MAC'd as
// received. Unregistered bodies are always acceptable. Caveats that nest a
// caveat set (IfPresent) call it for each inner caveat.
func (c RawCaveat) Canonical() error {
	_, err := c.canonical()
	return err
}

// canonical is Canonical, and returns the type's registration (nil when
// the type is unregistered) for the caller's other questions.
func (c RawCaveat) canonical() (*Info, error) {
	info, ok := Lookup(c.Type)
	if !ok {
		return nil, nil
	}
	if err := info.canonical(c.Body); err != nil {
		return info, fmt.Errorf("%w: %s caveat: %v", ErrNonCanonical, info.Name, err)
	}
	return info, nil
}

// Check evaluates one caveat against an access: what the typed caveat's
// Prohibits says, without decoding into the heap where the type allows. An
// unregistered or undecodable caveat always refuses (fail closed).
func (c RawCaveat) Check(a Access) error {
	info, ok := Lookup(c.Type)
	if !ok {
		return fmt.Errorf("%w: unregistered caveat type %d", ErrBadCaveat, uint64(c.Type))
	}
	return info.check(c.Body, a)
}

// Attestation reports whether the caveat's type is a registered attestation.
func (c RawCaveat) Attestation() bool {
	info, ok := Lookup(c.Type)
	return ok && info.Attestation
}

// Unregistered is a caveat of a type this process does not know. Its body is
// kept byte for byte so that the token still verifies; it refuses every
// access (spec §5.4).
type Unregistered struct {
	Type CaveatType
	Body []byte
}

// CaveatType implements Caveat.
func (c *Unregistered) CaveatType() CaveatType { return c.Type }

// AppendBody implements Caveat: the body exactly as received.
func (c *Unregistered) AppendBody(b []byte) []byte { return append(b, c.Body...) }

// Prohibits implements Caveat: always refuses.
func (c *Unregistered) Prohibits(Access) error {
	return fmt.Errorf("%w: unregistered caveat type %d", ErrBadCaveat, uint64(c.Type))
}

// errUnregisteredJSON is returned when JSON names a type this process cannot
// encode.
var errUnregisteredJSON = errors.New("cannot convert unregistered caveats from JSON")
