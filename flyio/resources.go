package flyio

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
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
	name   string
	what   string // the resource, in messages
	prefix bool
	// uint is set for uint64-keyed sets, str for string-keyed ones; each
	// returns the access's resource and whether it names one.
	uint func(*Access) (uint64, bool)
	str  func(*Access) (string, bool)
	// unspecified is the refusal of an access without the resource, built
	// once by init, so that IfPresent asking an inner caveat that does not
	// apply costs no allocation.
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
	appsKind = &resourceKind{name: "Apps", what: "app",
		uint: func(a *Access) (uint64, bool) {
			if a.AppID != nil {
				return *a.AppID, true
			}
			return 0, false
		}}
	volumesKind = &resourceKind{name: "Volumes", what: "volume",
		str: strField(func(a *Access) *string { return a.Volume })}
	machinesKind = &resourceKind{name: "Machines", what: "machine",
		str: strField(func(a *Access) *string { return a.Machine })}
	featuresKind = &resourceKind{name: "FeatureSet", what: "organization feature",
		str: strField(func(a *Access) *string { return a.Feature })}
	machineFeaturesKind = &resourceKind{name: "MachineFeatureSet", what: "machine feature",
		str: strField(func(a *Access) *string { return a.MachineFeature })}
	appFeaturesKind = &resourceKind{name: "AppFeatureSet", what: "app feature",
		str: strField(func(a *Access) *string { return a.AppFeature })}
	clustersKind = &resourceKind{name: "Clusters", what: "cluster",
		str: strField(func(a *Access) *string { return a.Cluster })}
	storageKind = &resourceKind{name: "StorageObjects", what: "storage object",
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
	q := query{kind: k, action: fa.Action}
	if k.uint != nil {
		q.uint, q.present = k.uint(fa)
	} else {
		q.str, q.present = k.str(fa)
	}
	return q.check(set)
}

// canonical checks a body without allocating.
func (k *resourceKind) canonical(body []byte) error {
	set, err := k.set(body)
	if err != nil {
		return err
	}
	return wire.CanonicalSet(set, k.uint == nil)
}

// query is one access to a resource set: the resource it names, if any,
// and the action it attempts.
type query struct {
	kind    *resourceKind
	present bool
	str     string
	uint    uint64
	action  resset.Action
}

func (q *query) matches(e *wire.Entry) bool {
	switch {
	case q.kind.uint != nil:
		return e.U == q.uint
	case q.kind.prefix: // strings.HasPrefix, without converting e.S
		return len(q.str) >= len(e.S) && q.str[:len(e.S)] == string(e.S)
	default:
		return q.str == string(e.S)
	}
}

func (q *query) resource() string {
	if q.kind.uint != nil {
		return q.kind.what + " " + strconv.FormatUint(q.uint, 10)
	}
	return q.kind.what + " " + strconv.Quote(q.str)
}

// check clears the query against set, the encoding of a resource set, as
// spec §6.2 says: a zero id mixed with other keys is ErrBadCaveat; a query
// without the resource is ErrResourceUnspecified; the permitted mask is the
// intersection of every matching key's (the zero id matches everything),
// ErrUnauthorizedForResource when none matches and ErrUnauthorizedForAction
// when the action is not a subset of it. An encoding that is not canonical
// is ErrBadCaveat. It does not allocate when the query is allowed.
func (q *query) check(set []byte) error {
	str := q.kind.uint == nil
	var it wire.Entries
	if err := it.Init(set, str); err != nil {
		return caveat.BadCaveat(err)
	}
	perm, found, zero := resset.ActionStar, false, false
	var e wire.Entry
	for it.More() {
		if err := it.Next(&e); err != nil {
			return caveat.BadCaveat(err)
		}
		if e.Zero() {
			zero = true
		}
		if e.Zero() || q.matches(&e) {
			perm &= resset.Action(e.Mask)
			found = true
		}
	}
	if err := it.End(); err != nil {
		return caveat.BadCaveat(err)
	}
	switch {
	case zero && it.Len() > 1:
		return fmt.Errorf("%w: a %s set cannot hold the zero id (the wildcard) with other ids",
			caveat.ErrBadCaveat, q.kind.what)
	case !q.present && q.kind.unspecified != nil:
		return q.kind.unspecified
	case !q.present:
		return fmt.Errorf("%w: the access names no %s", caveat.ErrResourceUnspecified, q.kind.what)
	case !found:
		return fmt.Errorf("%w: %s not allowed (allowed: %s)", caveat.ErrUnauthorizedForResource,
			q.resource(), listKeys(set, str))
	case !q.action.IsSubsetOf(perm):
		return resset.ActionDenied(q.action, perm, q.resource())
	}
	return nil
}

// listKeys names the ids of a set that check has already walked, for the
// message of a refusal.
func listKeys(set []byte, str bool) string {
	var it wire.Entries
	_ = it.Init(set, str)
	var keys []string
	var e wire.Entry
	for it.More() {
		_ = it.Next(&e)
		if str {
			keys = append(keys, strconv.Quote(string(e.S)))
		} else {
			keys = append(keys, strconv.FormatUint(e.U, 10))
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

func appendSet[K uint64 | string](b []byte, s resset.ResourceSet[K]) []byte {
	return s.AppendMsgpack(msgpack.AppendArrayHeader(b, 1))
}

// registerSet registers the resource-set caveat T of kind k, whose value
// wraps a set of keys K. Its checks work on the encoded set, which decoding
// would copy into a map.
func registerSet[T interface{ Prohibits(caveat.Access) error }, P interface {
	*T
	caveat.Caveat
}, K uint64 | string](k *resourceKind, wrap func(resset.ResourceSet[K]) T, aliases ...string) {
	k.unspecified = fmt.Errorf("%w: the access names no %s", caveat.ErrResourceUnspecified, k.what)
	fastpath.Set(uint64(P(new(T)).CaveatType()), fastpath.Paths[caveat.Access]{Canonical: k.canonical, Check: k.check})
	caveat.Register[T, P](caveat.Def[T]{Name: k.name, Aliases: aliases, Decode: func(b []byte) (T, error) {
		set, err := k.set(b)
		if err != nil {
			var zero T
			return zero, err
		}
		s, err := resset.ParseResourceSet[K](set)
		return wrap(s), err
	}})
}

// CaveatType implements caveat.Caveat.
func (c *Apps) CaveatType() caveat.CaveatType { return TypeApps }

// AppendBody implements caveat.Caveat.
func (c *Apps) AppendBody(b []byte) []byte { return appendSet(b, c.Apps) }

// Prohibits implements caveat.Caveat.
func (c Apps) Prohibits(a caveat.Access) error { return appsKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *Volumes) CaveatType() caveat.CaveatType { return TypeVolumes }

// AppendBody implements caveat.Caveat.
func (c *Volumes) AppendBody(b []byte) []byte { return appendSet(b, c.Volumes) }

// Prohibits implements caveat.Caveat.
func (c Volumes) Prohibits(a caveat.Access) error { return volumesKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *Machines) CaveatType() caveat.CaveatType { return TypeMachines }

// AppendBody implements caveat.Caveat.
func (c *Machines) AppendBody(b []byte) []byte { return appendSet(b, c.Machines) }

// Prohibits implements caveat.Caveat.
func (c Machines) Prohibits(a caveat.Access) error { return machinesKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *FeatureSet) CaveatType() caveat.CaveatType { return TypeFeatureSet }

// AppendBody implements caveat.Caveat.
func (c *FeatureSet) AppendBody(b []byte) []byte { return appendSet(b, c.Features) }

// Prohibits implements caveat.Caveat.
func (c FeatureSet) Prohibits(a caveat.Access) error {
	return featuresKind.check(c.AppendBody(nil), a)
}

// CaveatType implements caveat.Caveat.
func (c *MachineFeatureSet) CaveatType() caveat.CaveatType { return TypeMachineFeatureSet }

// AppendBody implements caveat.Caveat.
func (c *MachineFeatureSet) AppendBody(b []byte) []byte { return appendSet(b, c.Features) }

// Prohibits implements caveat.Caveat.
func (c MachineFeatureSet) Prohibits(a caveat.Access) error {
	return machineFeaturesKind.check(c.AppendBody(nil), a)
}

// CaveatType implements caveat.Caveat.
func (c *AppFeatureSet) CaveatType() caveat.CaveatType { return TypeAppFeatureSet }

// AppendBody implements caveat.Caveat.
func (c *AppFeatureSet) AppendBody(b []byte) []byte { return appendSet(b, c.Features) }

// Prohibits implements caveat.Caveat.
func (c AppFeatureSet) Prohibits(a caveat.Access) error {
	return appFeaturesKind.check(c.AppendBody(nil), a)
}

// CaveatType implements caveat.Caveat.
func (c *Clusters) CaveatType() caveat.CaveatType { return TypeClusters }

// AppendBody implements caveat.Caveat.
func (c *Clusters) AppendBody(b []byte) []byte { return appendSet(b, c.Clusters) }

// Prohibits implements caveat.Caveat.
func (c Clusters) Prohibits(a caveat.Access) error { return clustersKind.check(c.AppendBody(nil), a) }

// CaveatType implements caveat.Caveat.
func (c *StorageObjects) CaveatType() caveat.CaveatType { return TypeStorageObjects }

// AppendBody implements caveat.Caveat.
func (c *StorageObjects) AppendBody(b []byte) []byte { return appendSet(b, c.Prefixes) }

// Prohibits implements caveat.Caveat.
func (c StorageObjects) Prohibits(a caveat.Access) error {
	return storageKind.check(c.AppendBody(nil), a)
}

func init() {
	registerSet(appsKind, func(s resset.ResourceSet[uint64]) Apps { return Apps{s} }, "DeprecatedApps")
	registerSet(volumesKind, func(s resset.ResourceSet[string]) Volumes { return Volumes{s} })
	registerSet(machinesKind, func(s resset.ResourceSet[string]) Machines { return Machines{s} })
	registerSet(featuresKind, func(s resset.ResourceSet[string]) FeatureSet { return FeatureSet{s} })
	registerSet(machineFeaturesKind, func(s resset.ResourceSet[string]) MachineFeatureSet { return MachineFeatureSet{s} })
	registerSet(appFeaturesKind, func(s resset.ResourceSet[string]) AppFeatureSet { return AppFeatureSet{s} })
	registerSet(clustersKind, func(s resset.ResourceSet[string]) Clusters { return Clusters{s} })
	registerSet(storageKind, func(s resset.ResourceSet[string]) StorageObjects { return StorageObjects{s} })
}
