package authority

// The token judging endpoints, in the shapes Fly's Machines API serves them
// (../shared/spec/machines-api.md, "Token judging endpoints"), so that a
// service written against superfly/macaroon's flyio/machinesapi client
// ports with a base-URL change. caveat's own fields ride along in the same
// objects (clients ignore unknown fields):
//
//	POST /v1/tokens/authenticate {"header"}
//	  → 200 [{"caveats", "permission_token", "token_id", "kind", …}] or 401 {"error"}
//	POST /v1/tokens/authorize {"header", "access": {"org_slug", "app_name", "machine_id", …}}
//	  → 200 {"access": {resolved, in the catalogue's form}, "verified_token": {…}, "allowed": true}
//	  or 400 / 401 / 403 (naming the caveat) / 404 (unknown organization, app or machine) {"error"}
//
// The access may also be given in the catalogue's form ({"orgid": 1,
// "appid": 2, …}), as caveat took it until now.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// NamedAccess is an access naming its resources by name, as Fly's
// machinesapi client sends it; the authority resolves the names and checks
// that they nest (the app belongs to the organization, the machine to the
// app). All fields are optional, but the hierarchy must be consistent.
type NamedAccess struct {
	OrgSlug        string        `json:"org_slug,omitempty"`
	AppName        string        `json:"app_name,omitempty"`
	MachineID      string        `json:"machine_id,omitempty"`
	VolumeID       string        `json:"volume_id,omitempty"`
	Action         resset.Action `json:"action,omitempty"`
	OrgFeature     string        `json:"org_feature,omitempty"`
	AppFeature     string        `json:"app_feature,omitempty"`
	MachineFeature string        `json:"machine_feature,omitempty"`
	Mutation       string        `json:"mutation,omitempty"`
	SourceMachine  string        `json:"source_machine,omitempty"`
	Command        []string      `json:"command,omitempty"`
	StorageObject  string        `json:"storage_object,omitempty"`
}

// namedFields are the JSON names that mark an access as named.
var namedFields = []string{"org_slug", "app_name", "machine_id", "volume_id", "org_feature", "source_machine"}

// AuthorizeJSON is the answer of POST /v1/tokens/authorize.
type AuthorizeJSON struct {
	// Access is the resolved access, in the catalogue's JSON form.
	Access *flyio.Access `json:"access"`
	// VerifiedToken is the permission token that allowed it.
	VerifiedToken api.VerifiedToken `json:"verified_token"`
	Allowed       bool              `json:"allowed"`
}

func (s *Service) verifiedJSON(ctx context.Context, p *Principal) (api.VerifiedToken, error) {
	out, err := s.principalJSON(ctx, p)
	out.PermissionToken = p.permissionToken
	return out, err
}

// parseAccess decodes an access in either form: the catalogue's (a), or
// by name (named, resolved once the caller is known).
func parseAccess(raw json.RawMessage) (a *flyio.Access, named *NamedAccess, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, nil, badRequest(`"access" must be a JSON object`)
	}
	isNamed := false
	for _, f := range namedFields {
		if _, ok := fields[f]; ok {
			isNamed = true
		}
	}
	if !isNamed {
		a = new(flyio.Access)
		if err := httpjson.Unmarshal(raw, a); err != nil {
			return nil, nil, badRequest(`"access": %v`, err)
		}
		return a, nil, nil
	}
	named = new(NamedAccess)
	if err := httpjson.Unmarshal(raw, named); err != nil {
		return nil, nil, badRequest(`"access": %v (an access by name takes org_slug, app_name, machine_id, volume_id, action, org_feature, app_feature, machine_feature, mutation, source_machine, command, storage_object)`, err)
	}
	return nil, named, nil
}

// resolve turns a named access into the catalogue's, checking that each
// resource belongs to its parent; an unknown one, or one of an
// organization the principal does not belong to, is a 404.
func (s *Service) resolve(ctx context.Context, p *Principal, n NamedAccess) (*flyio.Access, error) {
	switch {
	case n.OrgSlug == "":
		return nil, badRequest(`"access": org_slug is required`)
	case n.MachineID != "" && n.AppName == "", n.VolumeID != "" && n.AppName == "", n.AppFeature != "" && n.AppName == "":
		return nil, badRequest(`"access": machine_id, volume_id and app_feature need app_name`)
	case (len(n.Command) > 0 || n.MachineFeature != "") && n.MachineID == "":
		return nil, badRequest(`"access": command and machine_feature need machine_id`)
	}
	o, err := s.Organization(ctx, p, n.OrgSlug)
	if err != nil {
		return nil, err
	}
	a := &flyio.Access{OrgID: &o.ID, Action: n.Action}
	if n.AppName != "" {
		app, err := s.AppByName(ctx, p, o.ID, n.AppName)
		if err != nil {
			return nil, err
		}
		a.AppID = &app.ID
		if n.MachineID != "" {
			if err := s.machineOf(ctx, app, n.MachineID); err != nil {
				return nil, err
			}
			a.Machine = &n.MachineID
		}
	}
	opt := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	// Volumes are not modelled by caveat: a volume id is taken as given.
	a.Volume, a.Feature, a.AppFeature = opt(n.VolumeID), opt(n.OrgFeature), opt(n.AppFeature)
	a.MachineFeature, a.Mutation, a.SourceMachine = opt(n.MachineFeature), opt(n.Mutation), opt(n.SourceMachine)
	a.StorageObject = opt(n.StorageObject)
	if len(n.Command) > 0 {
		a.Command = n.Command
	}
	if err := a.Validate(); err != nil {
		return nil, badRequest(`"access": %v`, err)
	}
	return a, nil
}

// machineOf checks that the machine is the app's, when the store keeps
// machines (a server with the Machines API's store does).
func (s *Service) machineOf(ctx context.Context, app store.App, id string) error {
	ms, ok := s.cfg.Store.(interface {
		GetMachine(ctx context.Context, appID uint64, id string) (store.Machine, error)
	})
	if !ok {
		return nil
	}
	_, err := ms.GetMachine(ctx, app.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return fault.Errorf(fault.NotFound, "no machine %q in app %q", id, app.Name)
	}
	if err != nil {
		return fmt.Errorf("machine: %w", err)
	}
	return nil
}
