package caveat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// CaveatSet is an ordered list of caveats in wire form. On the wire it is a
// flat array [type1, body1, type2, body2, …] (spec §3.3).
type CaveatSet []RawCaveat

// NewCaveatSet encodes typed caveats into a set.
func NewCaveatSet(cs ...Caveat) CaveatSet {
	s := make(CaveatSet, len(cs))
	for i, c := range cs {
		s[i] = Encode(c)
	}
	return s
}

// AppendEncoded appends the flat-array encoding of the set.
func (s CaveatSet) AppendEncoded(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 2*len(s))
	for _, c := range s {
		b = msgpack.AppendUint(b, uint64(c.Type))
		b = append(b, c.Body...)
	}
	return b
}

// Decode returns the typed caveats of the set.
func (s CaveatSet) Decode() ([]Caveat, error) {
	out := make([]Caveat, len(s))
	for i, c := range s {
		v, err := c.Decode()
		if err != nil {
			return nil, fmt.Errorf("caveat %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

// ParseCaveatSet decodes an encoded caveat set strictly: every type number
// and every registered body must be canonical. Nil (c0) is refused. The
// returned caveats alias b.
func ParseCaveatSet(b []byte) (CaveatSet, error) {
	r := msgpack.NewStrictReader(b)
	s, err := readCaveatSet(&r, true, nil)
	if err != nil {
		return nil, err
	}
	if err := r.ExpectEnd(); err != nil {
		return nil, fmt.Errorf("%w: caveat set: %v", ErrMalformed, err)
	}
	return s, nil
}

// readCaveatSet reads a flat caveat set. Lenient mode accepts what the
// reference decoder accepts (nil for an empty set, any integer width, record
// bodies as maps) but refuses record bodies with the wrong number of fields.
// Strict mode also checks canonical encoding, recursively. When dst is given
// the caveats are appended to it.
func readCaveatSet(r *msgpack.Reader, strict bool, dst CaveatSet) (CaveatSet, error) {
	if !strict && r.TryNil() {
		return dst, nil
	}
	n, err := r.ReadArrayHeader()
	if err != nil {
		return nil, fmt.Errorf("%w: caveat set: %v", ErrMalformed, err)
	}
	if n%2 != 0 {
		return nil, fmt.Errorf("%w: bad caveat container: odd length %d", ErrMalformed, n)
	}
	if n/2 > MaxCaveats {
		return nil, fmt.Errorf("%w: %d caveats (limit %d)", ErrLimit, n/2, MaxCaveats)
	}
	if dst == nil {
		dst = make(CaveatSet, 0, n/2)
	}
	for i := 0; i < n/2; i++ {
		t, err := r.ReadUint()
		if err != nil {
			return nil, fmt.Errorf("%w: caveat %d type: %v", ErrMalformed, i, err)
		}
		body, err := r.ReadRaw()
		if err != nil {
			return nil, fmt.Errorf("%w: caveat %d body: %v", ErrMalformed, i, err)
		}
		c := RawCaveat{Type: CaveatType(t), Body: body}
		if strict {
			if err := c.Canonical(); err != nil {
				return nil, fmt.Errorf("caveat %d: %w", i, err)
			}
		} else if err := c.checkShape(); err != nil {
			return nil, fmt.Errorf("caveat %d: %w", i, err)
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// checkShape refuses a record body with the wrong number of fields, the one
// structural check the reference decoder makes on every registered caveat.
func (c RawCaveat) checkShape() error {
	info, ok := Lookup(c.Type)
	if !ok || info.Record == 0 {
		return nil
	}
	r := msgpack.NewReader(c.Body)
	if r.Peek() != msgpack.KindArray {
		return nil
	}
	n, _ := r.ReadArrayHeader()
	if n != info.Record {
		return fmt.Errorf("%w: %s caveat: number of fields in array-encoded record is %d, want %d",
			ErrMalformed, info.Name, n, info.Record)
	}
	return nil
}

// Clear evaluates every caveat of a verified set against the access (spec
// §5.5): the access must validate, then no caveat may object. Attestations at
// the top level are skipped. It returns nil when the access is allowed, and
// otherwise a *DeniedError (or several, joined) naming each caveat that
// refused. Clear does not allocate when the access is allowed.
func (s CaveatSet) Clear(a Access) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	var first error
	var more []error
	for i, c := range s {
		if c.Attestation() {
			continue
		}
		err := c.Check(a)
		if err == nil {
			continue
		}
		err = &DeniedError{Index: i, Caveat: c.Name(), Err: err}
		if first == nil {
			first = err
		} else {
			more = append(more, err)
		}
	}
	if more != nil {
		return &multiDenied{errs: append([]error{first}, more...)}
	}
	return first
}

// multiDenied joins several denials on one line each.
type multiDenied struct{ errs []error }

func (e *multiDenied) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e *multiDenied) Unwrap() []error { return e.errs }

// jsonCaveat is the JSON form of one caveat (spec §5.3).
type jsonCaveat struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
	// Error is set, for display only, when a registered caveat's body cannot
	// be decoded (it is not canonical); Raw then holds the body in hex.
	Error string `json:"error,omitempty"`
	Raw   string `json:"raw_hex,omitempty"`
}

// MarshalJSON renders the set as [{"type": NAME, "body": …}] (spec §5.3).
// Unregistered caveats are rendered generically for display; JSON is never a
// lossless form of a token.
func (s CaveatSet) MarshalJSON() ([]byte, error) {
	out := make([]jsonCaveat, len(s))
	for i, c := range s {
		out[i].Type = c.Name()
		v, err := c.Decode()
		if err == nil {
			out[i].Body, err = json.Marshal(v)
		}
		if err != nil {
			out[i].Body = json.RawMessage("null")
			out[i].Error = err.Error()
			out[i].Raw = fmt.Sprintf("%x", c.Body)
		}
	}
	return json.Marshal(out)
}

// ParseJSON parses a JSON caveat array (spec §5.3), as given to attenuate or
// mint. Bodies are decoded strictly: an unknown field, a value of the wrong
// type, an unknown type name or a type this process cannot encode is an
// error naming the caveat's index and, where there is one, the field.
func ParseJSON(data []byte) ([]Caveat, error) {
	var items []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("caveats JSON: want an array of {\"type\", \"body\"} objects: %w", jsonErr(err))
	}
	if dec.More() {
		return nil, errors.New("caveats JSON: unexpected data after the array")
	}
	out := make([]Caveat, 0, len(items))
	for i, raw := range items {
		c, err := parseOneJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("caveat %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseOneJSON(raw json.RawMessage) (Caveat, error) {
	var jc struct {
		Type *string         `json:"type"`
		Body json.RawMessage `json:"body"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jc); err != nil {
		return nil, jsonErr(err)
	}
	if jc.Type == nil {
		return nil, errors.New(`missing "type"`)
	}
	t, info, ok := LookupName(*jc.Type)
	if !ok {
		if t == TypeUnregistered {
			return nil, fmt.Errorf("unknown caveat type %q", *jc.Type)
		}
		return nil, fmt.Errorf("type %q: %w", *jc.Type, errUnregisteredJSON)
	}
	if len(jc.Body) == 0 {
		return nil, fmt.Errorf("%s: missing \"body\"", info.Name)
	}
	c := info.New()
	bd := json.NewDecoder(bytes.NewReader(jc.Body))
	bd.DisallowUnknownFields()
	if err := bd.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: %w", info.Name, jsonErr(err))
	}
	if v, ok := c.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", info.Name, err)
		}
	}
	return c, nil
}

// jsonErr rewrites encoding/json errors to name the field, without the
// Go type names that mean nothing to a user.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Errorf("field %q: cannot use a JSON %s here", te.Field, te.Value)
		}
		return fmt.Errorf("cannot use a JSON %s here", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return err
}
