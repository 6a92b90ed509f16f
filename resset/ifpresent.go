package resset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// TypeIfPresent is the type number of IfPresent.
const TypeIfPresent caveat.CaveatType = 13

// IfPresent (type 13) applies its inner caveats only where they apply, and
// a fallback mask elsewhere (spec §6.3). An inner caveat is relevant unless
// it refuses with caveat.ErrResourceUnspecified (the access does not name
// its resource). When some are relevant, the access must pass every relevant
// one; when none is, the access's action must be a subset of Else.
//
// For example, {ifs: [FeatureSet{wg: *, builder: *}], else: r} allows
// anything on those two features and only reads elsewhere.
//
// Body: [ifs: caveat set, else: mask]. JSON: {"ifs": [caveat…], "else": "r"}.
// Ifs must be a caveat set: nil ifs (c0) is refused on decoding, as it
// crashes the reference implementation.
type IfPresent struct {
	Ifs  caveat.CaveatSet `json:"ifs"`
	Else Action           `json:"else"`
}

// CaveatType implements caveat.Caveat.
func (c *IfPresent) CaveatType() caveat.CaveatType { return TypeIfPresent }

// AppendBody implements caveat.Caveat.
func (c *IfPresent) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 2)
	b = c.Ifs.AppendEncoded(b)
	return msgpack.AppendUint(b, uint64(c.Else))
}

// Prohibits implements caveat.Caveat.
func (c IfPresent) Prohibits(a caveat.Access) error { return checkIfPresent(c.AppendBody(nil), a) }

// NestedCaveats implements caveat.Nested.
func (c *IfPresent) NestedCaveats() caveat.CaveatSet { return c.Ifs }

// UnmarshalJSON decodes {"ifs": [...], "else": "r"}. Field names match
// case-insensitively, as everywhere in caveat JSON; unknown fields and a
// missing or null ifs are errors.
func (c *IfPresent) UnmarshalJSON(b []byte) error {
	var aux struct {
		Ifs  json.RawMessage `json:"ifs"`
		Else Action          `json:"else"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if len(aux.Ifs) == 0 || string(aux.Ifs) == "null" {
		return errors.New(`field "ifs": want an array of caveats`)
	}
	inner, err := caveat.ParseJSON(aux.Ifs)
	if err != nil {
		return fmt.Errorf(`field "ifs": %w`, err)
	}
	c.Ifs, c.Else = caveat.NewCaveatSet(inner...), aux.Else
	return nil
}

// splitIfPresent reads a body strictly into its encoded ifs and its mask.
func splitIfPresent(body []byte) (ifs []byte, els Action, err error) {
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(2); err != nil {
		return nil, 0, err
	}
	if r.TryNil() {
		return nil, 0, errors.New("ifs is nil, not a caveat set")
	}
	if ifs, err = r.ReadRaw(); err != nil {
		return nil, 0, fmt.Errorf("ifs: %w", err)
	}
	m, err := r.ReadUint()
	if err != nil {
		return nil, 0, fmt.Errorf("else: %w", err)
	}
	if m > uint64(ActionStar) {
		return nil, 0, fmt.Errorf("else: mask %#x is wider than 16 bits", m)
	}
	return ifs, Action(m), r.ExpectEnd()
}

// innerCaveats walks an encoded caveat set strictly, without allocating.
type innerCaveats struct {
	r    msgpack.Reader
	n, i int
}

func newInnerCaveats(ifs []byte) (innerCaveats, error) {
	it := innerCaveats{r: msgpack.NewStrictReader(ifs)}
	n, err := it.r.ReadArrayHeader()
	if err != nil {
		return it, fmt.Errorf("ifs: %w", err)
	}
	if n%2 != 0 {
		return it, fmt.Errorf("ifs: odd caveat set length %d", n)
	}
	if n/2 > caveat.MaxCaveats {
		return it, fmt.Errorf("ifs: %d caveats (limit %d)", n/2, caveat.MaxCaveats)
	}
	it.n = n / 2
	return it, nil
}

func (it *innerCaveats) more() bool { return it.i < it.n }

func (it *innerCaveats) next() (caveat.RawCaveat, error) {
	t, err := it.r.ReadUint()
	if err != nil {
		return caveat.RawCaveat{}, fmt.Errorf("ifs caveat %d type: %w", it.i, err)
	}
	body, err := it.r.ReadRaw()
	if err != nil {
		return caveat.RawCaveat{}, fmt.Errorf("ifs caveat %d body: %w", it.i, err)
	}
	it.i++
	return caveat.RawCaveat{Type: caveat.CaveatType(t), Body: body}, nil
}

// canonicalIfPresent is the fast path of Canonical: the body is strict and
// every inner caveat is canonical.
func canonicalIfPresent(body []byte) error {
	ifs, _, err := splitIfPresent(body)
	if err != nil {
		return err
	}
	it, err := newInnerCaveats(ifs)
	if err != nil {
		return err
	}
	for it.more() {
		c, err := it.next()
		if err != nil {
			return err
		}
		if err := c.Canonical(); err != nil {
			return fmt.Errorf("ifs caveat %d: %w", it.i-1, err)
		}
	}
	return nil
}

func decodeIfPresent(body []byte) (IfPresent, error) {
	if err := canonicalIfPresent(body); err != nil {
		return IfPresent{}, err
	}
	ifs, els, _ := splitIfPresent(body)
	set, err := caveat.ParseCaveatSet(ifs)
	if err != nil {
		return IfPresent{}, fmt.Errorf("ifs: %w", err)
	}
	return IfPresent{Ifs: set, Else: els}, nil
}

// checkIfPresent is the one implementation of IfPresent's semantics, on the
// encoded body. It allocates only to report a refusal.
func checkIfPresent(body []byte, a caveat.Access) error {
	ifs, els, err := splitIfPresent(body)
	if err != nil {
		return caveat.BadCaveat(err)
	}
	action, err := actionOf(a, "IfPresent")
	if err != nil {
		return err
	}
	it, err := newInnerCaveats(ifs)
	if err != nil {
		return caveat.BadCaveat(err)
	}
	relevant := false
	var denied []error
	for it.more() {
		c, err := it.next()
		if err != nil {
			return caveat.BadCaveat(err)
		}
		err = c.Check(a)
		if errors.Is(err, caveat.ErrResourceUnspecified) {
			continue
		}
		relevant = true
		if err != nil {
			denied = append(denied, fmt.Errorf("ifs caveat %d (%s): %w", it.i-1, c.Name(), err))
		}
	}
	switch {
	case len(denied) == 1:
		return denied[0]
	case len(denied) > 1:
		return errors.Join(denied...)
	case !relevant && !action.IsSubsetOf(els):
		return fmt.Errorf("no ifs caveat applies to the access, so else decides: %w",
			ActionDenied(action, els, ""))
	}
	return nil
}

func init() {
	// Decoding would copy the inner caveats into a new set: verification
	// and clearing walk the encoded body instead.
	fastpath.Set(uint64(TypeIfPresent), fastpath.Paths[caveat.Access]{
		Canonical: canonicalIfPresent,
		Check:     checkIfPresent,
	})
	caveat.Register(caveat.Def[IfPresent]{Name: "IfPresent", Decode: decodeIfPresent})
}
