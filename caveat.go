package caveat

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/caveatdev/caveat/internal/msgpack"
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
// registered once with Register.
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

// Info describes a registered caveat type.
type Info struct {
	Type CaveatType
	// Name is the JSON type name; Aliases are accepted when parsing JSON.
	Name    string
	Aliases []string
	// Attestation marks a fact stated by a third party (spec §4.9): allowed
	// only in proofs and skipped when clearing at the top level of a set.
	Attestation bool
	// Record is the number of fields when the body is an array-encoded
	// record, and 0 otherwise. Decoding a token refuses a record body of any
	// other length, as the reference decoder does.
	Record int
	// New returns a zero value to decode JSON into.
	New func() Caveat
	// Decode parses a body strictly: it fails unless body is exactly the
	// canonical encoding (AppendBody) of the caveat it returns.
	Decode func(body []byte) (Caveat, error)
	// Canonical, when set, must return nil exactly when Decode would
	// succeed. Verification calls it for every caveat, so it should not
	// allocate: the types of ordinary tokens (ValidityWindow, Organization,
	// the resource sets, IfPresent, Action, roles) do not.
	Canonical func(body []byte) error
	// Check, when set, must return what Decode followed by Prohibits would.
	// Clearing calls it for every caveat, so it should not allocate when it
	// allows, as for Canonical.
	Check func(body []byte, a Access) error
}

// The registry is written only by Register, which packages call from init
// functions; after initialisation it is read without locking.
var (
	registrySmall [64]*Info
	registryLarge = map[CaveatType]*Info{}
	registryNames = map[string]*Info{}
)

// Register adds a caveat type to the global registry. It panics if the type
// number or a name is already taken, or if Name, New or Decode is missing.
// Call it only from an init function.
func Register(info Info) {
	if info.Name == "" || info.New == nil || info.Decode == nil {
		panic(fmt.Sprintf("caveat: incomplete registration for type %d", info.Type))
	}
	if info.Type == TypeUnregistered {
		panic("caveat: cannot register the unregistered sentinel")
	}
	if _, ok := Lookup(info.Type); ok {
		panic(fmt.Sprintf("caveat: type %d registered twice", info.Type))
	}
	p := &info
	for _, n := range append([]string{info.Name}, info.Aliases...) {
		if _, ok := registryNames[n]; ok {
			panic(fmt.Sprintf("caveat: name %q registered twice", n))
		}
		registryNames[n] = p
	}
	if info.Type < CaveatType(len(registrySmall)) {
		registrySmall[info.Type] = p
	} else {
		registryLarge[info.Type] = p
	}
}

// Lookup returns the registration of a type number.
func Lookup(t CaveatType) (*Info, bool) {
	if t < CaveatType(len(registrySmall)) {
		p := registrySmall[t]
		return p, p != nil
	}
	p, ok := registryLarge[t]
	return p, ok
}

// LookupName resolves a JSON type string (spec §5.3): a registered name or
// alias, or the decimal string of a type number. An unknown name resolves to
// TypeUnregistered with ok false.
func LookupName(name string) (CaveatType, *Info, bool) {
	if p, ok := registryNames[name]; ok {
		return p.Type, p, true
	}
	if n, err := strconv.ParseUint(name, 10, 64); err == nil {
		t := CaveatType(n)
		p, ok := Lookup(t)
		return t, p, ok
	}
	return TypeUnregistered, nil, false
}

// TypeName is the JSON name of a type: the registered name below 2^48, and
// the decimal number otherwise (also for unregistered types).
func TypeName(t CaveatType) string {
	if p, ok := Lookup(t); ok && t < TypeUserDefinedMin {
		return p.Name
	}
	return strconv.FormatUint(uint64(t), 10)
}

// Registered returns every registered type, in type order.
func Registered() []*Info {
	var out []*Info
	for _, p := range registrySmall {
		if p != nil {
			out = append(out, p)
		}
	}
	large := make([]*Info, 0, len(registryLarge))
	for _, p := range registryLarge {
		large = append(large, p)
	}
	sortInfos(large)
	return append(out, large...)
}

func sortInfos(s []*Info) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Type < s[j-1].Type; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
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
func (c RawCaveat) AppendPacked(b []byte) []byte {
	b = append(b, 0x92)
	b = msgpack.AppendUint(b, uint64(c.Type))
	return append(b, c.Body...)
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
	info, ok := Lookup(c.Type)
	if !ok {
		return nil
	}
	var err error
	if info.Canonical != nil {
		err = info.Canonical(c.Body)
	} else {
		_, err = info.Decode(c.Body)
	}
	if err != nil {
		return fmt.Errorf("%w: %s caveat: %v", ErrNonCanonical, info.Name, err)
	}
	return nil
}

// Check evaluates one caveat against an access: what the typed caveat's
// Prohibits says, without decoding into the heap where the type allows. An
// unregistered or undecodable caveat always refuses (fail closed).
func (c RawCaveat) Check(a Access) error {
	info, ok := Lookup(c.Type)
	if !ok {
		return fmt.Errorf("%w: unregistered caveat type %d", ErrBadCaveat, uint64(c.Type))
	}
	if info.Check != nil {
		return info.Check(c.Body, a)
	}
	v, err := info.Decode(c.Body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCaveat, err)
	}
	return v.Prohibits(a)
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
