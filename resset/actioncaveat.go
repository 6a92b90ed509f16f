package resset

import (
	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
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
func (c ActionCaveat) Prohibits(a caveat.Access) error {
	action, err := actionOf(a, "Action")
	if err != nil {
		return err
	}
	if !action.IsSubsetOf(Action(c)) {
		return ActionDenied(action, Action(c), "")
	}
	return nil
}

// MarshalJSON renders the mask string.
func (c ActionCaveat) MarshalJSON() ([]byte, error) { return Action(c).MarshalJSON() }

// UnmarshalJSON parses a mask string.
func (c *ActionCaveat) UnmarshalJSON(b []byte) error { return (*Action)(c).UnmarshalJSON(b) }

func decodeActionCaveat(b []byte) (ActionCaveat, error) {
	m, err := wire.ReadMask(b)
	return ActionCaveat(m), err
}

func init() {
	caveat.Register(caveat.Def[ActionCaveat]{Name: "Action", Decode: decodeActionCaveat})
}
