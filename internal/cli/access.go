package cli

// TEMPORARY until the flyio package exists. --access decodes strictly into
// a stand-in with the JSON fields of spec §6.4, so that check's flow
// (decode, validate, verify, clear) works and is tested now with the core
// caveats (ValidityWindow); it only requires orgid. Flyio caveats are not
// registered yet, so they refuse every access (fail closed).
//
// When flyio lands: decode into flyio.Access with decodeStrictJSON, set its
// time from now, return it; delete pendingAccess; add the blank imports of
// flyio and resset to catalogue.go.

import (
	"fmt"
	"time"

	"github.com/caveatdev/caveat"
)

type pendingAccess struct {
	Action             string   `json:"action"`
	OrgID              *uint64  `json:"orgid"`
	AppID              *uint64  `json:"appid"`
	Machine            *string  `json:"machine"`
	Volume             *string  `json:"volume"`
	Feature            *string  `json:"feature"`
	AppFeature         *string  `json:"app_feature"`
	MachineFeature     *string  `json:"machine_feature"`
	Command            []string `json:"command"`
	Mutation           *string  `json:"mutation"`
	Cluster            *string  `json:"cluster"`
	StorageObject      *string  `json:"storage_object"`
	SourceMachine      *string  `json:"sourceMachine"`
	SourceApp          *string  `json:"sourceApp"`
	SourceOrganization *string  `json:"sourceOrganization"`
	now                time.Time
}

func (p *pendingAccess) Now() time.Time { return p.now }
func (p *pendingAccess) Validate() error {
	if p.OrgID == nil {
		return fmt.Errorf("%w: org", caveat.ErrResourceUnspecified)
	}
	return nil
}

func decodeAccess(data []byte, now time.Time) (caveat.Access, error) {
	p := &pendingAccess{now: now}
	if err := decodeStrictJSON(data, p); err != nil {
		return nil, failf("--access: %v", err).
			withHint("run 'caveat tokens check --help' for the access fields")
	}
	return p, nil
}
