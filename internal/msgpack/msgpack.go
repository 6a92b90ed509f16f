// Package msgpack reads and writes the subset of MessagePack used by the fm2
// token format (spec §2): integers, strings, byte strings, booleans, nil,
// arrays and maps. No floats, extension types or timestamps appear there.
//
// # Canonical profile
//
// The writer only produces the canonical encoding of spec §2.2: the shortest
// integer form (unsigned codes for every non-negative value), the shortest
// str/bin/array/map headers, and nil distinct from empty.
//
// The Reader has two modes. A strict Reader rejects every encoding that the
// writer would not have produced, so that "decodes strictly" is the same as
// "is byte-identical to its canonical re-encoding" (map key order is checked
// by the callers that know the key type). A lenient Reader accepts what the
// reference library's decoder accepts: any integer width and str and bin
// interchangeably. Tokens are decoded leniently, for display, and verified
// strictly, because the HMAC chain is computed over the bytes as received.
//
// The Reader never allocates: strings and byte strings are returned as
// sub-slices of the input.
package msgpack

import (
	"errors"
	"fmt"
)

// Errors returned by the Reader. Each wraps ErrMalformed or ErrNonCanonical.
var (
	// ErrMalformed is wrapped by every error about input that is not valid
	// MessagePack of the expected shape.
	ErrMalformed = errors.New("malformed msgpack")
	// ErrNonCanonical is returned by a strict Reader for valid MessagePack that
	// is not in the canonical profile.
	ErrNonCanonical = errors.New("non-canonical msgpack")
	// ErrTruncated means the input ended inside a value.
	ErrTruncated = fmt.Errorf("%w: unexpected end of input", ErrMalformed)
	// ErrTooDeep means arrays and maps were nested deeper than MaxDepth.
	ErrTooDeep = fmt.Errorf("%w: nested too deeply", ErrMalformed)
)

// MaxDepth bounds the nesting of arrays and maps that Skip will walk.
const MaxDepth = 32

// Kind is the broad type of the next value.
type Kind uint8

// The kinds of value a Reader can see.
const (
	KindInvalid Kind = iota
	KindNil
	KindBool
	KindUint // non-negative integer
	KindInt  // negative integer
	KindStr
	KindBin
	KindArray
	KindMap
	KindOther // float, ext: never valid in fm2
)

func (k Kind) String() string {
	switch k {
	case KindNil:
		return "nil"
	case KindBool:
		return "bool"
	case KindUint, KindInt:
		return "integer"
	case KindStr:
		return "string"
	case KindBin:
		return "bytes"
	case KindArray:
		return "array"
	case KindMap:
		return "map"
	case KindOther:
		return "unsupported type"
	}
	return "end of input"
}

// Reader decodes values from a byte slice. The zero value is not usable; use
// NewReader or NewStrictReader. A Reader is a small value: keep it on the stack.
type Reader struct {
	b      []byte
	off    int
	strict bool
}

// NewReader returns a lenient Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// NewStrictReader returns a Reader over b that rejects non-canonical encodings.
func NewStrictReader(b []byte) Reader { return Reader{b: b, strict: true} }

// Strict reports whether r rejects non-canonical encodings.
func (r *Reader) Strict() bool { return r.strict }

// WithStrict returns a copy of r at the same offset that rejects
// non-canonical encodings or not: to read a value strictly where a lenient
// reader is, and fall back on the lenient reading only if that fails.
func (r Reader) WithStrict(strict bool) Reader {
	r.strict = strict
	return r
}

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int { return r.off }

// Rest returns the bytes not yet consumed.
func (r *Reader) Rest() []byte { return r.b[r.off:] }

// Done reports whether all input has been consumed.
func (r *Reader) Done() bool { return r.off >= len(r.b) }

// ExpectEnd fails unless all input has been consumed.
func (r *Reader) ExpectEnd() error {
	if r.off != len(r.b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b)-r.off)
	}
	return nil
}

func typeErr(want string, got byte) error {
	return fmt.Errorf("%w: want %s, got %s", ErrMalformed, want, kindOf(got))
}

func nonCanonical(what string) error {
	return fmt.Errorf("%w: %s", ErrNonCanonical, what)
}

func kindOf(c byte) Kind {
	switch {
	case c <= 0x7f, c >= 0xcc && c <= 0xcf:
		return KindUint
	case c >= 0xe0, c >= 0xd0 && c <= 0xd3:
		return KindInt
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return KindMap
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		return KindArray
	case c >= 0xa0 && c <= 0xbf, c >= 0xd9 && c <= 0xdb:
		return KindStr
	case c == 0xc0:
		return KindNil
	case c == 0xc2, c == 0xc3:
		return KindBool
	case c >= 0xc4 && c <= 0xc6:
		return KindBin
	}
	return KindOther
}

// Peek returns the kind of the next value without consuming it.
func (r *Reader) Peek() Kind {
	if r.off >= len(r.b) {
		return KindInvalid
	}
	return kindOf(r.b[r.off])
}

func (r *Reader) byte1() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *Reader) bigEndian(n int) (uint64, error) {
	if len(r.b)-r.off < n {
		return 0, ErrTruncated
	}
	var v uint64
	for _, c := range r.b[r.off : r.off+n] {
		v = v<<8 | uint64(c)
	}
	r.off += n
	return v, nil
}

// TryNil consumes a nil and reports true if the next value is nil.
func (r *Reader) TryNil() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// ReadNil consumes a nil.
func (r *Reader) ReadNil() error {
	c, err := r.byte1()
	if err != nil {
		return err
	}
	if c != 0xc0 {
		r.off--
		return typeErr("nil", c)
	}
	return nil
}

// ReadBool consumes a boolean.
func (r *Reader) ReadBool() (bool, error) {
	c, err := r.byte1()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	r.off--
	return false, typeErr("bool", c)
}

// ReadUint consumes a non-negative integer. A strict Reader requires the
// shortest unsigned form; a lenient one also takes signed codes holding a
// non-negative value.
func (r *Reader) ReadUint() (uint64, error) {
	start := r.off
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var v uint64
	var min uint64 // smallest value for which this code is canonical
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c == 0xcc:
		v, err = r.bigEndian(1)
		min = 0x80
	case c == 0xcd:
		v, err = r.bigEndian(2)
		min = 0x100
	case c == 0xce:
		v, err = r.bigEndian(4)
		min = 0x10000
	case c == 0xcf:
		v, err = r.bigEndian(8)
		min = 0x100000000
	case c >= 0xd0 && c <= 0xd3 && !r.strict:
		var s int64
		r.off = start
		s, err = r.readSigned()
		if err == nil && s < 0 {
			r.off = start
			return 0, fmt.Errorf("%w: negative value %d for unsigned integer", ErrMalformed, s)
		}
		return uint64(s), err
	case c >= 0xd0 && c <= 0xd3:
		r.off = start
		return 0, nonCanonical("signed code for unsigned integer")
	default:
		r.off = start
		return 0, typeErr("unsigned integer", c)
	}
	if err != nil {
		r.off = start
		return 0, err
	}
	if r.strict && v < min {
		r.off = start
		return 0, nonCanonical(fmt.Sprintf("integer %d not in its shortest form", v))
	}
	return v, nil
}

// readSigned reads any integer encoding as int64, without canonical checks.
func (r *Reader) readSigned() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var v uint64
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0xcc && c <= 0xcf:
		v, err = r.bigEndian(1 << (c - 0xcc))
		if err == nil && v > 1<<63-1 {
			return 0, fmt.Errorf("%w: integer overflows int64", ErrMalformed)
		}
		return int64(v), err
	case c >= 0xd0 && c <= 0xd3:
		n := 1 << (c - 0xd0)
		v, err = r.bigEndian(n)
		if err != nil {
			return 0, err
		}
		shift := 64 - 8*uint(n)
		return int64(v<<shift) >> shift, nil
	}
	return 0, typeErr("integer", c)
}

// ReadInt consumes a signed integer. A strict Reader requires the canonical
// form: unsigned codes for non-negative values, the shortest signed code for
// negative ones.
func (r *Reader) ReadInt() (int64, error) {
	start := r.off
	if r.off < len(r.b) {
		if c := r.b[r.off]; c <= 0x7f || (c >= 0xcc && c <= 0xcf) {
			v, err := r.ReadUint()
			if err != nil {
				return 0, err
			}
			if v > 1<<63-1 {
				r.off = start
				return 0, fmt.Errorf("%w: integer overflows int64", ErrMalformed)
			}
			return int64(v), nil
		}
	}
	v, err := r.readSigned()
	if err != nil {
		r.off = start
		return 0, err
	}
	if r.strict {
		c := r.b[start]
		canon := true
		switch {
		case v >= 0:
			canon = false // non-negative must use unsigned codes
		case c == 0xd0:
			canon = v < -32
		case c == 0xd1:
			canon = v < -128
		case c == 0xd2:
			canon = v < -32768
		case c == 0xd3:
			canon = v < -2147483648
		}
		if !canon {
			r.off = start
			return 0, nonCanonical(fmt.Sprintf("integer %d not in its shortest form", v))
		}
	}
	return v, nil
}

// strOrBin reads the header of a str (wantStr) or bin value and returns its
// payload. A strict Reader requires the expected type and the shortest header.
func (r *Reader) strOrBin(wantStr bool) ([]byte, error) {
	start := r.off
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n uint64
	var isStr bool
	var min uint64
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, isStr = uint64(c&0x1f), true
	case c == 0xd9:
		n, err = r.bigEndian(1)
		isStr, min = true, 32
	case c == 0xda:
		n, err = r.bigEndian(2)
		isStr, min = true, 0x100
	case c == 0xdb:
		n, err = r.bigEndian(4)
		isStr, min = true, 0x10000
	case c == 0xc4:
		n, err = r.bigEndian(1)
	case c == 0xc5:
		n, err = r.bigEndian(2)
		min = 0x100
	case c == 0xc6:
		n, err = r.bigEndian(4)
		min = 0x10000
	default:
		r.off = start
		if wantStr {
			return nil, typeErr("string", c)
		}
		return nil, typeErr("bytes", c)
	}
	if err != nil {
		r.off = start
		return nil, err
	}
	if r.strict {
		if isStr != wantStr {
			r.off = start
			if wantStr {
				return nil, nonCanonical("bytes where a string belongs")
			}
			return nil, nonCanonical("string where bytes belong")
		}
		if n < min {
			r.off = start
			return nil, nonCanonical("length header not in its shortest form")
		}
	}
	if uint64(len(r.b)-r.off) < n {
		r.off = start
		return nil, ErrTruncated
	}
	p := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return p, nil
}

// ReadStr consumes a text string and returns its bytes (a sub-slice of the
// input). A lenient Reader also accepts bin.
func (r *Reader) ReadStr() ([]byte, error) { return r.strOrBin(true) }

// ReadBin consumes a byte string (a sub-slice of the input, never nil). A
// lenient Reader also accepts str.
func (r *Reader) ReadBin() ([]byte, error) { return r.strOrBin(false) }

// ReadBinOrNil consumes a byte string or nil; nil yields a nil slice and an
// empty byte string yields an empty non-nil slice.
func (r *Reader) ReadBinOrNil() ([]byte, error) {
	if r.TryNil() {
		return nil, nil
	}
	return r.strOrBin(false)
}

func (r *Reader) header(fix0, fixMask, c16, c32 byte, what string) (int, error) {
	start := r.off
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&^fixMask == fix0:
		return int(c & fixMask), nil
	case c == c16:
		n, err = r.bigEndian(2)
		if err == nil && r.strict && n < 16 {
			err = nonCanonical(what + " header not in its shortest form")
		}
	case c == c32:
		n, err = r.bigEndian(4)
		if err == nil && r.strict && n < 0x10000 {
			err = nonCanonical(what + " header not in its shortest form")
		}
	default:
		r.off = start
		return 0, typeErr(what, c)
	}
	if err != nil {
		r.off = start
		return 0, err
	}
	// Every element takes at least one byte: a count larger than the rest of
	// the input is malformed, and refusing it here bounds what callers allocate.
	if n > uint64(len(r.b)-r.off) {
		r.off = start
		return 0, ErrTruncated
	}
	return int(n), nil
}

// ReadArrayHeader consumes an array header and returns the element count.
func (r *Reader) ReadArrayHeader() (int, error) {
	return r.header(0x90, 0x0f, 0xdc, 0xdd, "array")
}

// ReadMapHeader consumes a map header and returns the number of entries.
func (r *Reader) ReadMapHeader() (int, error) {
	n, err := r.header(0x80, 0x0f, 0xde, 0xdf, "map")
	if err == nil && n > (len(r.b)-r.off)/2 {
		return 0, ErrTruncated
	}
	return n, err
}

// ReadRecordHeader consumes the array header of a record with exactly n fields.
func (r *Reader) ReadRecordHeader(n int) error {
	start := r.off
	got, err := r.ReadArrayHeader()
	if err != nil {
		return err
	}
	if got != n {
		r.off = start
		return fmt.Errorf("%w: record has %d fields, want %d", ErrMalformed, got, n)
	}
	return nil
}

// Skip consumes one value of any supported kind, checking that it is well
// formed (and, for a strict Reader, canonical apart from map key order).
func (r *Reader) Skip() error {
	return r.skip(0)
}

func (r *Reader) skip(depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	var err error
	switch r.Peek() {
	case KindInvalid:
		return ErrTruncated
	case KindNil:
		r.off++
	case KindBool:
		_, err = r.ReadBool()
	case KindUint:
		_, err = r.ReadUint()
	case KindInt:
		_, err = r.ReadInt()
	case KindStr:
		_, err = r.ReadStr()
	case KindBin:
		_, err = r.ReadBin()
	case KindArray:
		var n int
		if n, err = r.ReadArrayHeader(); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err = r.skip(depth + 1); err != nil {
				return err
			}
		}
	case KindMap:
		var n int
		if n, err = r.ReadMapHeader(); err != nil {
			return err
		}
		for i := 0; i < 2*n; i++ {
			if err = r.skip(depth + 1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: unsupported type 0x%02x", ErrMalformed, r.b[r.off])
	}
	return err
}

// ReadRaw consumes one value and returns its encoded bytes.
func (r *Reader) ReadRaw() ([]byte, error) {
	start := r.off
	if err := r.Skip(); err != nil {
		r.off = start
		return nil, err
	}
	return r.b[start:r.off:r.off], nil
}
