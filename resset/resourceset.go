package resset

import (
	"slices"

	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
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
	var it wire.Entries
	if err := it.Init(b, str); err != nil {
		return nil, err
	}
	if it.IsNil() {
		return nil, it.End()
	}
	out := make(ResourceSet[K], it.Len())
	var e wire.Entry
	for it.More() {
		if err := it.Next(&e); err != nil {
			return nil, err
		}
		switch m := any(out).(type) {
		case ResourceSet[uint64]:
			m[e.U] = Action(e.Mask)
		case ResourceSet[string]:
			m[string(e.S)] = Action(e.Mask)
		}
	}
	return out, it.End()
}
