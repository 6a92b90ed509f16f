package caveat

import (
	"fmt"
	"time"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// ValidityWindow (type 4) limits a token, or a discharge, to a time range.
// Both bounds are Unix seconds and inclusive; the access's Now may have
// sub-second precision, so NotAfter + 0.5 s is already outside.
type ValidityWindow struct {
	NotBefore int64 `json:"not_before"`
	NotAfter  int64 `json:"not_after"`
}

// NewValidityWindow returns a window from now until now+d, in whole seconds.
func NewValidityWindow(now time.Time, d time.Duration) *ValidityWindow {
	return &ValidityWindow{NotBefore: now.Unix(), NotAfter: now.Add(d).Unix()}
}

// CaveatType implements Caveat.
func (c *ValidityWindow) CaveatType() CaveatType { return TypeValidityWindow }

// AppendBody implements Caveat: [not_before: int, not_after: int].
func (c *ValidityWindow) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 2)
	b = msgpack.AppendInt(b, c.NotBefore)
	return msgpack.AppendInt(b, c.NotAfter)
}

// decodeValidityWindow reads a body strictly.
func decodeValidityWindow(body []byte) (ValidityWindow, error) {
	var c ValidityWindow
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(2); err != nil {
		return c, err
	}
	var err error
	if c.NotBefore, err = r.ReadInt(); err != nil {
		return c, err
	}
	if c.NotAfter, err = r.ReadInt(); err != nil {
		return c, err
	}
	return c, r.ExpectEnd()
}

// Prohibits implements Caveat.
func (c ValidityWindow) Prohibits(a Access) error {
	now := a.Now()
	if now.Before(time.Unix(c.NotBefore, 0)) {
		return fmt.Errorf("%w: not valid before %s (now %s)", ErrUnauthorized,
			formatUnix(c.NotBefore), now.UTC().Format(time.RFC3339))
	}
	if now.After(time.Unix(c.NotAfter, 0)) {
		return fmt.Errorf("%w: expired at %s (now %s)", ErrUnauthorized,
			formatUnix(c.NotAfter), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// NotAfterTime returns the end of the window.
func (c *ValidityWindow) NotAfterTime() time.Time { return time.Unix(c.NotAfter, 0) }

func formatUnix(s int64) string { return time.Unix(s, 0).UTC().Format(time.RFC3339) }

// BadCaveat wraps a body decoding error as a refusal (ErrBadCaveat), for a
// caveat that finds its own body malformed when asked to clear an access.
func BadCaveat(err error) error { return fmt.Errorf("%w: %v", ErrBadCaveat, err) }

func init() {
	Register(Def[ValidityWindow]{Name: "ValidityWindow", Decode: decodeValidityWindow})
}
