package flyio

import (
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/resset"
)

// The resource-set caveats restrict one kind of resource of the access to
// the ids of a resset.ResourceSet, each with its own mask (spec §6.2). Each
// body is a one-field record [set]; in JSON the set is an object under the
// name given below, e.g. {"apps": {"555": "rwcdC"}}.
//
// A caveat refuses an access that does not name its kind of resource with
// caveat.ErrResourceUnspecified, which IfPresent takes as "not applicable".

// Apps (type 3) restricts the app (Access.AppID). JSON keys are decimal app
// ids.
type Apps struct {
	Apps resset.ResourceSet[uint64] `json:"apps"`
}

// Volumes (type 2) restricts the volume.
type Volumes struct {
	Volumes resset.ResourceSet[string] `json:"volumes"`
}

// Machines (type 7) restricts the machine. {"machines": {"": "rC"}} allows
// reading and controlling every machine, and nothing else on them.
type Machines struct {
	Machines resset.ResourceSet[string] `json:"machines"`
}

// FeatureSet (type 5) restricts the organization feature (Access.Feature).
type FeatureSet struct {
	Features resset.ResourceSet[string] `json:"features"`
}

// MachineFeatureSet (type 14) restricts the machine feature.
type MachineFeatureSet struct {
	Features resset.ResourceSet[string] `json:"features"`
}

// AppFeatureSet (type 28) restricts the app feature.
type AppFeatureSet struct {
	Features resset.ResourceSet[string] `json:"features"`
}

// Clusters (type 16) restricts the LiteFS Cloud cluster.
type Clusters struct {
	Clusters resset.ResourceSet[string] `json:"clusters"`
}

// StorageObjects (type 29) restricts the storage object URL by prefix: every
// key that the URL starts with applies, and their masks are intersected, so
// a longer prefix cannot grant more than a shorter one.
type StorageObjects struct {
	Prefixes resset.ResourceSet[string] `json:"storage_objects"`
}

// resourceKind is how one resource-set caveat reads the access.
type resourceKind struct {
	typ    caveat.CaveatType
	name   string
	what   string // the resource, in messages
	prefix bool
	// uint is set for uint64-keyed sets, str for string-keyed ones; each
	// returns the access's resource and whether it names one.
	uint func(*Access) (uint64, bool)
	str  func(*Access) (string, bool)
	// unspecified is the refusal of an access without the resource, built
	// once by init.
	unspecified error
}

func strField(f func(*Access) *string) func(*Access) (string, bool) {
	return func(a *Access) (string, bool) {
		if p := f(a); p != nil {
			return *p, true
		}
		return "", false
	}
}

var (
	appsKind = &resourceKind{typ: TypeApps, name: "Apps", what: "app",
		uint: func(a *Access) (uint64, bool) {
			if a.AppID != nil {
				return *a.AppID, true
			}
			return 0, false
		}}
	volumesKind = &resourceKind{typ: TypeVolumes, name: "Volumes", what: "volume",
		str: strField(func(a *Access) *string { return a.Volume })}
	machinesKind = &resourceKind{typ: TypeMachines, name: "Machines", what: "machine",
		str: strField(func(a *Access) *string { return a.Machine })}
	featuresKind = &resourceKind{typ: TypeFeatureSet, name: "FeatureSet", what: "organization feature",
		str: strField(func(a *Access) *string { return a.Feature })}
	machineFeaturesKind = &resourceKind{typ: TypeMachineFeatureSet, name: "MachineFeatureSet",
		what: "machine feature", str: strField(func(a *Access) *string { return a.MachineFeature })}
	appFeaturesKind = &resourceKind{typ: TypeAppFeatureSet, name: "AppFeatureSet", what: "app feature",
		str: strField(func(a *Access) *string { return a.AppFeature })}
	clustersKind = &resourceKind{typ: TypeClusters, name: "Clusters", what: "cluster",
		str: strField(func(a *Access) *string { return a.Cluster })}
	storageKind = &resourceKind{typ: TypeStorageObjects, name: "StorageObjects", what: "storage object",
		prefix: true, str: strField(func(a *Access) *string { return a.StorageObject })}
)

// set returns the encoded set inside a body [set], strictly.
func (k *resourceKind) set(body []byte) ([]byte, error) {
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(1); err != nil {
		return nil, err
	}
	return r.Rest(), nil
}

// check is the one implementation of every resource-set caveat: it clears
// the access against the encoded body, without allocating when it allows.
func (k *resourceKind) check(body []byte, a caveat.Access) error {
	set, err := k.set(body)
	if err != nil {
		return caveat.BadCaveat(err)
	}
	fa, err := access(a, k.name)
	if err != nil {
		return err
	}
	q := resset.Query{What: k.what, Prefix: k.prefix, Action: fa.Action, Unspecified: k.unspecified}
	if k.uint != nil {
		q.Uint, q.Present = k.uint(fa)
		return resset.CheckUint(set, &q)
	}
	q.Str, q.Present = k.str(fa)
	return resset.CheckString(set, &q)
}

// canonical checks a body without allocating.
func (k *resourceKind) canonical(body []byte) error {
	set, err := k.set(body)
	if err != nil {
		return err
	}
	return resset.CanonicalSet(set, k.uint == nil)
}

func appendSet[K uint64 | string](b []byte, s resset.ResourceSet[K]) []byte {
	return s.AppendMsgpack(msgpack.AppendArrayHeader(b, 1))
}

func decodeSet[K uint64 | string](k *resourceKind, body []byte) (resset.ResourceSet[K], error) {
	set, err := k.set(body)
	if err != nil {
		return nil, err
	}
	s, err := resset.ParseResourceSet[K](set)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// decoded returns c, or nil with the error.
func decoded(c caveat.Caveat, err error) (caveat.Caveat, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (k *resourceKind) register(newCaveat func() caveat.Caveat, decode func([]byte) (caveat.Caveat, error), aliases ...string) {
	caveat.Register(caveat.Info{
		Type:      k.typ,
		Name:      k.name,
		Aliases:   aliases,
		Record:    1,
		New:       newCaveat,
		Decode:    decode,
		Canonical: k.canonical,
		Check:     k.check,
	})
}

// CaveatType implements caveat.Caveat.
func (c *Apps) CaveatType() caveat.CaveatType { return TypeApps }

// AppendBody implements caveat.Caveat.
func (c *Apps) AppendBody(b []byte) []byte { return appendSet(b, c.Apps) }

// Prohibits implements caveat.Caveat.
func (c *Apps) Prohibits(a caveat.Access) error { return appsKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *Volumes) CaveatType() caveat.CaveatType { return TypeVolumes }

// AppendBody implements caveat.Caveat.
func (c *Volumes) AppendBody(b []byte) []byte { return appendSet(b, c.Volumes) }

// Prohibits implements caveat.Caveat.
func (c *Volumes) Prohibits(a caveat.Access) error { return volumesKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *Machines) CaveatType() caveat.CaveatType { return TypeMachines }

// AppendBody implements caveat.Caveat.
func (c *Machines) AppendBody(b []byte) []byte { return appendSet(b, c.Machines) }

// Prohibits implements caveat.Caveat.
func (c *Machines) Prohibits(a caveat.Access) error { return machinesKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *FeatureSet) CaveatType() caveat.CaveatType { return TypeFeatureSet }

// AppendBody implements caveat.Caveat.
func (c *FeatureSet) AppendBody(b []byte) []byte { return appendSet(b, c.Features) }

// Prohibits implements caveat.Caveat.
func (c *FeatureSet) Prohibits(a caveat.Access) error {
	return featuresKind.check(c.AppendBody(nil), a)
}

// CaveatType implements caveat.Caveat.
func (c *MachineFeatureSet) CaveatType() caveat.CaveatType { return TypeMachineFeatureSet }

// AppendBody implements caveat.Caveat.
func (c *MachineFeatureSet) AppendBody(b []byte) []byte { return appendSet(b, c.Features) }

// Prohibits implements caveat.Caveat.
func (c *MachineFeatureSet) Prohibits(a caveat.Access) error {
	return machineFeaturesKind.check(c.AppendBody(nil), a)
}

// CaveatType implements caveat.Caveat.
func (c *AppFeatureSet) CaveatType() caveat.CaveatType { return TypeAppFeatureSet }

// AppendBody implements caveat.Caveat.
func (c *AppFeatureSet) AppendBody(b []byte) []byte { return appendSet(b, c.Features) }

// Prohibits implements caveat.Caveat.
func (c *AppFeatureSet) Prohibits(a caveat.Access) error {
	return appFeaturesKind.check(c.AppendBody(nil), a)
}

// CaveatType implements caveat.Caveat.
func (c *Clusters) CaveatType() caveat.CaveatType { return TypeClusters }

// AppendBody implements caveat.Caveat.
func (c *Clusters) AppendBody(b []byte) []byte { return appendSet(b, c.Clusters) }

// Prohibits implements caveat.Caveat.
func (c *Clusters) Prohibits(a caveat.Access) error { return clustersKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *StorageObjects) CaveatType() caveat.CaveatType { return TypeStorageObjects }

// AppendBody implements caveat.Caveat.
func (c *StorageObjects) AppendBody(b []byte) []byte { return appendSet(b, c.Prefixes) }

// Prohibits implements caveat.Caveat.
func (c *StorageObjects) Prohibits(a caveat.Access) error {
	return storageKind.check(c.AppendBody(nil), a)
}

func init() {
	for _, k := range []*resourceKind{appsKind, volumesKind, machinesKind, featuresKind,
		machineFeaturesKind, appFeaturesKind, clustersKind, storageKind} {
		k.unspecified = fmt.Errorf("%w: the access names no %s", caveat.ErrResourceUnspecified, k.what)
	}
	appsKind.register(func() caveat.Caveat { return new(Apps) }, func(b []byte) (caveat.Caveat, error) {
		s, err := decodeSet[uint64](appsKind, b)
		return decoded(&Apps{Apps: s}, err)
	}, "DeprecatedApps")
	volumesKind.register(func() caveat.Caveat { return new(Volumes) }, func(b []byte) (caveat.Caveat, error) {
		s, err := decodeSet[string](volumesKind, b)
		return decoded(&Volumes{Volumes: s}, err)
	})
	machinesKind.register(func() caveat.Caveat { return new(Machines) }, func(b []byte) (caveat.Caveat, error) {
		s, err := decodeSet[string](machinesKind, b)
		return decoded(&Machines{Machines: s}, err)
	})
	featuresKind.register(func() caveat.Caveat { return new(FeatureSet) }, func(b []byte) (caveat.Caveat, error) {
		s, err := decodeSet[string](featuresKind, b)
		return decoded(&FeatureSet{Features: s}, err)
	})
	machineFeaturesKind.register(func() caveat.Caveat { return new(MachineFeatureSet) },
		func(b []byte) (caveat.Caveat, error) {
			s, err := decodeSet[string](machineFeaturesKind, b)
			return decoded(&MachineFeatureSet{Features: s}, err)
		})
	appFeaturesKind.register(func() caveat.Caveat { return new(AppFeatureSet) },
		func(b []byte) (caveat.Caveat, error) {
			s, err := decodeSet[string](appFeaturesKind, b)
			return decoded(&AppFeatureSet{Features: s}, err)
		})
	clustersKind.register(func() caveat.Caveat { return new(Clusters) }, func(b []byte) (caveat.Caveat, error) {
		s, err := decodeSet[string](clustersKind, b)
		return decoded(&Clusters{Clusters: s}, err)
	})
	storageKind.register(func() caveat.Caveat { return new(StorageObjects) },
		func(b []byte) (caveat.Caveat, error) {
			s, err := decodeSet[string](storageKind, b)
			return decoded(&StorageObjects{Prefixes: s}, err)
		})
}
