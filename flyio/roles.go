package flyio

import (
	"fmt"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/resset"
)

// Role is a mask of organization roles (spec §6.5).
type Role uint32

// The roles. Admin has every bit, so an admin holds every role.
const (
	RoleMember         Role = 0x1
	RoleBillingManager Role = 0x2
	RoleAdmin          Role = 0xffffffff
)

func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleMember:
		return "member"
	case RoleBillingManager:
		return "billing_manager"
	}
	var names []string
	for _, x := range []Role{RoleMember, RoleBillingManager} {
		if r&x != 0 {
			names = append(names, x.String())
			r &^= x
		}
	}
	if r != 0 {
		names = append(names, fmt.Sprintf("%#x", uint32(r)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// memberFeatures are the organization features a member may use, with the
// actions allowed; any other feature (and the empty name) needs an admin.
var memberFeatures = map[string]resset.Action{
	"wg": resset.ActionAll, "domain": resset.ActionAll, "site": resset.ActionAll,
	"builder": resset.ActionAll, "addon": resset.ActionAll, "checks": resset.ActionAll,
	FeatureLiteFSCloud: resset.ActionAll,
	"membership":       resset.ActionRead, "billing": resset.ActionRead, "authentication": resset.ActionRead,
	"deletion": resset.ActionNone, "document_signing": resset.ActionNone,
}

// RequiredRole is the role an access needs: member, unless it uses an
// organization feature beyond what members may do there.
func (a *Access) RequiredRole() Role {
	if a.Feature == nil {
		return RoleMember
	}
	if m, ok := memberFeatures[*a.Feature]; ok && a.Action.IsSubsetOf(m) {
		return RoleMember
	}
	return RoleAdmin
}

// AllowedRoles (type 30) limits a token to what the given roles may do in
// the organization. Body: a bare uint (32 bits); JSON a number.
type AllowedRoles Role

// CaveatType implements caveat.Caveat.
func (c *AllowedRoles) CaveatType() caveat.CaveatType { return TypeAllowedRoles }

// AppendBody implements caveat.Caveat.
func (c *AllowedRoles) AppendBody(b []byte) []byte { return msgpack.AppendUint(b, uint64(*c)) }

func decodeAllowedRoles(body []byte) (AllowedRoles, error) {
	r := msgpack.NewStrictReader(body)
	v, err := r.ReadUint()
	if err != nil {
		return 0, err
	}
	if v > uint64(RoleAdmin) {
		return 0, fmt.Errorf("role mask %#x is wider than 32 bits", v)
	}
	return AllowedRoles(v), r.ExpectEnd()
}

// Prohibits implements caveat.Caveat.
func (c AllowedRoles) Prohibits(a caveat.Access) error {
	return rolesCheck("AllowedRoles", Role(c), a)
}

// IsMember (type 22, JSON alias "NoAdminFeatures") is AllowedRoles(member):
// it keeps a token away from admin-only features. Body: an empty array;
// JSON {}.
type IsMember struct{}

// CaveatType implements caveat.Caveat.
func (c *IsMember) CaveatType() caveat.CaveatType { return TypeIsMember }

// AppendBody implements caveat.Caveat.
func (c *IsMember) AppendBody(b []byte) []byte { return msgpack.AppendArrayHeader(b, 0) }

func decodeIsMember(body []byte) (IsMember, error) {
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(0); err != nil {
		return IsMember{}, err
	}
	return IsMember{}, r.ExpectEnd()
}

// Prohibits implements caveat.Caveat.
func (c IsMember) Prohibits(a caveat.Access) error { return rolesCheck("IsMember", RoleMember, a) }

func rolesCheck(name string, allowed Role, a caveat.Access) error {
	fa, err := access(a, name)
	if err != nil {
		return err
	}
	need := fa.RequiredRole()
	if allowed&need == need {
		return nil
	}
	what := "the organization"
	if fa.Feature != nil {
		what = fmt.Sprintf("feature %q", *fa.Feature)
	}
	return fmt.Errorf("%w: action %s on %s needs the %s role; the token allows only %s",
		caveat.ErrUnauthorizedForRole, fa.Action, what, need, allowed)
}

// IsUser (type 10, deprecated) records a user id and allows everything; it
// is metadata. Body: [id: uint]; JSON {"uint64": n}.
type IsUser struct {
	ID uint64 `json:"uint64"`
}

// CaveatType implements caveat.Caveat.
func (c *IsUser) CaveatType() caveat.CaveatType { return TypeIsUser }

// AppendBody implements caveat.Caveat.
func (c *IsUser) AppendBody(b []byte) []byte {
	return msgpack.AppendUint(msgpack.AppendArrayHeader(b, 1), c.ID)
}

func decodeIsUser(body []byte) (IsUser, error) {
	var c IsUser
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(1); err != nil {
		return c, err
	}
	var err error
	if c.ID, err = r.ReadUint(); err != nil {
		return c, fmt.Errorf("id: %w", err)
	}
	return c, r.ExpectEnd()
}

// Prohibits implements caveat.Caveat: IsUser never refuses.
func (c IsUser) Prohibits(caveat.Access) error { return nil }

func init() {
	caveat.Register(caveat.Def[AllowedRoles]{Name: "AllowedRoles", Decode: decodeAllowedRoles})
	caveat.Register(caveat.Def[IsMember]{Name: "IsMember", Aliases: []string{"NoAdminFeatures"}, Decode: decodeIsMember})
	caveat.Register(caveat.Def[IsUser]{Name: "IsUser", Decode: decodeIsUser})
}
