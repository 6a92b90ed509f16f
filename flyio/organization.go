package flyio

import (
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
	"github.com/caveatdev/caveat/resset"
)

// Type numbers of the flyio caveats (spec §5.2).
const (
	TypeOrganization      caveat.CaveatType = 0
	TypeVolumes           caveat.CaveatType = 2
	TypeApps              caveat.CaveatType = 3
	TypeFeatureSet        caveat.CaveatType = 5
	TypeMutations         caveat.CaveatType = 6
	TypeMachines          caveat.CaveatType = 7
	TypeIsUser            caveat.CaveatType = 10
	TypeMachineFeatureSet caveat.CaveatType = 14
	TypeFromMachineSource caveat.CaveatType = 15
	TypeClusters          caveat.CaveatType = 16
	TypeIsMember          caveat.CaveatType = 22
	TypeCommands          caveat.CaveatType = 27
	TypeAppFeatureSet     caveat.CaveatType = 28
	TypeStorageObjects    caveat.CaveatType = 29
	TypeAllowedRoles      caveat.CaveatType = 30
	TypeFlySrc            caveat.CaveatType = 31
)

// Organization (type 0) scopes a token to one organization and an action
// mask. ID 0 matches any organization. Every token caveat mints carries one.
// Body: [id: uint, mask]; JSON {"id": n, "mask": "rwcdC"}.
type Organization struct {
	ID   uint64        `json:"id"`
	Mask resset.Action `json:"mask"`
}

// CaveatType implements caveat.Caveat.
func (c *Organization) CaveatType() caveat.CaveatType { return TypeOrganization }

// AppendBody implements caveat.Caveat.
func (c *Organization) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 2)
	b = msgpack.AppendUint(b, c.ID)
	return msgpack.AppendUint(b, uint64(c.Mask))
}

func decodeOrganization(body []byte) (Organization, error) {
	var c Organization
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(2); err != nil {
		return c, err
	}
	var err error
	if c.ID, err = r.ReadUint(); err != nil {
		return c, fmt.Errorf("id: %w", err)
	}
	m, err := wire.ReadMask(r.Rest())
	if err != nil {
		return c, fmt.Errorf("mask: %w", err)
	}
	c.Mask = resset.Action(m)
	return c, nil
}

// Prohibits implements caveat.Caveat: the access must name the organization
// (or the caveat's ID be 0), and its action be a subset of the mask.
func (c Organization) Prohibits(a caveat.Access) error {
	fa, err := access(a, "Organization")
	if err != nil {
		return err
	}
	if fa.OrgID == nil {
		return fmt.Errorf("%w: the access names no organization", caveat.ErrResourceUnspecified)
	}
	if c.ID != 0 && c.ID != *fa.OrgID {
		return fmt.Errorf("%w: organization %d not allowed (allowed: %d)",
			caveat.ErrUnauthorizedForResource, *fa.OrgID, c.ID)
	}
	if !fa.Action.IsSubsetOf(c.Mask) {
		return resset.ActionDenied(fa.Action, c.Mask, fmt.Sprintf("organization %d", *fa.OrgID))
	}
	return nil
}

// access returns the *Access that every flyio caveat needs, or
// ErrInvalidAccess naming the caveat.
func access(a caveat.Access, caveatName string) (*Access, error) {
	fa, ok := a.(*Access)
	if !ok || fa == nil {
		return nil, fmt.Errorf("%w: %s caveat needs a flyio access, got %T",
			caveat.ErrInvalidAccess, caveatName, a)
	}
	return fa, nil
}

func init() {
	caveat.Register(caveat.Def[Organization]{
		Name:    "Organization",
		Aliases: []string{"DeprecatedOrganization"},
		Decode:  decodeOrganization,
	})
}
