package msgpack

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// Generic decoding, for displaying values whose schema is unknown: the
// bodies of unregistered caveats (spec §5.4). The result is meant for
// encoding/json, not for re-encoding: map key types are lost.

// DecodeAny decodes b, which must hold exactly one value, with a lenient
// Reader. See ReadAny for the result's types.
func DecodeAny(b []byte) (any, error) {
	r := NewReader(b)
	v, err := r.ReadAny()
	if err != nil {
		return nil, err
	}
	if err := r.ExpectEnd(); err != nil {
		return nil, err
	}
	return v, nil
}

// ReadAny consumes one value of any supported kind and returns it as a value
// that encoding/json renders faithfully:
//
//   - nil as nil, booleans as bool;
//   - integers as uint64 when non-negative and int64 when negative, so that
//     every value is exact, including those above 2^63;
//   - str as string, bin as []byte (which encoding/json writes as Base64);
//   - arrays as []any;
//   - maps as map[string]any. String keys are kept, integer keys become
//     decimal strings, bin keys Base64, booleans and nil "true", "false" and
//     "null", and array or map keys their JSON text (at most 1 KiB). Two
//     keys that render alike are an error.
//
// Nesting deeper than MaxDepth fails with ErrTooDeep. A strict Reader also
// checks the canonical encoding, apart from map key order. Nothing in the
// result aliases the input.
func (r *Reader) ReadAny() (any, error) {
	start := r.off
	v, err := r.readAny(0)
	if err != nil {
		r.off = start
		return nil, err
	}
	return v, nil
}

// maxPrealloc bounds the capacity reserved from a header's count, so that a
// chain of nested headers each claiming the rest of the input cannot reserve
// MaxDepth times its size.
const maxPrealloc = 64

func (r *Reader) readAny(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, ErrTooDeep
	}
	switch r.Peek() {
	case KindInvalid:
		return nil, ErrTruncated
	case KindNil:
		r.off++
		return nil, nil
	case KindBool:
		return r.ReadBool()
	case KindUint:
		return r.ReadUint()
	case KindInt:
		v, err := r.ReadInt()
		if err != nil {
			return nil, err
		}
		if v >= 0 { // a signed code for a non-negative value (lenient only)
			return uint64(v), nil
		}
		return v, nil
	case KindStr:
		s, err := r.ReadStr()
		return string(s), err
	case KindBin:
		b, err := r.ReadBin()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case KindArray:
		n, err := r.ReadArrayHeader()
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, min(n, maxPrealloc))
		for i := 0; i < n; i++ {
			v, err := r.readAny(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case KindMap:
		n, err := r.ReadMapHeader()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, min(n, maxPrealloc))
		for i := 0; i < n; i++ {
			k, err := r.readAny(depth + 1)
			if err != nil {
				return nil, err
			}
			ks, err := keyString(k)
			if err != nil {
				return nil, err
			}
			if _, dup := out[ks]; dup {
				return nil, fmt.Errorf("%w: duplicate map key %q", ErrMalformed, ks)
			}
			if out[ks], err = r.readAny(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unsupported type 0x%02x", ErrMalformed, r.b[r.off])
}

// keyString renders a decoded map key as a JSON object key.
func keyString(k any) (string, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case uint64:
		return strconv.FormatUint(k, 10), nil
	case int64:
		return strconv.FormatInt(k, 10), nil
	case bool:
		return strconv.FormatBool(k), nil
	case nil:
		return "null", nil
	case []byte:
		return base64.StdEncoding.EncodeToString(k), nil
	}
	js, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("%w: map key: %v", ErrMalformed, err)
	}
	// JSON escapes the quotes of a key rendered one level down, so keys
	// nested in keys double in length at every level: bound them, or 32
	// levels of maps-as-keys take minutes and gigabytes to display.
	if len(js) > maxKeyLen {
		return "", fmt.Errorf("%w: map key of %d bytes as JSON (limit %d)", ErrMalformed, len(js), maxKeyLen)
	}
	return string(js), nil
}

// maxKeyLen bounds the JSON text of an array or map used as a map key.
const maxKeyLen = 1024
