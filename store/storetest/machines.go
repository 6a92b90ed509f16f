package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caveatdev/caveat/store"
)

// machineTests are the conformance tests of store.Machines and of
// store.Apps.ListAppsByName.
var machineTests = []namedTest[store.Store]{
	{"AppsByName", testAppsByName},
	{"Machines", testMachines},
	{"MachinesInvalid", testMachinesInvalid},
	{"MachineList", testMachineList},
	{"MachineUpdate", testMachineUpdate},
	{"MachineEvents", testMachineEvents},
	{"MachineLeases", testMachineLeases},
	{"MachineMetadata", testMachineMetadata},
	{"ConcurrentMachineUpdates", testConcurrentMachineUpdates},
	{"ConcurrentMachineLeases", testConcurrentMachineLeases},
}

// machinesOf returns the backend's store.Machines, failing the test when
// it has none.
func machinesOf(t *testing.T, s store.Store) store.Machines {
	t.Helper()
	m, ok := s.(store.Machines)
	if !ok {
		t.Fatalf("%T does not implement store.Machines", s)
	}
	return m
}

// NewMachine returns a valid machine record of app with id, name and
// state, created at created.
func NewMachine(app uint64, id, name string, state store.MachineState, created time.Time) store.Machine {
	return store.Machine{
		ID: id, AppID: app, Name: name, State: state, Region: "local",
		ImageRef: "registry.example/worker:1", InstanceID: "01J000000000000000000000" + id[:2],
		PrivateIP: "fdaa:0:1::" + id[:4], Config: `{"image":"registry.example/worker:1","guest":{"cpus":1}}`,
		Metadata: map[string]string{"role": "worker"}, CreatedAt: created, UpdatedAt: created,
	}
}

// machineID is the i-th test machine id.
func machineID(i int) string { return fmt.Sprintf("%014x", 0xe000000000000+i) }

// storedMachine is m as the store returns it after creation.
func storedMachine(m store.Machine) store.Machine {
	m.CreatedAt, m.UpdatedAt, m.NextAt = stored(m.CreatedAt), stored(m.UpdatedAt), stored(m.NextAt)
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	m.Lease, m.Version = store.MachineLease{}, 1
	return m
}

func testAppsByName(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ops@example.com")
	acme := MustOrganization(t, s, "acme", u.ID)
	beta := MustOrganization(t, s, "beta", u.ID)
	gamma := MustOrganization(t, s, "gamma", u.ID)
	gw := MustApp(t, s, gamma.ID, "workers")
	aw := MustApp(t, s, acme.ID, "workers")
	MustApp(t, s, beta.ID, "api")
	MustApp(t, s, beta.ID, "Workers")

	// Another user's organization with an app of the name, and a member
	// of acme: each sees the apps of the organizations they belong to.
	v := MustUser(t, s, "dev@example.com")
	delta := MustOrganization(t, s, "delta", v.ID)
	dw := MustApp(t, s, delta.ID, "workers")
	lone := MustUser(t, s, "lone@example.com")

	apps, err := s.ListAppsByName(ctx(t), "workers", u.ID)
	must(t, err)
	wantEqual(t, "ListAppsByName (by organization id, the user's organizations only)", apps, []store.App{aw, gw})
	apps, err = s.ListAppsByName(ctx(t), "workers", v.ID)
	must(t, err)
	wantEqual(t, "ListAppsByName of another user", apps, []store.App{dw})
	must(t, s.AddMember(ctx(t), store.Membership{OrgID: acme.ID, UserID: v.ID, Role: store.RoleMember, CreatedAt: t0}))
	apps, err = s.ListAppsByName(ctx(t), "workers", v.ID)
	must(t, err)
	wantEqual(t, "ListAppsByName after joining acme", apps, []store.App{aw, dw})
	for _, c := range []struct {
		name string
		user uint64
	}{
		{"nope", u.ID}, {"", u.ID}, {"workers\x00", u.ID}, {"\xff", u.ID},
		{"workers", lone.ID}, {"workers", 0}, {"workers", 1 << 63}, {"workers", 999999},
	} {
		apps, err := s.ListAppsByName(ctx(t), c.name, c.user)
		must(t, err)
		if apps == nil || len(apps) != 0 {
			t.Fatalf("ListAppsByName(%q, user %d) = %#v, want an empty list", c.name, c.user, apps)
		}
	}
}

func testMachines(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	other := MustApp(t, s, f.org.ID, "other")

	m := NewMachine(f.app.ID, machineID(1), "worker-1", store.MachineStarting, t0)
	m.Next, m.NextAt = store.MachineStarted, at(500*time.Millisecond+123)
	created, err := ms.CreateMachine(ctx(t), m,
		store.MachineEvent{Type: "launch", Status: "created", Source: "user", Timestamp: t0},
		store.MachineEvent{Type: "start", Status: "starting", Source: "user", Timestamp: t0})
	must(t, err)
	wantEqual(t, "created machine", created, storedMachine(m))
	got, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	wantEqual(t, "GetMachine", got, created)
	if got.Config != m.Config {
		t.Fatalf("config changed in the store: %q", got.Config)
	}

	// Optional fields may be empty; metadata may be nil.
	bare := store.Machine{ID: machineID(2), AppID: f.app.ID, Name: "bare", State: store.MachineCreated,
		Region: "ams", Config: "{}", CreatedAt: t0, UpdatedAt: t0}
	_, err = ms.CreateMachine(ctx(t), bare)
	must(t, err)
	got, err = ms.GetMachine(ctx(t), f.app.ID, bare.ID)
	must(t, err)
	wantEqual(t, "bare machine", got, storedMachine(bare))

	// Ids are unique across the store; names within the app, among the
	// machines that are not destroyed.
	_, err = ms.CreateMachine(ctx(t), NewMachine(other.ID, m.ID, "elsewhere", store.MachineCreated, t0))
	wantErr(t, err, store.ErrExists)
	_, err = ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(3), "worker-1", store.MachineCreated, t0))
	wantErr(t, err, store.ErrExists)
	_, err = ms.CreateMachine(ctx(t), NewMachine(other.ID, machineID(3), "worker-1", store.MachineCreated, t0))
	must(t, err)
	dead := created
	dead.State, dead.Next, dead.NextAt = store.MachineDestroyed, "", time.Time{}
	_, err = ms.UpdateMachine(ctx(t), dead)
	must(t, err)
	_, err = ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(4), "worker-1", store.MachineCreated, t0))
	must(t, err)

	// A machine is found only in its app.
	_, err = ms.GetMachine(ctx(t), other.ID, m.ID)
	wantErr(t, err, store.ErrNotFound)
	for _, id := range unknownIDs {
		_, err = ms.GetMachine(ctx(t), id, m.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = ms.CreateMachine(ctx(t), NewMachine(id, machineID(9), "x", store.MachineCreated, t0))
		wantErr(t, err, store.ErrNotFound)
	}
	for _, id := range []string{"", machineID(99), "E0000000000001", "e000000000000\x00", "../e0000000001"} {
		_, err = ms.GetMachine(ctx(t), f.app.ID, id)
		wantErr(t, err, store.ErrNotFound)
	}
}

func testMachinesInvalid(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	good := NewMachine(f.app.ID, machineID(1), "w", store.MachineCreated, t0)
	for _, tc := range []struct {
		name string
		edit func(m *store.Machine)
	}{
		{"short id", func(m *store.Machine) { m.ID = "e00" }},
		{"uppercase id", func(m *store.Machine) { m.ID = "E0000000000001" }},
		{"no name", func(m *store.Machine) { m.Name = "" }},
		{"long name", func(m *store.Machine) { m.Name = strings.Repeat("n", store.MaxNameLen+1) }},
		{"NUL in name", func(m *store.Machine) { m.Name = "a\x00b" }},
		{"unknown state", func(m *store.Machine) { m.State = "running" }},
		{"next without time", func(m *store.Machine) { m.Next = store.MachineStarted }},
		{"time without next", func(m *store.Machine) { m.NextAt = t0 }},
		{"unknown next", func(m *store.Machine) { m.Next, m.NextAt = "up", t0 }},
		{"no region", func(m *store.Machine) { m.Region = "" }},
		{"long image", func(m *store.Machine) { m.ImageRef = strings.Repeat("i", store.MaxImageRefLen+1) }},
		{"config not JSON", func(m *store.Machine) { m.Config = "{" }},
		{"config an array", func(m *store.Machine) { m.Config = "[]" }},
		{"config null", func(m *store.Machine) { m.Config = "null" }},
		{"config too long", func(m *store.Machine) {
			m.Config = `{"x":"` + strings.Repeat("x", store.MaxMachineConfigLen) + `"}`
		}},
		{"metadata key empty", func(m *store.Machine) { m.Metadata = map[string]string{"": "v"} }},
		{"metadata value too long", func(m *store.Machine) {
			m.Metadata = map[string]string{"k": strings.Repeat("v", store.MaxMetadataValueLen+1)}
		}},
		{"too much metadata", func(m *store.Machine) {
			m.Metadata = map[string]string{}
			for i := range store.MaxMetadataKeys + 1 {
				m.Metadata[strconv.Itoa(i)] = "v"
			}
		}},
		{"no creation time", func(m *store.Machine) { m.CreatedAt = time.Time{} }},
		{"no update time", func(m *store.Machine) { m.UpdatedAt = time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			m.Metadata = map[string]string{"role": "worker"}
			tc.edit(&m)
			_, err := ms.CreateMachine(ctx(t), m)
			wantErr(t, err, store.ErrInvalid)
		})
	}
	_, err := ms.CreateMachine(ctx(t), good, store.MachineEvent{Type: "launch", Status: "created", Source: "user"})
	wantErr(t, err, store.ErrInvalid)
	// Nothing was stored by the refusals.
	list := all(t, pageSize, func(p store.Page) ([]store.Machine, string, error) { return ms.ListMachines(ctx(t), f.app.ID, true, p) })
	if len(list) != 0 {
		t.Fatalf("refused creations stored %d machines", len(list))
	}
}

func testMachineList(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	other := MustApp(t, s, f.org.ID, "other")
	// Created out of order: the list is by creation time, then id.
	var want []store.Machine
	for _, tc := range []struct {
		i     int
		at    time.Duration
		state store.MachineState
	}{{3, 2 * time.Second, store.MachineStopped}, {1, time.Second, store.MachineStarted}, {2, 2 * time.Second, store.MachineDestroyed}, {0, 3 * time.Second, store.MachineCreated}} {
		m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(tc.i), "m"+strconv.Itoa(tc.i), tc.state, at(tc.at)))
		must(t, err)
		want = append(want, m)
	}
	_, err := ms.CreateMachine(ctx(t), NewMachine(other.ID, machineID(9), "m9", store.MachineStarted, t0))
	must(t, err)
	every := []store.Machine{want[1], want[2], want[0], want[3]}
	got := all(t, pageSize, func(p store.Page) ([]store.Machine, string, error) { return ms.ListMachines(ctx(t), f.app.ID, true, p) })
	wantEqual(t, "ListMachines with destroyed ones", got, every)
	got = all(t, pageSize, func(p store.Page) ([]store.Machine, string, error) {
		return ms.ListMachines(ctx(t), f.app.ID, false, p)
	})
	wantEqual(t, "ListMachines", got, []store.Machine{want[1], want[0], want[3]})
	for _, id := range unknownIDs {
		got := all(t, pageSize, func(p store.Page) ([]store.Machine, string, error) { return ms.ListMachines(ctx(t), id, true, p) })
		if got == nil || len(got) != 0 {
			t.Fatalf("unknown app %d: machines %#v, want an empty list", id, got)
		}
	}
}

func testMachineUpdate(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(1), "w1", store.MachineStopped, t0))
	must(t, err)
	_, err = ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(2), "w2", store.MachineStopped, t0))
	must(t, err)

	// Every field but the id, app, creation time, lease and version is
	// replaced.
	up := m
	up.Name, up.State, up.Next, up.NextAt = "renamed", store.MachineStarting, store.MachineStarted, at(time.Second)
	up.Region, up.ImageRef, up.InstanceID, up.PrivateIP = "fra", "registry.example/worker:2", "01J0000000000000000000002", ""
	up.Config, up.Metadata, up.UpdatedAt = `{"image":"registry.example/worker:2"}`, map[string]string{"a": "b"}, at(time.Second)
	up.CreatedAt = at(time.Hour) // ignored
	got, err := ms.UpdateMachine(ctx(t), up, store.MachineEvent{Type: "start", Status: "starting", Source: "user", Timestamp: at(time.Second)})
	must(t, err)
	want := up
	want.CreatedAt, want.UpdatedAt, want.NextAt, want.Version = m.CreatedAt, stored(up.UpdatedAt), stored(up.NextAt), 2
	wantEqual(t, "updated machine", got, want)
	read, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	wantEqual(t, "machine read after the update", read, want)

	// An update decided on an older version changes nothing.
	stale := m
	stale.State = store.MachineDestroyed
	_, err = ms.UpdateMachine(ctx(t), stale, store.MachineEvent{Type: "destroy", Status: "destroyed", Source: "user", Timestamp: at(2 * time.Second)})
	wantErr(t, err, store.ErrStale)
	wantErr(t, err, store.ErrConflict)
	read, err = ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	wantEqual(t, "machine after a stale update", read, want)
	events, err := ms.ListMachineEvents(ctx(t), f.app.ID, m.ID, 10)
	must(t, err)
	if len(events) != 1 {
		t.Fatalf("a stale update appended events: %v", events)
	}

	// Back to rest: the transition is cleared.
	rest := read
	rest.State, rest.Next, rest.NextAt = store.MachineStarted, "", time.Time{}
	got, err = ms.UpdateMachine(ctx(t), rest)
	must(t, err)
	if got.Next != "" || !got.NextAt.IsZero() || got.Version != 3 {
		t.Fatalf("machine at rest: %+v", got)
	}

	// The name of another live machine is taken; the version did not move.
	taken := got
	taken.Name = "w2"
	_, err = ms.UpdateMachine(ctx(t), taken)
	wantErr(t, err, store.ErrExists)
	read, err = ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	if read.Version != 3 || read.Name != "renamed" {
		t.Fatalf("a refused update changed the machine: %+v", read)
	}

	// Unknown machine, wrong app, invalid record.
	ghost := NewMachine(f.app.ID, machineID(7), "ghost", store.MachineStopped, t0)
	ghost.Version = 1
	_, err = ms.UpdateMachine(ctx(t), ghost)
	wantErr(t, err, store.ErrNotFound)
	moved := read
	moved.AppID = MustApp(t, s, f.org.ID, "other").ID
	_, err = ms.UpdateMachine(ctx(t), moved)
	wantErr(t, err, store.ErrNotFound)
	bad := read
	bad.State = "gone"
	_, err = ms.UpdateMachine(ctx(t), bad)
	wantErr(t, err, store.ErrInvalid)
	_, err = ms.UpdateMachine(ctx(t), read, store.MachineEvent{Type: "x"})
	wantErr(t, err, store.ErrInvalid)
}

func testMachineEvents(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(1), "w1", store.MachineStopped, t0))
	must(t, err)
	events, err := ms.ListMachineEvents(ctx(t), f.app.ID, m.ID, 10)
	must(t, err)
	if events == nil || len(events) != 0 {
		t.Fatalf("a machine created without events has %#v", events)
	}

	// Appended in order, several per update, listed newest first. Times
	// need not grow: the order is the order of appending.
	var appended []store.MachineEvent
	for i := range store.MaxMachineEvents + 10 {
		e1 := store.MachineEvent{Type: "start", Status: "starting", Source: "user", Timestamp: at(time.Duration(i) * time.Second)}
		e2 := store.MachineEvent{Type: "start", Status: "started" + strconv.Itoa(i), Source: "flyd", Timestamp: at(time.Duration(i)*time.Second - time.Millisecond)}
		m, err = ms.UpdateMachine(ctx(t), m, e1, e2)
		must(t, err)
		appended = append(appended, e1, e2)
	}
	newest := func(n int) []store.MachineEvent {
		var out []store.MachineEvent
		for i := len(appended) - 1; i >= len(appended)-n; i-- {
			e := appended[i]
			e.Timestamp = stored(e.Timestamp)
			out = append(out, e)
		}
		return out
	}
	events, err = ms.ListMachineEvents(ctx(t), f.app.ID, m.ID, 3)
	must(t, err)
	wantEqual(t, "3 newest events", events, newest(3))
	events, err = ms.ListMachineEvents(ctx(t), f.app.ID, m.ID, store.MaxMachineEvents)
	must(t, err)
	wantEqual(t, "MaxMachineEvents newest events", events, newest(store.MaxMachineEvents))

	_, err = ms.ListMachineEvents(ctx(t), f.app.ID, m.ID, 0)
	wantErr(t, err, store.ErrInvalid)
	_, err = ms.ListMachineEvents(ctx(t), f.app.ID, machineID(2), 10)
	wantErr(t, err, store.ErrNotFound)
	_, err = ms.ListMachineEvents(ctx(t), f.app.ID+1000, m.ID, 10)
	wantErr(t, err, store.ErrNotFound)
}

func testMachineLeases(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(1), "w1", store.MachineStopped, t0))
	must(t, err)
	first := store.MachineLease{Nonce: "nonce-1", Owner: "token:a", ExpiresAt: at(30 * time.Second), Version: "v1"}

	got, err := ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, first, at(time.Second))
	must(t, err)
	wantLease := first
	wantLease.ExpiresAt = stored(first.ExpiresAt)
	wantEqual(t, "acquired lease", got.Lease, wantLease)
	if got.Version != 2 {
		t.Fatalf("acquiring a lease left the version at %d", got.Version)
	}
	read, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	wantEqual(t, "machine read with its lease", read, got)

	// Held: another holder is refused and told who holds it.
	second := store.MachineLease{Nonce: "nonce-2", Owner: "token:b", ExpiresAt: at(time.Minute)}
	held, err := ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, second, at(29*time.Second))
	wantErr(t, err, store.ErrLeased)
	wantErr(t, err, store.ErrConflict)
	wantEqual(t, "the lease that holds the machine", held.Lease, wantLease)
	_, err = ms.RefreshMachineLease(ctx(t), f.app.ID, m.ID, "nonce-2", at(time.Hour), at(2*time.Second))
	wantErr(t, err, store.ErrLeased)
	_, err = ms.ReleaseMachineLease(ctx(t), f.app.ID, m.ID, "nonce-2", at(2*time.Second))
	wantErr(t, err, store.ErrLeased)

	// The holder refreshes it.
	got, err = ms.RefreshMachineLease(ctx(t), f.app.ID, m.ID, "nonce-1", at(40*time.Second), at(29*time.Second))
	must(t, err)
	if !got.Lease.ExpiresAt.Equal(stored(at(40*time.Second))) || got.Lease.Nonce != "nonce-1" || got.Version != 3 {
		t.Fatalf("refreshed lease: %+v version %d", got.Lease, got.Version)
	}
	// Updates keep it.
	upd, err := ms.UpdateMachine(ctx(t), got)
	must(t, err)
	wantEqual(t, "lease after an update", upd.Lease, got.Lease)

	// Expired (checked against the time passed in): the old nonce no
	// longer works, and another holder takes it.
	_, err = ms.RefreshMachineLease(ctx(t), f.app.ID, m.ID, "nonce-1", at(time.Hour), at(40*time.Second))
	wantErr(t, err, store.ErrNoLease)
	wantErr(t, err, store.ErrNotFound)
	got, err = ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, second, at(40*time.Second))
	must(t, err)
	if got.Lease.Nonce != "nonce-2" {
		t.Fatalf("lease after expiry: %+v", got.Lease)
	}

	// Released: nothing holds it, and releasing again finds no lease.
	got, err = ms.ReleaseMachineLease(ctx(t), f.app.ID, m.ID, "nonce-2", at(41*time.Second))
	must(t, err)
	wantEqual(t, "released lease", got.Lease, store.MachineLease{})
	read, err = ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	wantEqual(t, "machine read after release", read, got)
	_, err = ms.ReleaseMachineLease(ctx(t), f.app.ID, m.ID, "nonce-2", at(42*time.Second))
	wantErr(t, err, store.ErrNoLease)
	_, err = ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, first, at(42*time.Second))
	must(t, err)

	// Unknown machines and invalid arguments.
	_, err = ms.AcquireMachineLease(ctx(t), f.app.ID, machineID(2), first, at(time.Second))
	wantErr(t, err, store.ErrNotFound)
	if errors.Is(err, store.ErrNoLease) {
		t.Fatal("an unknown machine is reported as one without a lease")
	}
	for _, bad := range []store.MachineLease{
		{Owner: "o", ExpiresAt: at(time.Minute)},
		{Nonce: "n", ExpiresAt: at(time.Minute)},
		{Nonce: "n", Owner: "o"},
		{Nonce: "n\x00", Owner: "o", ExpiresAt: at(time.Minute)},
	} {
		_, err = ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, bad, at(time.Hour))
		wantErr(t, err, store.ErrInvalid)
	}
	_, err = ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, second, time.Time{})
	wantErr(t, err, store.ErrInvalid)
	_, err = ms.RefreshMachineLease(ctx(t), f.app.ID, m.ID, "nonce-1", time.Time{}, at(time.Second))
	wantErr(t, err, store.ErrInvalid)
	_, err = ms.ReleaseMachineLease(ctx(t), f.app.ID, m.ID, "nonce-1", time.Time{})
	wantErr(t, err, store.ErrInvalid)
}

func testMachineMetadata(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(1), "w1", store.MachineStopped, t0))
	must(t, err)

	got, err := ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, m.Version, "queue", "celery", at(time.Second))
	must(t, err)
	wantEqual(t, "metadata", got.Metadata, map[string]string{"queue": "celery", "role": "worker"})
	if got.Version != 2 || !got.UpdatedAt.Equal(stored(at(time.Second))) {
		t.Fatalf("after setting metadata: version %d, updated at %v", got.Version, got.UpdatedAt)
	}
	got, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, got.Version, "queue", "", at(2*time.Second))
	must(t, err)
	wantEqual(t, "overwritten metadata", got.Metadata, map[string]string{"queue": "", "role": "worker"})
	got, err = ms.DeleteMachineMetadata(ctx(t), f.app.ID, m.ID, got.Version, "role", at(3*time.Second))
	must(t, err)
	read, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	wantEqual(t, "machine read after metadata changes", read, got)
	wantEqual(t, "metadata after delete", read.Metadata, map[string]string{"queue": ""})

	_, err = ms.DeleteMachineMetadata(ctx(t), f.app.ID, m.ID, got.Version, "role", at(4*time.Second))
	wantErr(t, err, store.ErrNotFound)
	_, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, m.Version, "stale", "x", at(4*time.Second))
	wantErr(t, err, store.ErrStale)
	_, err = ms.DeleteMachineMetadata(ctx(t), f.app.ID, m.ID, m.Version, "queue", at(4*time.Second))
	wantErr(t, err, store.ErrStale)
	_, err = ms.SetMachineMetadata(ctx(t), f.app.ID, machineID(2), 1, "k", "v", at(4*time.Second))
	wantErr(t, err, store.ErrNotFound)
	for _, kv := range [][2]string{{"", "v"}, {"k\x00", "v"}, {"k", strings.Repeat("v", store.MaxMetadataValueLen+1)}} {
		_, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, got.Version, kv[0], kv[1], at(4*time.Second))
		wantErr(t, err, store.ErrInvalid)
	}
	_, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, got.Version, "k", "v", time.Time{})
	wantErr(t, err, store.ErrInvalid)

	// At most MaxMetadataKeys entries; overwriting one when full is fine.
	v := got.Version
	for i := 1; i < store.MaxMetadataKeys; i++ {
		got, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, v, "k"+strconv.Itoa(i), "v", at(5*time.Second))
		must(t, err)
		v = got.Version
	}
	_, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, v, "one-too-many", "v", at(6*time.Second))
	wantErr(t, err, store.ErrInvalid)
	_, err = ms.SetMachineMetadata(ctx(t), f.app.ID, m.ID, v, "k1", "w", at(6*time.Second))
	must(t, err)
}

// testConcurrentMachineUpdates runs read-modify-write loops on one
// machine from several goroutines: with compare-and-set and retries, no
// increment is lost and every event is kept.
func testConcurrentMachineUpdates(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(1), "w1", store.MachineStopped, t0))
	must(t, err)
	const perWorker = 10
	var stale atomic.Int64
	errs := parallel(func(i int) error {
		for j := 0; j < perWorker; {
			cur, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(cur.Metadata["n"])
			cur.Metadata["n"] = strconv.Itoa(n + 1)
			if j%2 == 0 {
				cur.State = store.MachineStarted
			} else {
				cur.State = store.MachineStopped
			}
			_, err = ms.UpdateMachine(ctx(t), cur, store.MachineEvent{Type: "tick", Status: string(cur.State),
				Source: "worker " + strconv.Itoa(i), Timestamp: at(time.Second)})
			if errors.Is(err, store.ErrStale) {
				stale.Add(1)
				continue
			}
			if err != nil {
				return err
			}
			j++
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	got, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	if got.Metadata["n"] != strconv.Itoa(concurrency*perWorker) || got.Version != uint64(1+concurrency*perWorker) {
		t.Fatalf("after %d updates: n = %s, version %d (%d stale attempts)", concurrency*perWorker, got.Metadata["n"], got.Version, stale.Load())
	}
	events, err := ms.ListMachineEvents(ctx(t), f.app.ID, m.ID, store.MaxMachineEvents)
	must(t, err)
	if len(events) != min(concurrency*perWorker, store.MaxMachineEvents) {
		t.Fatalf("%d events kept, want one per successful update", len(events))
	}
	t.Logf("%d stale attempts retried", stale.Load())
}

// testConcurrentMachineLeases has several holders race for one lease:
// exactly one wins, and the others learn who holds it.
func testConcurrentMachineLeases(t *testing.T, s store.Store) {
	ms := machinesOf(t, s)
	f := newFixture(t, s)
	m, err := ms.CreateMachine(ctx(t), NewMachine(f.app.ID, machineID(1), "w1", store.MachineStopped, t0))
	must(t, err)
	var winners atomic.Int64
	var winner atomic.Value
	errs := parallel(func(i int) error {
		l := store.MachineLease{Nonce: "nonce-" + strconv.Itoa(i), Owner: "o", ExpiresAt: at(time.Minute)}
		got, err := ms.AcquireMachineLease(ctx(t), f.app.ID, m.ID, l, at(time.Second))
		switch {
		case err == nil:
			winners.Add(1)
			winner.Store(l.Nonce)
			return nil
		case errors.Is(err, store.ErrLeased):
			if !strings.HasPrefix(got.Lease.Nonce, "nonce-") || got.Lease.Nonce == l.Nonce {
				return fmt.Errorf("refused, but told the holder is %q", got.Lease.Nonce)
			}
			return nil
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
	}
	if winners.Load() != 1 {
		t.Fatalf("%d holders acquired the lease, want 1", winners.Load())
	}
	got, err := ms.GetMachine(ctx(t), f.app.ID, m.ID)
	must(t, err)
	if got.Lease.Nonce != winner.Load() || got.Version != 2 {
		t.Fatalf("lease %q version %d, want the winner's %q at version 2", got.Lease.Nonce, got.Version, winner.Load())
	}
}
