package cli

import (
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
)

// decodeAccess reads --access strictly into a flyio.Access (spec §6.4 field
// names; an unknown field is an error) happening at now.
func decodeAccess(data []byte, now time.Time) (caveat.Access, error) {
	a := &flyio.Access{}
	if err := decodeStrictJSON(data, a); err != nil {
		return nil, failf("--access: %v", err).
			withHint("run 'caveat tokens check --help' for the access fields")
	}
	a.Time = now
	return a, nil
}
