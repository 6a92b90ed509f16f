package securitytest

// Random accesses and random caveats. Both draw their ids and names from
// one small world, so that a caveat and an access often name the same
// thing and the interesting verdicts (allowed by one caveat, refused by
// another) come up often.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/cli"
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/wire"
	"github.com/caveatdev/caveat/resset"
)

// world is what random caveats and accesses name.
type world struct {
	now             time.Time
	orgs            []uint64 // organizations caveats name (0, the wildcard, is added by the generators)
	apps            []uint64
	users           []uint64
	machines        []string
	volumes         []string
	features        []string
	appFeatures     []string
	machineFeatures []string
	clusters        []string
	mutations       []string
	storage         []string
	commands        [][]string
	sourceNames     []string
}

// newWorld returns a world around the given organizations, apps and users.
func newWorld(now time.Time, orgs, apps, users []uint64) *world {
	return &world{
		now:      now,
		orgs:     orgs,
		apps:     append(slices.Clone(apps), 4242, 99999),
		users:    append(slices.Clone(users), 777),
		machines: []string{"148ed21f2e9e89", "3d8d9e1b6c2e08", "e784079b449483", "m1"},
		volumes:  []string{"vol_1", "vol_2", "vol_3"},
		// Member features, admin-only ones, and the one clusters need.
		features:        []string{"wg", "builder", "membership", "billing", "deletion", "document_signing", flyio.FeatureLiteFSCloud, "secret-sauce"},
		appFeatures:     []string{"secrets", "ips", "certificates"},
		machineFeatures: []string{"exec", "metadata", "lease"},
		clusters:        []string{"cluster-a", "cluster-b"},
		mutations:       []string{"addCertificate", "deleteApp", "setSecrets"},
		storage:         []string{"https://storage.test/bucket-a/", "https://storage.test/bucket-a/private/", "https://storage.test/bucket-b/"},
		commands:        [][]string{{"ls"}, {"ls", "-l"}, {"cat", "/etc/passwd"}, {"sh", "-c", "id"}},
		sourceNames:     []string{"src-1", "src-2"},
	}
}

func pick[T any](r *mrand.Rand, s []T) T { return s[r.IntN(len(s))] }

func chance(r *mrand.Rand, p float64) bool { return r.Float64() < p }

// randomMask is an action mask: all, none, every bit, or a random subset.
func randomMask(r *mrand.Rand) resset.Action {
	switch n := r.IntN(20); {
	case n < 4:
		return resset.ActionAll
	case n < 6:
		return resset.ActionNone
	case n < 7:
		return resset.ActionStar
	default:
		return resset.Action(r.IntN(32))
	}
}

// randomAction is the action of an access: mostly one or two letters,
// sometimes none or every bit.
func randomAction(r *mrand.Rand) resset.Action {
	switch n := r.IntN(40); {
	case n < 1:
		return resset.ActionNone
	case n < 2:
		return resset.ActionStar
	case n < 25:
		return resset.Action(1 << r.IntN(5))
	default:
		return resset.Action(1+r.IntN(31)) & resset.ActionAll
	}
}

// randomAccess is an access to organization orgID: mostly well formed
// (an app, maybe a machine and a command, or a feature…), now and then
// one that names two exclusive resources, which Validate refuses.
func randomAccess(r *mrand.Rand, w *world, orgID uint64) *flyio.Access {
	a := &flyio.Access{Action: randomAction(r), OrgID: flyio.Ptr(orgID), Time: w.now}
	switch n := r.IntN(20); {
	case n < 13:
		app := pick(r, w.apps)
		if chance(r, 0.1) {
			app = 0 // an app not created yet
		}
		a.AppID = flyio.Ptr(app)
		switch m := r.IntN(10); {
		case m < 4:
			a.Machine = flyio.Ptr(pick(r, w.machines))
			switch k := r.IntN(10); {
			case k < 3:
				a.Command = slices.Clone(pick(r, w.commands))
				if chance(r, 0.3) {
					a.Command = append(a.Command, "--extra")
				}
			case k < 4:
				a.MachineFeature = flyio.Ptr(pick(r, w.machineFeatures))
			}
		case m < 5:
			a.Volume = flyio.Ptr(pick(r, w.volumes))
		case m < 6:
			a.AppFeature = flyio.Ptr(pick(r, w.appFeatures))
		}
	case n < 16:
		a.Feature = flyio.Ptr(pick(r, w.features))
		if *a.Feature == flyio.FeatureLiteFSCloud && chance(r, 0.5) {
			a.Cluster = flyio.Ptr(pick(r, w.clusters))
		}
	case n < 17:
		a.StorageObject = flyio.Ptr(pick(r, w.storage) + "obj")
	}
	if chance(r, 0.1) {
		a.Mutation = flyio.Ptr(pick(r, w.mutations))
	}
	if chance(r, 0.1) {
		a.SourceMachine = flyio.Ptr(pick(r, w.machines))
	}
	if chance(r, 0.05) {
		a.SourceApp = flyio.Ptr(pick(r, w.sourceNames))
	}
	if chance(r, 0.05) {
		a.SourceOrganization = flyio.Ptr(pick(r, w.sourceNames))
	}
	if chance(r, 0.03) {
		// Two organization-level resources at once.
		a.AppID, a.Feature = flyio.Ptr(pick(r, w.apps)), flyio.Ptr(pick(r, w.features))
	}
	return a
}

// withOrg returns a copy of a that names organization org.
func withOrg(a *flyio.Access, org uint64) *flyio.Access {
	b := *a
	b.OrgID = flyio.Ptr(org)
	return &b
}

func strSet(r *mrand.Rand, pool []string) resset.ResourceSet[string] {
	switch n := r.IntN(20); {
	case n < 2:
		return nil
	case n < 5:
		return resset.ResourceSet[string]{"": randomMask(r)}
	default:
		s := resset.ResourceSet[string]{}
		for range 1 + r.IntN(3) {
			s[pick(r, pool)] = randomMask(r)
		}
		return s
	}
}

func uintSet(r *mrand.Rand, pool []uint64) resset.ResourceSet[uint64] {
	switch n := r.IntN(20); {
	case n < 2:
		return nil
	case n < 5:
		return resset.ResourceSet[uint64]{0: randomMask(r)}
	default:
		s := resset.ResourceSet[uint64]{}
		for range 1 + r.IntN(3) {
			s[pick(r, pool)] = randomMask(r)
		}
		return s
	}
}

// How a random caveat gets into a token.
type addWay int

const (
	// addPlain: Macaroon.Add (and "caveat tokens attenuate") take it.
	addPlain addWay = iota
	// add3P: a third-party caveat, added with Add3P.
	add3P
	// forgeOnly: the library refuses to add it (attestations outside a
	// proof), but anyone can append it by computing the HMAC by hand.
	forgeOnly
)

// caveatGen makes random caveats of one registered type.
type caveatGen struct {
	typ    caveat.CaveatType
	weight int
	way    addWay
	// nested marks types that IfPresent may hold in the generated tokens.
	nested bool
	gen    func(r *mrand.Rand, w *world, depth int) caveat.Caveat
}

// generators has one entry for every registered caveat type;
// TestGeneratorsCoverTheRegistry fails when a type is missing. It is set
// by init because IfPresent's generator draws from it.
var generators []caveatGen

func init() {
	generators = []caveatGen{
		{typ: flyio.TypeOrganization, weight: 6, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			id := pick(r, w.orgs)
			if chance(r, 0.15) {
				id = 0
			}
			return &flyio.Organization{ID: id, Mask: randomMask(r)}
		}},
		{typ: flyio.TypeVolumes, weight: 3, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.Volumes{Volumes: strSet(r, w.volumes)}
		}},
		{typ: flyio.TypeApps, weight: 6, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.Apps{Apps: uintSet(r, w.apps)}
		}},
		{typ: caveat.TypeValidityWindow, weight: 3, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			now := w.now.Unix()
			switch n := r.IntN(10); {
			case n < 1: // expired
				return &caveat.ValidityWindow{NotBefore: now - 7200, NotAfter: now - 1 - r.Int64N(3600)}
			case n < 2: // not yet valid
				return &caveat.ValidityWindow{NotBefore: now + 1 + r.Int64N(3600), NotAfter: now + 7200}
			default:
				return &caveat.ValidityWindow{NotBefore: now - r.Int64N(3600), NotAfter: now + r.Int64N(48*3600)}
			}
		}},
		{typ: flyio.TypeFeatureSet, weight: 4, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.FeatureSet{Features: strSet(r, w.features)}
		}},
		{typ: flyio.TypeMutations, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			var ms []string
			if !chance(r, 0.1) {
				for _, m := range w.mutations {
					if chance(r, 0.5) {
						ms = append(ms, m)
					}
				}
			}
			return &flyio.Mutations{Mutations: ms}
		}},
		{typ: flyio.TypeMachines, weight: 6, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.Machines{Machines: strSet(r, w.machines)}
		}},
		{typ: auth.TypeConfineUser, weight: 1, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &auth.ConfineUser{ID: pick(r, w.users)}
		}},
		{typ: auth.TypeConfineOrganization, weight: 1, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &auth.ConfineOrganization{ID: pick(r, w.orgs)}
		}},
		{typ: flyio.TypeIsUser, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.IsUser{ID: pick(r, w.users)}
		}},
		{typ: caveat.Type3P, weight: 1, way: add3P},
		{typ: caveat.TypeBindToParentToken, weight: 1, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			b := make(caveat.BindToParentToken, 16)
			rand.Read(b)
			return &b
		}},
		{typ: resset.TypeIfPresent, weight: 5, gen: func(r *mrand.Rand, w *world, depth int) caveat.Caveat {
			var ifs []caveat.Caveat
			for range 1 + r.IntN(3) {
				ifs = append(ifs, randomCaveat(r, w, depth+1, true))
			}
			return &resset.IfPresent{Ifs: caveat.NewCaveatSet(ifs...), Else: randomMask(r)}
		}},
		{typ: flyio.TypeMachineFeatureSet, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.MachineFeatureSet{Features: strSet(r, w.machineFeatures)}
		}},
		{typ: flyio.TypeFromMachineSource, weight: 1, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.FromMachineSource{ID: pick(r, w.machines)}
		}},
		{typ: flyio.TypeClusters, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.Clusters{Clusters: strSet(r, w.clusters)}
		}},
		{typ: auth.TypeConfineGoogleHD, weight: 1, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c := auth.ConfineGoogleHD(pick(r, []string{"example.com", "caveat.test"}))
			return &c
		}},
		{typ: auth.TypeConfineGitHubOrg, weight: 1, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c := auth.ConfineGitHubOrg(r.Uint64N(1000))
			return &c
		}},
		{typ: auth.TypeMaxValidity, weight: 1, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return auth.NewMaxValidity(time.Duration(r.IntN(7200)) * time.Second)
		}},
		{typ: flyio.TypeIsMember, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.IsMember{}
		}},
		{typ: auth.TypeFlyioUserID, weight: 1, way: forgeOnly, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c := auth.FlyioUserID(pick(r, w.users))
			return &c
		}},
		{typ: auth.TypeGitHubUserID, weight: 1, way: forgeOnly, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c := auth.GitHubUserID(r.Uint64N(1 << 40))
			return &c
		}},
		{typ: auth.TypeGoogleUserID, weight: 1, way: forgeOnly, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c, err := auth.NewGoogleUserID(new(big.Int).SetUint64(r.Uint64()))
			if err != nil {
				panic(err)
			}
			return c
		}},
		{typ: resset.TypeAction, weight: 4, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c := resset.ActionCaveat(randomMask(r))
			return &c
		}},
		{typ: flyio.TypeCommands, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			var cs flyio.Commands
			switch n := r.IntN(10); {
			case n < 1:
				return &cs // nil: no command allowed
			case n < 2:
				cs = flyio.Commands{{Args: []string{}}} // any command
			default:
				for range 1 + r.IntN(2) {
					cs = append(cs, flyio.Command{Args: slices.Clone(pick(r, w.commands)), Exact: chance(r, 0.5)})
				}
			}
			return &cs
		}},
		{typ: flyio.TypeAppFeatureSet, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.AppFeatureSet{Features: strSet(r, w.appFeatures)}
		}},
		{typ: flyio.TypeStorageObjects, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			return &flyio.StorageObjects{Prefixes: strSet(r, w.storage)}
		}},
		{typ: flyio.TypeAllowedRoles, weight: 2, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			c := flyio.AllowedRoles(pick(r, []flyio.Role{flyio.RoleMember, flyio.RoleBillingManager, flyio.RoleAdmin, 0,
				flyio.RoleMember | flyio.RoleBillingManager}))
			return &c
		}},
		{typ: flyio.TypeFlySrc, weight: 1, nested: true, gen: func(r *mrand.Rand, w *world, _ int) caveat.Caveat {
			name := func() string {
				if chance(r, 0.4) {
					return ""
				}
				return pick(r, w.sourceNames)
			}
			return &flyio.FlySrc{Organization: name(), App: name(), Instance: name()}
		}},
	}
}

// randomCaveat returns a caveat that Add takes. Inside IfPresent
// (nested), only the types marked nested are drawn, and IfPresent itself
// up to a depth of 2.
func randomCaveat(r *mrand.Rand, w *world, depth int, nested bool) caveat.Caveat {
	var gens []caveatGen
	total := 0
	for _, g := range generators {
		ok := g.way == addPlain && g.gen != nil
		if nested {
			ok = ok && (g.nested || (g.typ == resset.TypeIfPresent && depth < 2))
		}
		if ok {
			gens = append(gens, g)
			total += g.weight
		}
	}
	n := r.IntN(total)
	for _, g := range gens {
		if n < g.weight {
			return g.gen(r, w, depth)
		}
		n -= g.weight
	}
	panic("unreachable")
}

// benign reports whether a caveat added with Add keeps a token verifying
// and unexpired: everything but a binding outside a discharge and
// validity windows (which may be expired, also inside IfPresent).
func benign(c caveat.RawCaveat) bool {
	switch c.Type {
	case caveat.TypeBindToParentToken, caveat.Type3P, caveat.TypeValidityWindow:
		return false
	case resset.TypeIfPresent:
		v, err := c.Decode()
		if err != nil {
			return false
		}
		for _, in := range v.(*resset.IfPresent).Ifs {
			if !benign(in) {
				return false
			}
		}
	}
	return !c.Attestation()
}

// thirdPartyCaveat adds to m a third-party caveat that no one can
// discharge: its ticket is sealed under a fresh key no service holds.
func thirdPartyCaveat(r *mrand.Rand, m *caveat.Macaroon) error {
	loc := fmt.Sprintf("https://third-party-%d.test/", r.IntN(1000))
	return m.Add3P(caveat.NewEncryptionKey(), loc, &auth.ConfineUser{ID: 1})
}

// forge appends raw caveats to a permission token by computing the HMAC
// chain by hand: what any holder of the token can do, with none of the
// checks that Add makes. It works on non-proofs only (a proof's tail is
// finalised).
func forge(m *caveat.Macaroon, raws ...caveat.RawCaveat) (*caveat.Macaroon, error) {
	if m.IsProof() {
		return nil, fmt.Errorf("forge: a proof cannot be extended")
	}
	tail := m.Tail()
	cs := slices.Clone(m.Caveats)
	for _, c := range raws {
		mac := hmac.New(sha256.New, tail)
		mac.Write(wire.AppendPacked(nil, uint64(c.Type), c.Body))
		tail = mac.Sum(nil)
		cs = append(cs, c)
	}
	b := msgpack.AppendArrayHeader(nil, 4)
	b = m.Nonce.AppendEncoded(b)
	b = msgpack.AppendStr(b, m.Location)
	b = cs.AppendEncoded(b)
	b = msgpack.AppendBin(b, tail)
	return caveat.Decode(b)
}

// randomForgery is a raw caveat that the library would not add: an
// attestation at the top level, a binding, a registered caveat in a
// non-canonical encoding, a third-party caveat whose body is garbage, an
// unregistered type, or (half the time) an ordinary caveat.
func randomForgery(r *mrand.Rand, w *world) caveat.RawCaveat {
	switch n := r.IntN(12); {
	case n < 2:
		for {
			g := pick(r, generators)
			if g.way == forgeOnly {
				return caveat.Encode(g.gen(r, w, 0))
			}
		}
	case n < 3:
		// Organization [id, mask] with the id as a uint64 instead of its
		// shortest form.
		body := msgpack.AppendArrayHeader(nil, 2)
		body = append(body, 0xcf, 0, 0, 0, 0, 0, 0, 0, byte(pick(r, w.orgs)))
		body = msgpack.AppendUint(body, uint64(resset.ActionAll))
		return caveat.RawCaveat{Type: flyio.TypeOrganization, Body: body}
	case n < 4:
		// A third-party caveat whose ticket is a number.
		junk := make([]byte, 1+r.IntN(40))
		rand.Read(junk)
		body := msgpack.AppendArrayHeader(nil, 3)
		body = msgpack.AppendStr(body, "https://third-party.test/")
		body = msgpack.AppendBin(body, junk)
		body = msgpack.AppendUint(body, 5)
		return caveat.RawCaveat{Type: caveat.Type3P, Body: body}
	case n < 5:
		return caveat.RawCaveat{Type: caveat.TypeUserDefinedMin + caveat.CaveatType(r.Uint64N(1000)), Body: msgpack.AppendNil(nil)}
	case n < 6:
		b := caveat.BindToParentToken(make([]byte, 16))
		return caveat.Encode(&b)
	default:
		return caveat.Encode(randomCaveat(r, w, 0, false))
	}
}

// attenuateCLI adds caveats through "caveat tokens attenuate", which
// reads them as JSON, and returns the new header.
func attenuateCLI(t *testing.T, header string, cs []caveat.Caveat) (string, error) {
	t.Helper()
	js, err := caveat.NewCaveatSet(cs...).MarshalJSON()
	if err != nil {
		t.Fatalf("caveats to JSON: %v", err)
	}
	var out, errOut strings.Builder
	code := cli.Main([]string{"tokens", "attenuate", "-t", header}, strings.NewReader(string(js)), &out, &errOut,
		func(string) string { return "" })
	if code != 0 {
		return "", fmt.Errorf("caveat tokens attenuate: exit %d: %s (caveats %s)", code, strings.TrimSpace(errOut.String()), js)
	}
	return strings.TrimSpace(out.String()), nil
}

// permissionToken returns the index of the bundle's one permission token
// for location.
func permissionToken(t testing.TB, b *caveat.Bundle, location string) int {
	t.Helper()
	found := -1
	for i := range b.Tokens {
		if b.Tokens[i].Location == location && !b.IsDischarge(i) {
			if found >= 0 {
				t.Fatalf("the bundle has two permission tokens for %s", location)
			}
			found = i
		}
	}
	if found < 0 {
		t.Fatalf("the bundle has no permission token for %s", location)
	}
	return found
}

// attenuated adds random caveats (Add, and now and then an
// undischargeable third-party caveat) to the permission token of header,
// and returns the new header.
func attenuated(t testing.TB, r *mrand.Rand, w *world, header, location string, n int) string {
	t.Helper()
	b, err := caveat.ParseBundle(header)
	if err != nil {
		t.Fatal(err)
	}
	m := &b.Tokens[permissionToken(t, b, location)]
	for range n {
		if chance(r, 0.04) {
			if err := thirdPartyCaveat(r, m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := m.Add(randomCaveat(r, w, 0, false)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Header()
}

// describeAccess renders an access for failure messages.
func describeAccess(a *flyio.Access) string {
	var b strings.Builder
	fmt.Fprintf(&b, "action %q", a.Action.String())
	if a.Action == resset.ActionStar {
		b.WriteString(" (every bit)")
	}
	field := func(name string, p any) {
		switch v := p.(type) {
		case *uint64:
			if v != nil {
				fmt.Fprintf(&b, " %s=%d", name, *v)
			}
		case *string:
			if v != nil {
				fmt.Fprintf(&b, " %s=%q", name, *v)
			}
		}
	}
	field("org", a.OrgID)
	field("app", a.AppID)
	field("feature", a.Feature)
	field("app_feature", a.AppFeature)
	field("volume", a.Volume)
	field("machine", a.Machine)
	field("machine_feature", a.MachineFeature)
	field("cluster", a.Cluster)
	field("storage_object", a.StorageObject)
	field("mutation", a.Mutation)
	field("source_machine", a.SourceMachine)
	field("source_app", a.SourceApp)
	field("source_org", a.SourceOrganization)
	if a.Command != nil {
		fmt.Fprintf(&b, " command=%q", a.Command)
	}
	return b.String()
}

// describeHeader renders the caveats of the header's permission token.
func describeHeader(t testing.TB, header, location string) string {
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return "(malformed: " + err.Error() + ")"
	}
	return describeCaveats(b.Tokens[permissionToken(t, b, location)].Caveats)
}

// describeCaveats renders caveats as JSON for failure messages.
func describeCaveats(cs caveat.CaveatSet) string {
	js, err := cs.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("(%d caveats: %v)", len(cs), err)
	}
	return string(js)
}

// TestGeneratorsCoverTheRegistry: every registered caveat type has a
// generator, so that the properties cover caveat types added later; each
// generator's caveats are canonical and decode to themselves.
func TestGeneratorsCoverTheRegistry(t *testing.T) {
	r := newRand(t)
	w := newWorld(time.Now(), []uint64{1, 2}, []uint64{1, 2}, []uint64{1, 2})
	have := map[caveat.CaveatType]caveatGen{}
	for _, g := range generators {
		if _, dup := have[g.typ]; dup {
			t.Errorf("two generators for type %d", g.typ)
		}
		have[g.typ] = g
	}
	for _, info := range caveat.Registered() {
		g, ok := have[info.Type]
		if !ok {
			t.Errorf("caveat type %d (%s) is registered but has no generator in securitytest/gen_test.go: add one, so that the security properties cover it",
				info.Type, info.Name)
			continue
		}
		if info.Attestation != (g.way == forgeOnly) {
			t.Errorf("%s: attestation %v, but its generator's way is %d", info.Name, info.Attestation, g.way)
		}
		if g.gen == nil {
			continue
		}
		for range 50 {
			c := caveat.Encode(g.gen(r, w, 0))
			if c.Type != info.Type {
				t.Fatalf("the generator of %s made a caveat of type %d", info.Name, c.Type)
			}
			if err := c.Canonical(); err != nil {
				t.Fatalf("%s: generated caveat is not canonical: %v", info.Name, err)
			}
			v, err := c.Decode()
			if err != nil {
				t.Fatalf("%s: %v", info.Name, err)
			}
			if again := caveat.Encode(v); string(again.Body) != string(c.Body) {
				t.Fatalf("%s: decoding changes the caveat", info.Name)
			}
		}
	}
	// The attestations really are refused by Add outside a proof, which
	// is why they are only forged.
	m, err := caveat.Mint(caveat.NewSigningKey(), caveat.NewNonce([]byte{1}, false), "https://x.test/v1")
	if err != nil {
		t.Fatal(err)
	}
	uid := auth.FlyioUserID(1)
	if err := m.Add(&uid); err == nil {
		t.Error("Add put an attestation into a permission token")
	}
}
