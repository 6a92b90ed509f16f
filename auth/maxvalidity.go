package auth

import (
	"fmt"
	"math"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// TypeMaxValidity is the type number of MaxValidity.
const TypeMaxValidity caveat.CaveatType = 21

// MaxValidity (type 21) limits the lifetime of the discharge that the third
// party issues, in whole seconds. Body: a bare uint; JSON a bare number.
type MaxValidity uint64

// NewMaxValidity returns a limit of d, rounded down to whole seconds.
// Negative durations give a limit of zero.
func NewMaxValidity(d time.Duration) *MaxValidity {
	c := MaxValidity(max(d/time.Second, 0))
	return &c
}

// Duration returns the limit, saturating at the largest time.Duration.
func (c *MaxValidity) Duration() time.Duration {
	if uint64(*c) > math.MaxInt64/uint64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(*c) * time.Second
}

// CaveatType implements caveat.Caveat.
func (c *MaxValidity) CaveatType() caveat.CaveatType { return TypeMaxValidity }

// AppendBody implements caveat.Caveat.
func (c *MaxValidity) AppendBody(b []byte) []byte { return msgpack.AppendUint(b, uint64(*c)) }

// Prohibits implements caveat.Caveat: Expiry − Now must not exceed the
// limit. A request with no Expiry asks for a discharge that never expires,
// which no limit allows.
func (c MaxValidity) Prohibits(a caveat.Access) error {
	r, err := request("MaxValidity", a)
	if err != nil {
		return err
	}
	limit := c.Duration()
	if r.Expiry.IsZero() {
		return fmt.Errorf("%w: a discharge without expiry exceeds max validity window (%v)",
			caveat.ErrUnauthorized, limit)
	}
	if d := r.Expiry.Sub(r.Now()); d > limit {
		return fmt.Errorf("%w: %v exceeds max validity window (%v)", caveat.ErrUnauthorized, d, limit)
	}
	return nil
}

func init() {
	caveat.Register(caveat.Def[MaxValidity]{Name: "MaxValidity", Decode: func(b []byte) (MaxValidity, error) {
		s, err := readUint(b)
		return MaxValidity(s), err
	}})
}
