package resset

import (
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// TypeAction is the type number of the Action caveat.
const TypeAction caveat.CaveatType = 26

// ActionCaveat (type 26, JSON name "Action") limits every access to a mask,
// whatever the resource. Body: the mask as a bare uint; JSON: the mask
// string, e.g. "rw".
type ActionCaveat Action

// CaveatType implements caveat.Caveat.
func (c *ActionCaveat) CaveatType() caveat.CaveatType { return TypeAction }

// AppendBody implements caveat.Caveat.
func (c *ActionCaveat) AppendBody(b []byte) []byte { return msgpack.AppendUint(b, uint64(*c)) }

// Prohibits implements caveat.Caveat: the access's action must be a subset.
func (c *ActionCaveat) Prohibits(a caveat.Access) error {
	action, err := actionOf(a, "Action")
	if err != nil {
		return err
	}
	if !action.IsSubsetOf(Action(*c)) {
		return ActionDenied(action, Action(*c), "")
	}
	return nil
}

// MarshalJSON renders the mask string.
func (c ActionCaveat) MarshalJSON() ([]byte, error) { return Action(c).MarshalJSON() }

// UnmarshalJSON parses a mask string.
func (c *ActionCaveat) UnmarshalJSON(b []byte) error { return (*Action)(c).UnmarshalJSON(b) }

// ReadMask reads a body that is exactly one canonical mask: a uint of at
// most 16 bits.
func ReadMask(body []byte) (Action, error) {
	r := msgpack.NewStrictReader(body)
	m, err := r.ReadUint()
	if err != nil {
		return 0, err
	}
	if m > uint64(ActionStar) {
		return 0, fmt.Errorf("mask %#x is wider than 16 bits", m)
	}
	return Action(m), r.ExpectEnd()
}

func init() {
	caveat.Register(caveat.Info{
		Type: TypeAction,
		Name: "Action",
		New:  func() caveat.Caveat { return new(ActionCaveat) },
		Decode: func(b []byte) (caveat.Caveat, error) {
			m, err := ReadMask(b)
			if err != nil {
				return nil, err
			}
			c := ActionCaveat(m)
			return &c, nil
		},
		Canonical: func(b []byte) error {
			_, err := ReadMask(b)
			return err
		},
		Check: func(b []byte, a caveat.Access) error {
			m, err := ReadMask(b)
			if err != nil {
				return caveat.BadCaveat(err)
			}
			c := ActionCaveat(m)
			return c.Prohibits(a)
		},
	})
}
