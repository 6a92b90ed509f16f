// Package resset holds the building blocks that Fly-style caveats are made
// of (spec §6): action masks, resource sets that map resource ids to masks,
// and the two generic caveats built on them, IfPresent (type 13) and Action
// (type 26).
//
// Like the caveat package, it does no I/O. Importing it registers its caveat
// types.
package resset

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/caveatdev/caveat"
)

// Action is a mask of the operations an access attempts or a caveat permits
// (spec §6.1). It is 16 bits wide on the wire; only the five low bits have
// letters.
type Action uint16

// The action bits, and the masks for everything and nothing.
const (
	ActionRead    Action = 1 << 0 // r
	ActionWrite   Action = 1 << 1 // w
	ActionCreate  Action = 1 << 2 // c
	ActionDelete  Action = 1 << 3 // d
	ActionControl Action = 1 << 4 // C

	// ActionAll is every lettered bit, "rwcdC".
	ActionAll Action = 0x1f
	// ActionStar is what the string "*" parses to: every bit, including
	// those without letters. It prints as "rwcdC".
	ActionStar Action = 0xffff
	ActionNone Action = 0
)

const actionLetters = "rwcdC"

// ParseAction parses a mask string: exactly "*" is every bit; otherwise each
// of r, w, c, d, C sets its bit and other characters are ignored, as the
// reference implementation does (so "r*" is just r).
func ParseAction(s string) Action {
	if s == "*" {
		return ActionStar
	}
	var a Action
	for i := 0; i < len(s); i++ {
		if j := strings.IndexByte(actionLetters, s[i]); j >= 0 {
			a |= 1 << j
		}
	}
	return a
}

// String returns the letters of the set bits in the order r w c d C; bits
// without letters are not printed and the empty mask is "".
func (a Action) String() string {
	var b [len(actionLetters)]byte
	n := 0
	for i := 0; i < len(actionLetters); i++ {
		if a&(1<<i) != 0 {
			b[n] = actionLetters[i]
			n++
		}
	}
	return string(b[:n])
}

// IsSubsetOf reports whether every bit of a is in m.
func (a Action) IsSubsetOf(m Action) bool { return a&m == a }

// Remove returns the bits of a that are not in m: what m does not permit.
func (a Action) Remove(m Action) Action { return a &^ m }

// MarshalJSON encodes the mask as its letter string (spec §5.3).
func (a Action) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// ParseActionStrict parses a mask that a person wrote: "*", or letters of
// r, w, c, d, C. Unlike ParseAction (the spec's rule for reading masks,
// which ignores unknown characters), any other character is an error, so
// that a typo such as "rX", "R" or "all" is not silently narrowed.
func ParseActionStrict(s string) (Action, error) {
	if s == "*" {
		return ActionStar, nil
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(actionLetters, s[i]) < 0 {
			return 0, fmt.Errorf(`action mask %q: unknown letter %q (the letters are r w c d C, or "*" for every action)`, s, s[i:i+1])
		}
	}
	return ParseAction(s), nil
}

// UnmarshalJSON decodes a mask string with ParseActionStrict: JSON masks
// are written by people (caveats to attenuate with, accesses to check), and
// a typo must not narrow or widen a mask silently. A number is an error:
// masks are always strings in JSON.
func (a *Action) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`an action mask is a string of the letters "rwcdC", or "*"`)
	}
	v, err := ParseActionStrict(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Actor is implemented by accesses that attempt an action. The Action and
// IfPresent caveats, and every resource set, need one; for other accesses
// they fail with caveat.ErrInvalidAccess.
type Actor interface {
	caveat.Access
	// GetAction returns the attempted action; none (0) is a subset of
	// every mask.
	GetAction() Action
}

// actionOf returns the access's action, or ErrInvalidAccess naming the
// caveat that needed it.
func actionOf(a caveat.Access, caveatName string) (Action, error) {
	act, ok := a.(Actor)
	if !ok {
		return 0, fmt.Errorf("%w: %s caveat needs an access with an action, got %T",
			caveat.ErrInvalidAccess, caveatName, a)
	}
	return act.GetAction(), nil
}

// ActionDenied returns the ErrUnauthorizedForAction error for an action
// that the permitted mask does not cover, naming the bits that are missing;
// on is the resource ("app 555"), or "" when the mask applies to everything.
// For example: "unauthorized for action: action rw on app 20: w not
// permitted (permitted: r)".
func ActionDenied(action, permitted Action, on string) error {
	where := ""
	if on != "" {
		where = " on " + on
	}
	return fmt.Errorf("%w: action %s%s: %s not permitted (permitted: %s)", caveat.ErrUnauthorizedForAction,
		quoteMask(action), where, quoteMask(action.Remove(permitted)), quoteMask(permitted))
}

// quoteMask prints a mask for an error message: "none" for 0, and bits
// without letters in hexadecimal.
func quoteMask(a Action) string {
	s := a.String()
	if extra := a &^ ActionAll; extra != 0 {
		s += fmt.Sprintf("+%#x", uint16(extra))
	}
	if s == "" {
		return "none"
	}
	return s
}
