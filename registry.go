package caveat

// The registry of caveat types (spec §5.1): the one global state of the
// library. It is written only by Register, which packages call from init
// functions; after initialisation it is read without locking.

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// Def describes a caveat type T to Register. Everything else the registry
// knows of T it learns from T itself: the type number from CaveatType, the
// number of fields of a record body from AppendBody, whether it nests a
// caveat set from the Nested interface.
type Def[T any] struct {
	// Name is the JSON type name; Aliases are accepted when parsing JSON.
	Name    string
	Aliases []string
	// Attestation marks a fact stated by a third party (spec §4.9): allowed
	// only in proofs and skipped when clearing at the top level of a set.
	Attestation bool
	// Decode parses a body strictly: it fails unless body is exactly the
	// canonical encoding (AppendBody) of the value it returns. Verification
	// decodes every caveat with it to check its encoding, and clearing to
	// ask Prohibits, so for the types of ordinary tokens it should not
	// allocate; returning T by value, it does not for small values.
	Decode func(body []byte) (T, error)
}

// Info describes a registered caveat type.
type Info struct {
	Type CaveatType
	// Name is the JSON type name; Aliases are accepted when parsing JSON.
	Name    string
	Aliases []string
	// Attestation marks a fact stated by a third party (spec §4.9).
	Attestation bool
	// Record is the number of fields when the body is an array-encoded
	// record, and 0 otherwise. Decoding a token refuses a record body of any
	// other length, as the reference decoder does.
	Record int
	// New returns a zero value to decode JSON into.
	New func() Caveat
	// Decode parses a body strictly into a new value (a pointer to the
	// type's value).
	Decode func(body []byte) (Caveat, error)

	// canonical returns nil exactly when Decode would succeed, and check
	// what Decode followed by Prohibits would; neither allocates for the
	// types of ordinary tokens (RawCaveat.Canonical and Check call them).
	canonical func(body []byte) error
	check     func(body []byte, a Access) error
	// nested is set when the type implements Nested.
	nested bool
}

var (
	registrySmall [64]*Info
	registryLarge = map[CaveatType]*Info{}
	registryNames = map[string]*Info{}
)

// Register adds caveat type T to the global registry, under the number
// (*T).CaveatType returns. Decoding gives values of type *T. Call it only
// from an init function:
//
//	func init() {
//		caveat.Register(caveat.Def[Organization]{Name: "Organization", Decode: decodeOrganization})
//	}
//
// T's Prohibits has a value receiver, so that clearing can ask a value
// decoded on the stack. Register panics if the type number or a name is
// taken, if Name or Decode is missing, or if Decode does not read back
// exactly what AppendBody writes for the zero value (which is also how it
// learns the number of fields of a record body).
func Register[T interface{ Prohibits(Access) error }, P interface {
	*T
	Caveat
}](def Def[T]) {
	var zero T
	t := P(&zero).CaveatType()
	if def.Name == "" || def.Decode == nil {
		panic(fmt.Sprintf("caveat: incomplete registration for type %d", t))
	}
	if t == TypeUnregistered {
		panic("caveat: cannot register the unregistered sentinel")
	}
	if _, ok := Lookup(t); ok {
		panic(fmt.Sprintf("caveat: type %d registered twice", t))
	}
	enc := P(&zero).AppendBody(nil)
	back, err := def.Decode(enc)
	if err != nil {
		panic(fmt.Sprintf("caveat: %s: Decode refuses the zero value's encoding %x: %v", def.Name, enc, err))
	}
	if again := P(&back).AppendBody(nil); !bytes.Equal(again, enc) {
		panic(fmt.Sprintf("caveat: %s: the zero value's encoding %x decodes and re-encodes as %x", def.Name, enc, again))
	}
	_, nested := any(P(&zero)).(Nested)

	decode := def.Decode
	info := &Info{
		Type:        t,
		Name:        def.Name,
		Aliases:     def.Aliases,
		Attestation: def.Attestation,
		Record:      recordFields(enc),
		New:         func() Caveat { return P(new(T)) },
		Decode: func(b []byte) (Caveat, error) {
			v, err := decode(b)
			if err != nil {
				return nil, err
			}
			p := new(T)
			*p = v
			return P(p), nil
		},
		canonical: func(b []byte) error {
			_, err := decode(b)
			return err
		},
		check: func(b []byte, a Access) error {
			v, err := decode(b)
			if err != nil {
				return BadCaveat(err)
			}
			return v.Prohibits(a)
		},
		nested: nested,
	}
	if fast, ok := fastpath.Take[Access](uint64(t)); ok {
		if fast.Canonical != nil {
			info.canonical = fast.Canonical
		}
		if fast.Check != nil {
			info.check = fast.Check
		}
	}
	add(info)
}

// recordFields is the number of fields of an array-encoded body, or 0.
func recordFields(enc []byte) int {
	r := msgpack.NewReader(enc)
	if r.Peek() != msgpack.KindArray {
		return 0
	}
	n, _ := r.ReadArrayHeader()
	return n
}

func add(info *Info) {
	for _, n := range append([]string{info.Name}, info.Aliases...) {
		if _, ok := registryNames[n]; ok {
			panic(fmt.Sprintf("caveat: name %q registered twice", n))
		}
		registryNames[n] = info
	}
	if info.Type < CaveatType(len(registrySmall)) {
		registrySmall[info.Type] = info
	} else {
		registryLarge[info.Type] = info
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
