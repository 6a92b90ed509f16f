// Package fastpath carries the allocation-free functions that this module's
// caveat packages write for some of their types (resource sets, IfPresent,
// …) to the registry of package caveat, so that those functions need not be
// exported by anyone.
//
// Verification checks that every caveat body is canonical, and clearing asks
// every caveat whether it allows an access. caveat.Register does both
// through the type's Decode, which costs nothing for small values such as
// Organization or ValidityWindow; a type whose value holds a map or a nested
// caveat set would allocate instead, so its package hands over functions on
// the encoded body here, just before it registers the type:
//
//	fastpath.Set(uint64(TypeIfPresent), fastpath.Paths[caveat.Access]{Canonical: …, Check: …})
//	caveat.Register(caveat.Def[IfPresent]{…})
//
// Register takes them; setting paths for a type that is registered already
// panics, so the order cannot be got wrong silently.
package fastpath

import "fmt"

// Paths are the functions of one caveat type on its encoded body. A is
// caveat.Access: this package cannot name it, since package caveat imports
// this one.
type Paths[A any] struct {
	// Canonical, when set, returns nil exactly when the type's Decode
	// would succeed, without allocating.
	Canonical func(body []byte) error
	// Check, when set, returns what Decode followed by Prohibits would,
	// without allocating when the access is allowed.
	Check func(body []byte, a A) error
}

// The hand-over happens in init functions, which run one at a time, so
// the table needs no lock.
var (
	pending = map[uint64]any{}
	taken   = map[uint64]bool{}
)

// Set hands over the paths of caveat type t; the caveat package's Register
// takes them when it registers t. It panics when t has paths already or is
// registered already.
func Set[A any](t uint64, p Paths[A]) {
	if _, ok := pending[t]; ok {
		panic(fmt.Sprintf("fastpath: paths of caveat type %d set twice", t))
	}
	if taken[t] {
		panic(fmt.Sprintf("fastpath: paths of caveat type %d set after the type was registered", t))
	}
	pending[t] = p
}

// Take returns the paths set for t, if any, and marks t registered.
func Take[A any](t uint64) (Paths[A], bool) {
	taken[t] = true
	v, set := pending[t]
	if !set {
		return Paths[A]{}, false
	}
	delete(pending, t)
	p, ok := v.(Paths[A])
	if !ok {
		panic(fmt.Sprintf("fastpath: paths of caveat type %d are %T, want %T", t, v, p))
	}
	return p, true
}

// Pending lists the types whose paths were set and never taken: a type
// number that does not match the type registered after it. Tests check
// that it is empty once every caveat package is initialised.
func Pending() []uint64 {
	out := make([]uint64, 0, len(pending))
	for t := range pending {
		out = append(out, t)
	}
	return out
}
