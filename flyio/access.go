// Package flyio implements the Fly.io caveats of spec §5.2 (organizations,
// apps, machines, volumes, features, commands, mutations, storage objects,
// request sources and roles) and the access they are cleared against,
// Access (spec §6.4).
//
// Like the caveat package, it does no I/O. Importing it registers its caveat
// types.
package flyio

import (
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/resset"
)

// Access is one attempted operation on Fly-style resources: an action on an
// organization, or on one resource inside it (spec §6.4). Optional fields
// are pointers: nil means the access does not name that resource, which is
// different from naming the zero id (AppID 0 is "an app not created yet").
// A nil Command likewise means no command.
//
// The JSON form uses the spec's field names; Time is not part of it.
type Access struct {
	Action             resset.Action `json:"action,omitempty"`
	OrgID              *uint64       `json:"orgid,omitempty"`
	AppID              *uint64       `json:"appid,omitempty"`
	AppFeature         *string       `json:"app_feature,omitempty"`
	Feature            *string       `json:"feature,omitempty"`
	Volume             *string       `json:"volume,omitempty"`
	Machine            *string       `json:"machine,omitempty"`
	MachineFeature     *string       `json:"machine_feature,omitempty"`
	Mutation           *string       `json:"mutation,omitempty"`
	SourceMachine      *string       `json:"sourceMachine,omitempty"`
	SourceApp          *string       `json:"sourceApp,omitempty"`
	SourceOrganization *string       `json:"sourceOrganization,omitempty"`
	Cluster            *string       `json:"cluster,omitempty"`
	Command            []string      `json:"command,omitempty"`
	StorageObject      *string       `json:"storage_object,omitempty"`

	// Time is when the access happens, for ValidityWindow. The zero Time
	// means the wall clock at the moment of checking.
	Time time.Time `json:"-"`
}

// Ptr returns a pointer to v, for filling an Access's optional fields.
func Ptr[T any](v T) *T { return &v }

// FeatureLiteFSCloud is the organization feature that clusters belong to.
const FeatureLiteFSCloud = "litefs-cloud"

// Now implements caveat.Access.
func (a *Access) Now() time.Time {
	if a.Time.IsZero() {
		return time.Now()
	}
	return a.Time
}

// GetAction implements resset.Actor.
func (a *Access) GetAction() resset.Action { return a.Action }

// Validate implements caveat.Access: the structural checks of spec §6.4,
// in the spec's order, returning the first failure.
func (a *Access) Validate() error {
	if a.OrgID == nil {
		return fmt.Errorf("%w: the access must name an organization (orgid)", caveat.ErrResourceUnspecified)
	}
	if err := exclusive("organization", named("appid", a.AppID != nil),
		named("feature", a.Feature != nil), named("storage_object", a.StorageObject != nil)); err != nil {
		return err
	}
	appOwned := a.Machine != nil || a.Volume != nil || a.AppFeature != nil
	if appOwned && a.AppID == nil {
		return fmt.Errorf("%w: machine, volume and app_feature need the app (appid)", caveat.ErrResourceUnspecified)
	}
	if err := exclusive("app", named("machine", a.Machine != nil),
		named("volume", a.Volume != nil), named("app_feature", a.AppFeature != nil)); err != nil {
		return err
	}
	if a.Cluster != nil {
		if a.Feature == nil {
			return fmt.Errorf("%w: cluster needs the feature %q", caveat.ErrResourceUnspecified, FeatureLiteFSCloud)
		}
		if *a.Feature != FeatureLiteFSCloud {
			return fmt.Errorf("%w: cluster needs the feature %q, not %q", caveat.ErrInvalidAccess,
				FeatureLiteFSCloud, *a.Feature)
		}
	}
	if (a.Command != nil || a.MachineFeature != nil) && a.Machine == nil {
		return fmt.Errorf("%w: command and machine_feature need the machine", caveat.ErrResourceUnspecified)
	}
	return exclusive("machine", named("command", a.Command != nil),
		named("machine_feature", a.MachineFeature != nil))
}

type field struct {
	name string
	set  bool
}

func named(name string, set bool) field { return field{name, set} }

// exclusive fails when more than one of the fields is set. It allocates
// only to report the failure.
func exclusive(level string, fs ...field) error {
	n := 0
	for _, f := range fs {
		if f.set {
			n++
		}
	}
	if n <= 1 {
		return nil
	}
	var set []string
	for _, f := range fs {
		if f.set {
			set = append(set, f.name)
		}
	}
	return fmt.Errorf("%w: an access names at most one %s-level resource, got %s",
		caveat.ErrResourcesMutuallyExclusive, level, strings.Join(set, " and "))
}
