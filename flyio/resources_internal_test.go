package flyio

// The rules of resource sets (spec §6.2) on encoded sets, as every
// resource-set caveat clears them (moved here from resset, whose CheckString
// and CheckUint were exported only for this package).

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/resset"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadSets(t *testing.T) {
	for _, bad := range []string{
		"82a162 01a161 01", // keys out of order
		"82a161 01a161 01", // duplicate key
		"82a161 cd0001 a162 01",
		"81a161 ce00010000", // mask wider than 16 bits
		"81c40161 01",       // bin key
		"81a161",            // truncated
		"81a161 01 00",      // trailing data
		"de0001a16101",      // map16 header for one entry
	} {
		b := mustHex(t, bad)
		body := append([]byte{0x91}, b...) // the caveat body [set]
		if err := machinesKind.canonical(body); err == nil {
			t.Errorf("canonical(%s) accepted", bad)
		}
		q := query{kind: machinesKind, present: true, str: "a", action: resset.ActionRead}
		if err := q.check(b); !errors.Is(err, caveat.ErrBadCaveat) {
			t.Errorf("check(%s) = %v, want ErrBadCaveat", bad, err)
		}
	}
}

func TestCheckRules(t *testing.T) {
	enc := func(s resset.ResourceSet[string]) []byte { return s.AppendMsgpack(nil) }
	q := func(id string, present bool, action string) *query {
		return &query{kind: machinesKind, present: present, str: id, action: resset.ParseAction(action)}
	}
	for _, tc := range []struct {
		name string
		set  []byte
		q    *query
		want error
	}{
		{"wildcard", enc(resset.ResourceSet[string]{"": 0x11}), q("m1", true, "rC"), nil},
		{"wildcard action", enc(resset.ResourceSet[string]{"": 0x11}), q("m1", true, "d"), caveat.ErrUnauthorizedForAction},
		{"zero id mixed", enc(resset.ResourceSet[string]{"": 1, "m1": 1}), q("m1", false, "r"), caveat.ErrBadCaveat},
		{"unspecified", enc(resset.ResourceSet[string]{"m1": 1}), q("", false, "r"), caveat.ErrResourceUnspecified},
		{"not listed", enc(resset.ResourceSet[string]{"m1": 1}), q("m2", true, "r"), caveat.ErrUnauthorizedForResource},
		{"nil set", []byte{0xc0}, q("m1", true, ""), caveat.ErrUnauthorizedForResource},
		{"empty set", []byte{0x80}, q("m1", true, ""), caveat.ErrUnauthorizedForResource},
		{"empty id vs listed", enc(resset.ResourceSet[string]{"m1": 1}), q("", true, "r"), caveat.ErrUnauthorizedForResource},
		{"star mask", enc(resset.ResourceSet[string]{"m1": 0xffff}), q("m1", true, "rwcdC"), nil},
	} {
		err := tc.q.check(tc.set)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	u := resset.ResourceSet[uint64]{10: 0x1f, 20: 1}.AppendMsgpack(nil)
	err := (&query{kind: appsKind, present: true, uint: 0, action: resset.ActionCreate}).check(u)
	if !errors.Is(err, caveat.ErrUnauthorizedForResource) || !strings.Contains(err.Error(), "allowed: 10, 20") {
		t.Errorf("app 0 against listed ids: %v", err)
	}
	err = (&query{kind: appsKind, present: true, uint: 20, action: 3}).check(u)
	if !errors.Is(err, caveat.ErrUnauthorizedForAction) || err.Error() !=
		"unauthorized for action: action rw on app 20: w not permitted (permitted: r)" {
		t.Errorf("message: %v", err)
	}
}
