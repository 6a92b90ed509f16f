package auth

import (
	"fmt"
	"strconv"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// Type numbers of the Confine* caveats (spec §5.2).
const (
	TypeConfineUser         caveat.CaveatType = 8
	TypeConfineOrganization caveat.CaveatType = 9
	TypeConfineGoogleHD     caveat.CaveatType = 19
	TypeConfineGitHubOrg    caveat.CaveatType = 20
)

// ConfineUser (type 8) requires the discharge request to carry the Fly.io
// account with this user id. Body: [id: uint]; JSON {"id": n}.
type ConfineUser struct {
	ID uint64 `json:"id"`
}

// CaveatType implements caveat.Caveat.
func (c *ConfineUser) CaveatType() caveat.CaveatType { return TypeConfineUser }

// AppendBody implements caveat.Caveat.
func (c *ConfineUser) AppendBody(b []byte) []byte { return appendRecordUint(b, c.ID) }

// Prohibits implements caveat.Caveat: some Fly.io identity must have the
// user id.
func (c ConfineUser) Prohibits(a caveat.Access) error {
	r, err := request("ConfineUser", a)
	if err != nil {
		return err
	}
	for _, id := range r.Flyio {
		if id.UserID == c.ID {
			return nil
		}
	}
	var got []string
	for _, id := range r.Flyio {
		got = append(got, strconv.FormatUint(id.UserID, 10))
	}
	cp := c // declared here, so that only a refusal moves a copy to the heap
	return &IdentityError{Caveat: &cp, Want: fmt.Sprintf("Fly.io account %d", c.ID), Got: got}
}

// ConfineOrganization (type 9) requires some Fly.io identity of the
// discharge request to be a member of this organization. Body: [id: uint];
// JSON {"id": n}.
type ConfineOrganization struct {
	ID uint64 `json:"id"`
}

// CaveatType implements caveat.Caveat.
func (c *ConfineOrganization) CaveatType() caveat.CaveatType { return TypeConfineOrganization }

// AppendBody implements caveat.Caveat.
func (c *ConfineOrganization) AppendBody(b []byte) []byte { return appendRecordUint(b, c.ID) }

// Prohibits implements caveat.Caveat: the id must be among the union of the
// Fly.io identities' organizations.
func (c ConfineOrganization) Prohibits(a caveat.Access) error {
	r, err := request("ConfineOrganization", a)
	if err != nil {
		return err
	}
	for _, id := range r.Flyio {
		for _, org := range id.OrganizationIDs {
			if org == c.ID {
				return nil
			}
		}
	}
	var got []string
	for _, id := range r.Flyio {
		for _, org := range id.OrganizationIDs {
			got = append(got, strconv.FormatUint(org, 10))
		}
	}
	cp := c
	return &IdentityError{Caveat: &cp,
		Want: fmt.Sprintf("Fly.io account with access to organization %d", c.ID), Got: got}
}

// ConfineGoogleHD (type 19) requires a Google identity of the discharge
// request in this hosted domain. Body: a bare str; JSON a bare string.
// Domains are compared exactly, as the reference library does.
type ConfineGoogleHD string

// CaveatType implements caveat.Caveat.
func (c *ConfineGoogleHD) CaveatType() caveat.CaveatType { return TypeConfineGoogleHD }

// AppendBody implements caveat.Caveat.
func (c *ConfineGoogleHD) AppendBody(b []byte) []byte { return msgpack.AppendStr(b, string(*c)) }

// Prohibits implements caveat.Caveat: some Google identity must have the
// hosted domain.
func (c ConfineGoogleHD) Prohibits(a caveat.Access) error {
	return prohibitsGoogleHD(string(c), a)
}

// prohibitsGoogleHD is shared by Prohibits and the check on the encoded
// body, which has the domain as bytes of the body.
func prohibitsGoogleHD[S string | []byte](hd S, a caveat.Access) error {
	r, err := request("ConfineGoogleHD", a)
	if err != nil {
		return err
	}
	for _, id := range r.Google {
		if string(hd) == id.HD {
			return nil
		}
	}
	var got []string
	for _, id := range r.Google {
		got = append(got, id.HD)
	}
	c := ConfineGoogleHD(hd)
	return &IdentityError{Caveat: &c, Want: string(hd) + " Google account", Got: got}
}

// ConfineGitHubOrg (type 20) requires some GitHub identity of the discharge
// request to be a member of this organization. Body: a bare uint; JSON a
// bare number.
type ConfineGitHubOrg uint64

// CaveatType implements caveat.Caveat.
func (c *ConfineGitHubOrg) CaveatType() caveat.CaveatType { return TypeConfineGitHubOrg }

// AppendBody implements caveat.Caveat.
func (c *ConfineGitHubOrg) AppendBody(b []byte) []byte { return msgpack.AppendUint(b, uint64(*c)) }

// Prohibits implements caveat.Caveat: the id must be among the union of the
// GitHub identities' organizations.
func (c ConfineGitHubOrg) Prohibits(a caveat.Access) error {
	r, err := request("ConfineGitHubOrg", a)
	if err != nil {
		return err
	}
	for _, id := range r.GitHub {
		for _, org := range id.OrgIDs {
			if org == uint64(c) {
				return nil
			}
		}
	}
	var got []string
	for _, id := range r.GitHub {
		for _, org := range id.OrgIDs {
			got = append(got, strconv.FormatUint(org, 10))
		}
	}
	cp := c
	return &IdentityError{Caveat: &cp,
		Want: fmt.Sprintf("GitHub account with access to organization %d", uint64(c)), Got: got}
}

// appendRecordUint appends the one-field record [v].
func appendRecordUint(b []byte, v uint64) []byte {
	b = msgpack.AppendArrayHeader(b, 1)
	return msgpack.AppendUint(b, v)
}

// readRecordUint decodes the one-field record [v: uint] strictly.
func readRecordUint(body []byte) (uint64, error) {
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(1); err != nil {
		return 0, err
	}
	v, err := r.ReadUint()
	if err != nil {
		return 0, err
	}
	return v, r.ExpectEnd()
}

// readUint decodes a bare uint body strictly.
func readUint(body []byte) (uint64, error) {
	r := msgpack.NewStrictReader(body)
	v, err := r.ReadUint()
	if err != nil {
		return 0, err
	}
	return v, r.ExpectEnd()
}

// readStr decodes a bare str body strictly; the result aliases body.
func readStr(body []byte) ([]byte, error) {
	r := msgpack.NewStrictReader(body)
	v, err := r.ReadStr()
	if err != nil {
		return nil, err
	}
	return v, r.ExpectEnd()
}

func init() {
	caveat.Register(caveat.Def[ConfineUser]{Name: "ConfineUser", Decode: func(b []byte) (ConfineUser, error) {
		id, err := readRecordUint(b)
		return ConfineUser{ID: id}, err
	}})
	caveat.Register(caveat.Def[ConfineOrganization]{Name: "ConfineOrganization", Decode: func(b []byte) (ConfineOrganization, error) {
		id, err := readRecordUint(b)
		return ConfineOrganization{ID: id}, err
	}})
	// Decoding would copy the domain into a string: the checks read it in
	// the body.
	fastpath.Set(uint64(TypeConfineGoogleHD), fastpath.Paths[caveat.Access]{
		Canonical: func(b []byte) error { _, err := readStr(b); return err },
		Check: func(b []byte, a caveat.Access) error {
			hd, err := readStr(b)
			if err != nil {
				return caveat.BadCaveat(err)
			}
			return prohibitsGoogleHD(hd, a)
		},
	})
	caveat.Register(caveat.Def[ConfineGoogleHD]{Name: "ConfineGoogleHD", Decode: func(b []byte) (ConfineGoogleHD, error) {
		hd, err := readStr(b)
		return ConfineGoogleHD(hd), err
	}})
	caveat.Register(caveat.Def[ConfineGitHubOrg]{Name: "ConfineGitHubOrg", Decode: func(b []byte) (ConfineGitHubOrg, error) {
		id, err := readUint(b)
		return ConfineGitHubOrg(id), err
	}})
}
