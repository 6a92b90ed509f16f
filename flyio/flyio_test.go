package flyio_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
)

func set(t *testing.T, js string) caveat.CaveatSet {
	t.Helper()
	cs, err := caveat.ParseJSON([]byte(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return caveat.NewCaveatSet(cs...)
}

func access(t *testing.T, js string) *flyio.Access {
	t.Helper()
	var a flyio.Access
	if err := json.Unmarshal([]byte(js), &a); err != nil {
		t.Fatal(err)
	}
	a.Time = time.Unix(1750000000, 0)
	return &a
}

// The autoscaler's token: Organization, Apps and Machines{"": rC}.
const autoscaler = `[
	{"type": "Organization", "body": {"id": 4721, "mask": "rwcdC"}},
	{"type": "Apps", "body": {"apps": {"555": "rwcdC"}}},
	{"type": "Machines", "body": {"machines": {"": "rC"}}}]`

// TestDenialsNameCaveatActionAndResource: a refusal says which caveat
// refused, which action on which resource, and what was permitted.
func TestDenialsNameCaveatActionAndResource(t *testing.T) {
	s := set(t, autoscaler)
	for _, tc := range []struct {
		access string
		want   []string
		class  error
	}{
		{`{"orgid": 4721, "appid": 555, "machine": "m1", "action": "d"}`,
			[]string{"caveat 2 (Machines)", `action d on machine "m1"`, "d not permitted", "permitted: rC"},
			caveat.ErrUnauthorizedForAction},
		{`{"orgid": 4721, "appid": 556, "machine": "m1", "action": "r"}`,
			[]string{"caveat 1 (Apps)", "app 556 not allowed", "allowed: 555"},
			caveat.ErrUnauthorizedForResource},
		{`{"orgid": 1, "appid": 555, "action": "r"}`,
			[]string{"caveat 0 (Organization)", "organization 1 not allowed", "allowed: 4721"},
			caveat.ErrUnauthorizedForResource},
		{`{"orgid": 4721, "appid": 555, "action": "c"}`,
			[]string{"caveat 2 (Machines)", "names no machine"},
			caveat.ErrResourceUnspecified},
		{`{"orgid": 4721, "appid": 555, "machine": "m1", "volume": "v", "action": "r"}`,
			[]string{"access:", "machine and volume"},
			caveat.ErrResourcesMutuallyExclusive},
	} {
		err := s.Clear(access(t, tc.access))
		if !errors.Is(err, tc.class) {
			t.Errorf("%s: %v, want %v", tc.access, err, tc.class)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.access, err, w)
			}
		}
	}
	if err := s.Clear(access(t, `{"orgid": 4721, "appid": 555, "machine": "m1", "action": "C"}`)); err != nil {
		t.Errorf("start machine: %v", err)
	}
}

// TestClearAllocations: clearing an allowed access against the hot-path
// caveats allocates nothing.
func TestClearAllocations(t *testing.T) {
	s := set(t, autoscaler+``)
	s = append(s, set(t, `[
		{"type": "ValidityWindow", "body": {"not_before": 1700000000, "not_after": 1800000000}},
		{"type": "IfPresent", "body": {"ifs": [{"type": "Volumes", "body": {"volumes": {"v": "r"}}}], "else": "rC"}},
		{"type": "Action", "body": "rwC"},
		{"type": "IsMember", "body": {}},
		{"type": "AllowedRoles", "body": 1},
		{"type": "IsUser", "body": {"uint64": 3}},
		{"type": "FeatureSet", "body": {"features": {"": "r"}}},
		{"type": "StorageObjects", "body": {"storage_objects": {"": "r"}}}]`)...)
	a := access(t, `{"orgid": 4721, "appid": 555, "machine": "m1", "action": "C"}`)
	// FeatureSet and StorageObjects do not apply (the access names neither),
	// so clear them separately against accesses that do.
	main, rest := s[:len(s)-2], s[len(s)-2:]
	if err := main.Clear(a); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = main.Clear(a) }); n != 0 {
		t.Errorf("Clear allocates %v times", n)
	}
	for i, js := range []string{`{"orgid": 1, "feature": "wg", "action": "r"}`,
		`{"orgid": 1, "storage_object": "https://x/y", "action": "r"}`} {
		b := access(t, js)
		one := rest[i : i+1]
		if err := one.Clear(b); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = one.Clear(b) }); n != 0 {
			t.Errorf("%s: Clear allocates %v times", one[0].Name(), n)
		}
	}
	for _, c := range s {
		if n := testing.AllocsPerRun(100, func() { _ = c.Canonical() }); n != 0 {
			t.Errorf("%s: Canonical allocates %v times", c.Name(), n)
		}
	}
}

func TestStorageObjectPrefixesIntersect(t *testing.T) {
	s := set(t, `[{"type": "StorageObjects", "body": {"storage_objects": {
		"https://s/": "r", "https://s/b/": "rw", "https://t/": "rwcd"}}}]`)
	for js, want := range map[string]error{
		`{"orgid": 1, "storage_object": "https://s/b/f", "action": "r"}`:  nil,
		`{"orgid": 1, "storage_object": "https://s/b/f", "action": "w"}`:  caveat.ErrUnauthorizedForAction,
		`{"orgid": 1, "storage_object": "https://t/x", "action": "w"}`:    nil,
		`{"orgid": 1, "storage_object": "https://u/x", "action": "r"}`:    caveat.ErrUnauthorizedForResource,
		`{"orgid": 1, "storage_object": "https://s", "action": "r"}`:      caveat.ErrUnauthorizedForResource,
		`{"orgid": 1, "feature": "wg", "action": "r"}`:                    caveat.ErrResourceUnspecified,
		`{"orgid": 1, "storage_object": "https://s/b/", "action": "rw"}`:  caveat.ErrUnauthorizedForAction,
		`{"orgid": 1, "storage_object": "https://s/bx/", "action": "r"}`:  nil,
		`{"orgid": 1, "storage_object": "https://s/bx/", "action": "rw"}`: caveat.ErrUnauthorizedForAction,
	} {
		err := s.Clear(access(t, js))
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s: %v, want %v", js, err, want)
		}
	}
}

func TestCommands(t *testing.T) {
	s := set(t, `[{"type": "Commands", "body": [{"args": ["uptime"], "exact": true}, {"args": ["ls", "-l"]}]}]`)
	for js, allowed := range map[string]bool{
		`{"orgid": 1, "appid": 2, "machine": "m", "command": ["uptime"]}`:           true,
		`{"orgid": 1, "appid": 2, "machine": "m", "command": ["uptime", "-p"]}`:     false,
		`{"orgid": 1, "appid": 2, "machine": "m", "command": ["ls", "-l"]}`:         true,
		`{"orgid": 1, "appid": 2, "machine": "m", "command": ["ls", "-l", "/tmp"]}`: true,
		`{"orgid": 1, "appid": 2, "machine": "m", "command": ["ls"]}`:               false,
		`{"orgid": 1, "appid": 2, "machine": "m", "command": []}`:                   false,
	} {
		if err := s.Clear(access(t, js)); (err == nil) != allowed {
			t.Errorf("%s: %v, want allowed %v", js, err, allowed)
		}
	}
	err := s.Clear(access(t, `{"orgid": 1, "appid": 2, "machine": "m"}`))
	if !errors.Is(err, caveat.ErrResourceUnspecified) {
		t.Errorf("no command: %v", err)
	}
}

func TestRequiredRole(t *testing.T) {
	for js, want := range map[string]flyio.Role{
		`{"orgid": 1, "action": "rwcdC"}`:                          flyio.RoleMember,
		`{"orgid": 1, "feature": "wg", "action": "rwcdC"}`:         flyio.RoleMember,
		`{"orgid": 1, "feature": "billing", "action": "r"}`:        flyio.RoleMember,
		`{"orgid": 1, "feature": "billing", "action": "w"}`:        flyio.RoleAdmin,
		`{"orgid": 1, "feature": "deletion", "action": ""}`:        flyio.RoleMember,
		`{"orgid": 1, "feature": "deletion", "action": "r"}`:       flyio.RoleAdmin,
		`{"orgid": 1, "feature": "", "action": ""}`:                flyio.RoleAdmin,
		`{"orgid": 1, "feature": "no-such-feature", "action": ""}`: flyio.RoleAdmin,
	} {
		if got := access(t, js).RequiredRole(); got != want {
			t.Errorf("%s: %v, want %v", js, got, want)
		}
	}
	billing := set(t, `[{"type": "AllowedRoles", "body": 3}]`)
	if err := billing.Clear(access(t, `{"orgid": 1, "feature": "billing", "action": "w"}`)); !errors.Is(err, caveat.ErrUnauthorizedForRole) {
		t.Errorf("member+billing_manager writing billing: %v", err)
	} else if !strings.Contains(err.Error(), "needs the admin role") {
		t.Errorf("message %q does not name the role needed", err)
	}
}

// TestOtherAccessTypes: flyio caveats refuse an access that is not a
// *flyio.Access as invalid, rather than guessing.
func TestOtherAccessTypes(t *testing.T) {
	s := set(t, autoscaler)
	for i := range s {
		err := s[i : i+1].Clear(otherAccess{})
		if !errors.Is(err, caveat.ErrInvalidAccess) {
			t.Errorf("%s: %v, want ErrInvalidAccess", s[i].Name(), err)
		}
	}
}

type otherAccess struct{}

func (otherAccess) Now() time.Time           { return time.Unix(1750000000, 0) }
func (otherAccess) Validate() error          { return nil }
func (otherAccess) GetAction() resset.Action { return resset.ActionRead }

func TestJSONErrorsNameTheField(t *testing.T) {
	for js, want := range map[string]string{
		`[{"type": "Organization", "body": {"id": 1, "mask": 31}}]`:       `mask`,
		`[{"type": "Apps", "body": {"apps": {"x": "r"}}}]`:                `apps`,
		`[{"type": "Machines", "body": {"machine": {"": "r"}}}]`:          `"machine"`,
		`[{"type": "IfPresent", "body": {"ifs": null, "else": "r"}}]`:     `ifs`,
		`[{"type": "AllowedRoles", "body": 4294967296}]`:                  `AllowedRoles`,
		`[{"type": "Commands", "body": [{"args": ["x"], "exact": "y"}]}]`: `exact`,
	} {
		_, err := caveat.ParseJSON([]byte(js))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "caveat 0") {
			t.Errorf("%s: %v, want an error naming caveat 0 and %s", js, err, want)
		}
	}
}
