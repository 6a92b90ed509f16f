package caveat

import (
	"encoding/json"
	"fmt"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// JSON of unregistered caveats is one-way and for display only (spec §5.4):
// the body is decoded without a schema, so map key types, integer widths and
// str versus bin are lost, and nothing rendered here can be turned back into
// the bytes that were MAC'd.

// MarshalJSON renders the body generically, for display: maps become JSON
// objects with string keys, byte strings Base64 strings, and integers exact
// JSON numbers (see msgpack.ReadAny). A body that is not well-formed
// MessagePack, or that holds a value JSON cannot show, is an error.
func (c *Unregistered) MarshalJSON() ([]byte, error) {
	v, err := msgpack.DecodeAny(c.Body)
	if err != nil {
		return nil, fmt.Errorf("unregistered caveat type %d: body: %w", uint64(c.Type), err)
	}
	return json.Marshal(v)
}

// UnmarshalJSON always fails: without a registration there is no way to
// know the wire encoding of a JSON body.
func (c *Unregistered) UnmarshalJSON([]byte) error {
	return fmt.Errorf("caveat type %d: %w", uint64(c.Type), errUnregisteredJSON)
}
