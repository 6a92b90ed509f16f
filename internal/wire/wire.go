// Package wire holds the byte-level encodings that more than one caveat
// package reads or writes: the packed caveat that the HMAC chain covers
// (spec §4.2), action masks (§6.1) and resource sets (§6.2). Readers are
// strict (canonical encodings only) and do not allocate, since verification
// and clearing run them for every caveat of every token.
//
// They are internal so that the packages' public API stays what a caller
// needs: the caveat types, ParseResourceSet, Clear.
package wire

import (
	"bytes"
	"fmt"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// AppendPackedHeader appends the part of a packed caveat before its body:
// 92 ‖ uint(type).
func AppendPackedHeader(b []byte, t uint64) []byte {
	return msgpack.AppendUint(append(b, 0x92), t)
}

// AppendPacked appends the packed form of a caveat, the bytes that are
// MAC'd: 92 ‖ uint(type) ‖ body.
func AppendPacked(b []byte, t uint64, body []byte) []byte {
	return append(AppendPackedHeader(b, t), body...)
}

// MaxMask is the widest action mask: 16 bits.
const MaxMask = 0xffff

// ReadMask reads b, which must be exactly one canonical mask: a uint of at
// most 16 bits.
func ReadMask(b []byte) (uint16, error) {
	r := msgpack.NewStrictReader(b)
	m, err := r.ReadUint()
	if err != nil {
		return 0, err
	}
	if m > MaxMask {
		return 0, fmt.Errorf("mask %#x is wider than 16 bits", m)
	}
	return uint16(m), r.ExpectEnd()
}

// Entries walks an encoded resource set strictly: a map with keys in
// strictly increasing order (numerically for uint64 keys, byte-wise for
// strings) and masks of at most 16 bits, or nil. It is started in place
// with Init, as it is walked for every resource-set caveat cleared.
type Entries struct {
	r     msgpack.Reader
	str   bool // string keys (else uint64)
	isNil bool
	n, i  int
	prevU uint64
	prevS []byte
}

// Entry is one key of a resource set and its mask. U is the key of a
// uint64-keyed set, S (a sub-slice of the set's bytes) that of a
// string-keyed one.
type Entry struct {
	U    uint64
	S    []byte
	Mask uint16
}

// Zero reports whether the key is the zero id (0 or ""), the wildcard.
func (e *Entry) Zero() bool { return e.U == 0 && len(e.S) == 0 }

// Init starts walking the set b, whose keys are strings when stringKeys
// is set and uint64 otherwise.
func (it *Entries) Init(b []byte, stringKeys bool) error {
	*it = Entries{r: msgpack.NewStrictReader(b), str: stringKeys}
	if it.r.TryNil() {
		it.isNil = true
		return nil
	}
	n, err := it.r.ReadMapHeader()
	if err != nil {
		return fmt.Errorf("resource set: %w", err)
	}
	it.n = n
	return nil
}

// IsNil reports whether the set is nil (c0), which is distinct from an
// empty map on the wire.
func (it *Entries) IsNil() bool { return it.isNil }

// Len is the number of entries the map declares.
func (it *Entries) Len() int { return it.n }

// More reports whether entries are left.
func (it *Entries) More() bool { return it.i < it.n }

// Next reads the next entry into e, refusing keys out of order.
func (it *Entries) Next(e *Entry) error {
	var err error
	if it.str {
		e.S, err = it.r.ReadStr()
	} else {
		e.U, err = it.r.ReadUint()
	}
	if err != nil {
		return fmt.Errorf("resource set key %d: %w", it.i, err)
	}
	if it.i > 0 && !it.after(e) {
		return fmt.Errorf("resource set key %d: %w: keys not in strictly increasing order",
			it.i, msgpack.ErrNonCanonical)
	}
	m, err := it.r.ReadUint()
	if err != nil {
		return fmt.Errorf("resource set mask %d: %w", it.i, err)
	}
	if m > MaxMask {
		return fmt.Errorf("resource set mask %d: %#x is wider than 16 bits", it.i, m)
	}
	e.Mask = uint16(m)
	it.prevU, it.prevS = e.U, e.S
	it.i++
	return nil
}

func (it *Entries) after(e *Entry) bool {
	if it.str {
		return bytes.Compare(e.S, it.prevS) > 0
	}
	return e.U > it.prevU
}

// End checks that nothing follows the set.
func (it *Entries) End() error {
	if err := it.r.ExpectEnd(); err != nil {
		return fmt.Errorf("resource set: %w", err)
	}
	return nil
}

// CanonicalSet checks that b is exactly the canonical encoding of one
// resource set with string keys (stringKeys) or uint64 keys.
func CanonicalSet(b []byte, stringKeys bool) error {
	var it Entries
	if err := it.Init(b, stringKeys); err != nil {
		return err
	}
	var e Entry
	for it.More() {
		if err := it.Next(&e); err != nil {
			return err
		}
	}
	return it.End()
}
