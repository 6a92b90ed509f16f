package flyio

import (
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// FromMachineSource (type 15) allows only requests made from one machine
// (Access.SourceMachine). Body: [id: str]; JSON {"id": "…"}.
type FromMachineSource struct {
	ID string `json:"id"`
}

// CaveatType implements caveat.Caveat.
func (c *FromMachineSource) CaveatType() caveat.CaveatType { return TypeFromMachineSource }

// AppendBody implements caveat.Caveat.
func (c *FromMachineSource) AppendBody(b []byte) []byte {
	return msgpack.AppendStr(msgpack.AppendArrayHeader(b, 1), c.ID)
}

func decodeFromMachineSource(body []byte) (FromMachineSource, error) {
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(1); err != nil {
		return FromMachineSource{}, err
	}
	id, err := r.ReadStr()
	if err != nil {
		return FromMachineSource{}, fmt.Errorf("id: %w", err)
	}
	return FromMachineSource{ID: string(id)}, r.ExpectEnd()
}

// Prohibits implements caveat.Caveat. An access that does not say which
// machine it comes from is ErrInvalidAccess (not ResourceUnspecified: the
// source is a fact about the request, not a resource).
func (c FromMachineSource) Prohibits(a caveat.Access) error {
	fa, err := access(a, "FromMachineSource")
	if err != nil {
		return err
	}
	return sourceCheck("machine", "sourceMachine", c.ID, fa.SourceMachine)
}

// FlySrc (type 31) allows only requests from a given organization, app and
// machine instance, as Fly's proxy reports them; an empty field matches any
// source. Body: [organization: str, app: str, instance: str]; JSON
// {"organization": s, "app": s, "instance": s}.
type FlySrc struct {
	Organization string `json:"organization"`
	App          string `json:"app"`
	Instance     string `json:"instance"`
}

// CaveatType implements caveat.Caveat.
func (c *FlySrc) CaveatType() caveat.CaveatType { return TypeFlySrc }

// AppendBody implements caveat.Caveat.
func (c *FlySrc) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 3)
	b = msgpack.AppendStr(b, c.Organization)
	b = msgpack.AppendStr(b, c.App)
	return msgpack.AppendStr(b, c.Instance)
}

func decodeFlySrc(body []byte) (FlySrc, error) {
	var c FlySrc
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(3); err != nil {
		return c, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"organization", &c.Organization}, {"app", &c.App}, {"instance", &c.Instance}} {
		s, err := r.ReadStr()
		if err != nil {
			return c, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = string(s)
	}
	return c, r.ExpectEnd()
}

// Prohibits implements caveat.Caveat: instance, app and organization are
// checked in that order against the access's source fields.
func (c FlySrc) Prohibits(a caveat.Access) error {
	fa, err := access(a, "FlySrc")
	if err != nil {
		return err
	}
	if c.Instance != "" {
		if err := sourceCheck("machine", "sourceMachine", c.Instance, fa.SourceMachine); err != nil {
			return err
		}
	}
	if c.App != "" {
		if err := sourceCheck("app", "sourceApp", c.App, fa.SourceApp); err != nil {
			return err
		}
	}
	if c.Organization != "" {
		return sourceCheck("organization", "sourceOrganization", c.Organization, fa.SourceOrganization)
	}
	return nil
}

func sourceCheck(what, field, want string, got *string) error {
	if got == nil {
		return fmt.Errorf("%w: the access does not say which %s it comes from (%s)",
			caveat.ErrInvalidAccess, what, field)
	}
	if *got != want {
		return fmt.Errorf("%w: request from %s %q, but only %q is allowed", caveat.ErrUnauthorized, what, *got, want)
	}
	return nil
}

func init() {
	caveat.Register(caveat.Def[FromMachineSource]{Name: "FromMachineSource", Decode: decodeFromMachineSource})
	caveat.Register(caveat.Def[FlySrc]{Name: "FlySrc", Decode: decodeFlySrc})
}
