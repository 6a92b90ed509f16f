package resset

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// ResourceSet maps resource ids to the actions permitted on them (spec §6.2).
// The zero id (0 or "") is a wildcard, valid only as the set's sole key. A
// nil set and an empty set are distinct on the wire (nil and an empty map)
// and both permit nothing.
//
// On the wire a set is a MessagePack map sorted by key: numerically for
// uint64 ids and byte-wise for strings. In JSON it is an object whose keys
// are the ids (decimal strings for uint64) and whose values are mask
// strings.
type ResourceSet[K uint64 | string] map[K]Action

// AppendMsgpack appends the canonical encoding of the set.
func (s ResourceSet[K]) AppendMsgpack(b []byte) []byte {
	if s == nil {
		return msgpack.AppendNil(b)
	}
	keys := make([]K, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go orders strings byte-wise, as the canonical profile does
	b = msgpack.AppendMapHeader(b, len(keys))
	for _, k := range keys {
		switch k := any(k).(type) {
		case uint64:
			b = msgpack.AppendUint(b, k)
		case string:
			b = msgpack.AppendStr(b, k)
		}
		b = msgpack.AppendUint(b, uint64(s[k]))
	}
	return b
}

// ParseResourceSet decodes b, which must be exactly the canonical encoding
// of one set: a map with keys in strictly increasing order, or nil.
func ParseResourceSet[K uint64 | string](b []byte) (ResourceSet[K], error) {
	var zero K
	_, str := any(zero).(string)
	it, err := newEntries(b, str)
	if err != nil {
		return nil, err
	}
	if it.isNil {
		return nil, it.end()
	}
	out := make(ResourceSet[K], it.n)
	for it.more() {
		e, err := it.next()
		if err != nil {
			return nil, err
		}
		switch m := any(out).(type) {
		case ResourceSet[uint64]:
			m[e.u] = e.mask
		case ResourceSet[string]:
			m[string(e.s)] = e.mask
		}
	}
	return out, it.end()
}

// CanonicalSet checks, without allocating, that b is exactly the
// canonical encoding of one resource set with string keys (stringKeys) or
// uint64 keys.
func CanonicalSet(b []byte, stringKeys bool) error {
	it, err := newEntries(b, stringKeys)
	if err != nil {
		return err
	}
	for it.more() {
		if _, err := it.next(); err != nil {
			return err
		}
	}
	return it.end()
}

// entries walks an encoded resource set strictly, without allocating.
type entries struct {
	r     msgpack.Reader
	str   bool // string keys (else uint64)
	isNil bool
	n, i  int
	prev  entry
}

type entry struct {
	u    uint64
	s    []byte
	mask Action
}

func (e entry) zero() bool { return e.u == 0 && len(e.s) == 0 }

func newEntries(b []byte, str bool) (entries, error) {
	it := entries{r: msgpack.NewStrictReader(b), str: str}
	if it.r.TryNil() {
		it.isNil = true
		return it, nil
	}
	n, err := it.r.ReadMapHeader()
	if err != nil {
		return it, fmt.Errorf("resource set: %w", err)
	}
	it.n = n
	return it, nil
}

func (it *entries) more() bool { return it.i < it.n }

func (it *entries) next() (entry, error) {
	var e entry
	var err error
	if it.str {
		e.s, err = it.r.ReadStr()
	} else {
		e.u, err = it.r.ReadUint()
	}
	if err != nil {
		return e, fmt.Errorf("resource set key %d: %w", it.i, err)
	}
	if it.i > 0 && !it.after(e) {
		return e, fmt.Errorf("resource set key %d: %w: keys not in strictly increasing order",
			it.i, msgpack.ErrNonCanonical)
	}
	m, err := it.r.ReadUint()
	if err != nil {
		return e, fmt.Errorf("resource set mask %d: %w", it.i, err)
	}
	if m > uint64(ActionStar) {
		return e, fmt.Errorf("resource set mask %d: %#x is wider than 16 bits", it.i, m)
	}
	e.mask = Action(m)
	it.prev = e
	it.i++
	return e, nil
}

func (it *entries) after(e entry) bool {
	if it.str {
		return bytes.Compare(e.s, it.prev.s) > 0
	}
	return e.u > it.prev.u
}

func (it *entries) end() error {
	if err := it.r.ExpectEnd(); err != nil {
		return fmt.Errorf("resource set: %w", err)
	}
	return nil
}

// Query is one access to a resource set: the resource it names, if any, and
// the action it attempts.
type Query struct {
	// What names the kind of resource in messages: "app", "machine", ….
	What string
	// Present is false when the access does not name this kind of resource.
	Present bool
	// ID is the resource: Str for string-keyed sets, Uint for uint64 ones.
	Str  string
	Uint uint64
	// Prefix makes a key match every id that starts with it (storage
	// objects); otherwise keys match by equality.
	Prefix bool
	Action Action
	// Unspecified, when set, is returned as is when the query names no
	// resource; it must wrap caveat.ErrResourceUnspecified. A caller that
	// builds it once spares IfPresent an allocation for every inner caveat
	// that does not apply.
	Unspecified error
}

func (q *Query) matches(e entry, str bool) bool {
	switch {
	case !str:
		return e.u == q.Uint
	case q.Prefix: // strings.HasPrefix, without converting e.s
		return len(q.Str) >= len(e.s) && q.Str[:len(e.s)] == string(e.s)
	default:
		return q.Str == string(e.s)
	}
}

func (q *Query) resource(str bool) string {
	if str {
		return q.What + " " + strconv.Quote(q.Str)
	}
	return q.What + " " + strconv.FormatUint(q.Uint, 10)
}

// CheckUint clears a query against an encoded uint64-keyed set (see
// CheckString).
func CheckUint(b []byte, q *Query) error { return check(b, false, q) }

// CheckString clears a query against b, the encoding of a string-keyed
// resource set, as spec §6.2 says: a zero id mixed with other keys is
// ErrBadCaveat; a query without the resource is ErrResourceUnspecified;
// the permitted mask is the intersection of every matching key's (the zero
// id matches everything), ErrUnauthorizedForResource when none matches and
// ErrUnauthorizedForAction when the action is not a subset of it. An
// encoding that is not canonical is ErrBadCaveat. It does not allocate
// when the query is allowed.
func CheckString(b []byte, q *Query) error { return check(b, true, q) }

func check(b []byte, str bool, q *Query) error {
	it, err := newEntries(b, str)
	if err != nil {
		return caveat.BadCaveat(err)
	}
	perm, found, zero := ActionStar, false, false
	for it.more() {
		e, err := it.next()
		if err != nil {
			return caveat.BadCaveat(err)
		}
		if e.zero() {
			zero = true
		}
		if e.zero() || q.matches(e, str) {
			perm &= e.mask
			found = true
		}
	}
	if err := it.end(); err != nil {
		return caveat.BadCaveat(err)
	}
	switch {
	case zero && it.n > 1:
		return fmt.Errorf("%w: a %s set cannot hold the zero id (the wildcard) with other ids",
			caveat.ErrBadCaveat, q.What)
	case !q.Present && q.Unspecified != nil:
		return q.Unspecified
	case !q.Present:
		return fmt.Errorf("%w: the access names no %s", caveat.ErrResourceUnspecified, q.What)
	case !found:
		return fmt.Errorf("%w: %s not allowed (allowed: %s)", caveat.ErrUnauthorizedForResource,
			q.resource(str), listKeys(b, str))
	case !q.Action.IsSubsetOf(perm):
		return ActionDenied(q.Action, perm, q.resource(str))
	}
	return nil
}

// listKeys names the ids of a set that check has already walked, for the
// message of a refusal.
func listKeys(b []byte, str bool) string {
	it, _ := newEntries(b, str)
	var keys []string
	for it.more() {
		e, _ := it.next()
		if str {
			keys = append(keys, strconv.Quote(string(e.s)))
		} else {
			keys = append(keys, strconv.FormatUint(e.u, 10))
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}
