package flyio

import (
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
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

func (c *Organization) decode(body []byte) error {
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(2); err != nil {
		return err
	}
	var err error
	if c.ID, err = r.ReadUint(); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	if c.Mask, err = resset.ReadMask(r.Rest()); err != nil {
		return fmt.Errorf("mask: %w", err)
	}
	return nil
}

// Prohibits implements caveat.Caveat: the access must name the organization
// (or the caveat's ID be 0), and its action be a subset of the mask.
func (c *Organization) Prohibits(a caveat.Access) error {
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

// registerDecoder registers a caveat type whose value type T decodes itself
// strictly. Canonical and Check, unless info sets them, decode into a T;
// the generic call makes that T escape, so types on the hot path set their
// own, which do not allocate.
func registerDecoder[T any, P interface {
	*T
	caveat.Caveat
	decode([]byte) error
}](info caveat.Info) {
	info.New = func() caveat.Caveat { return P(new(T)) }
	info.Decode = func(b []byte) (caveat.Caveat, error) {
		p := P(new(T))
		if err := p.decode(b); err != nil {
			return nil, err
		}
		return p, nil
	}
	if info.Canonical == nil {
		info.Canonical = func(b []byte) error {
			var v T
			return P(&v).decode(b)
		}
	}
	if info.Check == nil {
		info.Check = func(b []byte, a caveat.Access) error {
			var v T
			if err := P(&v).decode(b); err != nil {
				return caveat.BadCaveat(err)
			}
			return P(&v).Prohibits(a)
		}
	}
	caveat.Register(info)
}

func init() {
	registerDecoder[Organization](caveat.Info{
		Type:    TypeOrganization,
		Name:    "Organization",
		Aliases: []string{"DeprecatedOrganization"},
		Record:  2,
		Canonical: func(b []byte) error {
			var c Organization
			return c.decode(b)
		},
		Check: func(b []byte, a caveat.Access) error {
			var c Organization
			if err := c.decode(b); err != nil {
				return caveat.BadCaveat(err)
			}
			return c.Prohibits(a)
		},
	})
}
