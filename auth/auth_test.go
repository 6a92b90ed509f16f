package auth_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// otherAccess is an access that is not a discharge request.
type otherAccess struct{}

func (otherAccess) Now() time.Time  { return time.Unix(1750000000, 0) }
func (otherAccess) Validate() error { return nil }

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestStrictDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		t    caveat.CaveatType
		hex  string
	}{
		{"ConfineUser uint8 for fixint", auth.TypeConfineUser, "91cc7b"},
		{"ConfineUser two fields", auth.TypeConfineUser, "927b00"},
		{"ConfineUser empty record", auth.TypeConfineUser, "90"},
		{"ConfineUser bare uint", auth.TypeConfineUser, "7b"},
		{"ConfineUser as map", auth.TypeConfineUser, "81a249447b"},
		{"ConfineUser array16", auth.TypeConfineUser, "dc00017b"},
		{"ConfineUser trailing byte", auth.TypeConfineUser, "917b00"},
		{"ConfineOrganization signed code", auth.TypeConfineOrganization, "91d07b"},
		{"ConfineOrganization negative", auth.TypeConfineOrganization, "91ff"},
		{"ConfineGoogleHD bin for str", auth.TypeConfineGoogleHD, "c403616263"},
		{"ConfineGoogleHD str8 for fixstr", auth.TypeConfineGoogleHD, "d903616263"},
		{"ConfineGoogleHD nil", auth.TypeConfineGoogleHD, "c0"},
		{"ConfineGitHubOrg uint64 for uint32", auth.TypeConfineGitHubOrg, "cf00000000ffffffff"},
		{"ConfineGitHubOrg record", auth.TypeConfineGitHubOrg, "917b"},
		{"MaxValidity uint16 for uint8", auth.TypeMaxValidity, "cd00ff"},
		{"MaxValidity negative", auth.TypeMaxValidity, "ff"},
		{"FlyioUserID int8", auth.TypeFlyioUserID, "d005"},
		{"FlyioUserID empty", auth.TypeFlyioUserID, ""},
		{"GitHubUserID str", auth.TypeGitHubUserID, "a131"},
		{"GoogleUserID leading zero", auth.TypeGoogleUserID, "c4020001"},
		{"GoogleUserID zero as one byte", auth.TypeGoogleUserID, "c40100"},
		{"GoogleUserID str for bin", auth.TypeGoogleUserID, "a101"},
		{"GoogleUserID bin16 for bin8", auth.TypeGoogleUserID, "c5000101"},
		{"GoogleUserID nil", auth.TypeGoogleUserID, "c0"},
		{"GoogleUserID uint", auth.TypeGoogleUserID, "7b"},
		{"GoogleUserID truncated", auth.TypeGoogleUserID, "c40201"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, ok := caveat.Lookup(tc.t)
			if !ok {
				t.Fatalf("type %d not registered", tc.t)
			}
			body := mustHex(t, tc.hex)
			if c, err := info.Decode(body); err == nil {
				t.Errorf("Decode accepted %s as %#v", tc.hex, c)
			}
			if err := (caveat.RawCaveat{Type: tc.t, Body: body}).Canonical(); err == nil {
				t.Errorf("Canonical accepted %s", tc.hex)
			}
			err := caveat.RawCaveat{Type: tc.t, Body: body}.Check(&auth.DischargeRequest{})
			if !errors.Is(err, caveat.ErrBadCaveat) {
				t.Errorf("Check = %v, want ErrBadCaveat", err)
			}
		})
	}
}

func TestRegistration(t *testing.T) {
	tests := []struct {
		t           caveat.CaveatType
		name        string
		record      int
		attestation bool
	}{
		{auth.TypeConfineUser, "ConfineUser", 1, false},
		{auth.TypeConfineOrganization, "ConfineOrganization", 1, false},
		{auth.TypeConfineGoogleHD, "ConfineGoogleHD", 0, false},
		{auth.TypeConfineGitHubOrg, "ConfineGitHubOrg", 0, false},
		{auth.TypeMaxValidity, "MaxValidity", 0, false},
		{auth.TypeFlyioUserID, "FlyioUserID", 0, true},
		{auth.TypeGitHubUserID, "GitHubUserID", 0, true},
		{auth.TypeGoogleUserID, "GoogleUserID", 0, true},
	}
	for _, tc := range tests {
		info, ok := caveat.Lookup(tc.t)
		if !ok {
			t.Errorf("type %d not registered", tc.t)
			continue
		}
		if info.Name != tc.name || info.Record != tc.record || info.Attestation != tc.attestation {
			t.Errorf("type %d: name %q record %d attestation %v, want %q %d %v",
				tc.t, info.Name, info.Record, info.Attestation, tc.name, tc.record, tc.attestation)
		}
		if got := info.New().CaveatType(); got != tc.t {
			t.Errorf("%s: New().CaveatType() = %d", tc.name, got)
		}
	}
}

func TestAgainstOtherAccess(t *testing.T) {
	for _, c := range []caveat.Caveat{
		&auth.ConfineUser{ID: 1}, &auth.ConfineOrganization{ID: 1},
		ptr(auth.ConfineGoogleHD("example.com")), ptr(auth.ConfineGitHubOrg(1)), ptr(auth.MaxValidity(60)),
	} {
		for _, a := range []caveat.Access{otherAccess{}, (*auth.DischargeRequest)(nil)} {
			if err := c.Prohibits(a); !errors.Is(err, caveat.ErrInvalidAccess) {
				t.Errorf("%T against %T: %v, want ErrInvalidAccess", c, a, err)
			}
			err := caveat.Encode(c).Check(a)
			if !errors.Is(err, caveat.ErrInvalidAccess) {
				t.Errorf("%T Check against %T: %v, want ErrInvalidAccess", c, a, err)
			}
		}
	}
}

// Attestations are skipped at the top level by Clear, but refuse whenever
// they are evaluated (inside IfPresent): a fact is not a restriction.
func TestAttestationsRefuseWhenEvaluated(t *testing.T) {
	g, err := auth.ParseGoogleUserID("118270318312093480297")
	if err != nil {
		t.Fatal(err)
	}
	full := &auth.DischargeRequest{Flyio: []auth.FlyioIdentity{{UserID: 5}}, Time: time.Unix(1, 0)}
	for _, c := range []caveat.Caveat{ptr(auth.FlyioUserID(5)), ptr(auth.GitHubUserID(5)), g} {
		for _, a := range []caveat.Access{otherAccess{}, full} {
			if err := c.Prohibits(a); !errors.Is(err, caveat.ErrBadCaveat) {
				t.Errorf("%T.Prohibits: %v, want ErrBadCaveat", c, err)
			}
			if err := caveat.Encode(c).Check(a); !errors.Is(err, caveat.ErrBadCaveat) {
				t.Errorf("%T Check: %v, want ErrBadCaveat", c, err)
			}
		}
		if err := caveat.NewCaveatSet(c).Clear(full); err != nil {
			t.Errorf("%T at top level: %v, want skipped", c, err)
		}
	}
}

func TestMaxValidity(t *testing.T) {
	now := time.Unix(1750000000, 0)
	tests := []struct {
		name   string
		limit  auth.MaxValidity
		expiry time.Time
		ok     bool
	}{
		{"exactly the limit", 60, now.Add(time.Minute), true},
		{"one nanosecond over", 60, now.Add(time.Minute + 1), false},
		{"already expired", 0, now.Add(-time.Hour), true},
		{"zero limit, now", 0, now, true},
		{"no expiry", 1 << 40, time.Time{}, false},
		{"huge limit", 1<<64 - 1, now.Add(200 * 365 * 24 * time.Hour), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &auth.DischargeRequest{Expiry: tc.expiry, Time: now}
			err := tc.limit.Prohibits(req)
			if (err == nil) != tc.ok {
				t.Fatalf("Prohibits = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, caveat.ErrUnauthorized) {
				t.Errorf("%v does not wrap ErrUnauthorized", err)
			}
		})
	}
	if got := auth.NewMaxValidity(90*time.Second + 999*time.Millisecond); *got != 90 {
		t.Errorf("NewMaxValidity rounds to %d, want 90 (down)", *got)
	}
	if got := auth.NewMaxValidity(-time.Second); *got != 0 {
		t.Errorf("NewMaxValidity(-1s) = %d", *got)
	}
}

func TestIdentityErrors(t *testing.T) {
	req := &auth.DischargeRequest{
		Flyio:  []auth.FlyioIdentity{{UserID: 1, OrganizationIDs: []uint64{10, 11}}, {UserID: 2, OrganizationIDs: []uint64{12}}},
		Google: []auth.GoogleIdentity{{HD: "a.example"}, {HD: "b.example"}},
		GitHub: []auth.GitHubIdentity{{OrgIDs: []uint64{7}}, {OrgIDs: []uint64{8, 9}}},
	}
	tests := []struct {
		c    caveat.Caveat
		want string // "" when allowed
	}{
		{&auth.ConfineUser{ID: 2}, ""},
		{&auth.ConfineUser{ID: 3}, "must authenticate with Fly.io account 3 (got [1 2])"},
		{&auth.ConfineOrganization{ID: 12}, ""},
		{&auth.ConfineOrganization{ID: 13}, "must authenticate with Fly.io account with access to organization 13 (got [10 11 12])"},
		{ptr(auth.ConfineGoogleHD("b.example")), ""},
		{ptr(auth.ConfineGoogleHD("B.example")), "must authenticate with B.example Google account (got [a.example b.example])"},
		{ptr(auth.ConfineGitHubOrg(9)), ""},
		{ptr(auth.ConfineGitHubOrg(1)), "must authenticate with GitHub account with access to organization 1 (got [7 8 9])"},
	}
	for _, tc := range tests {
		for _, err := range []error{tc.c.Prohibits(req), caveat.Encode(tc.c).Check(req)} {
			if tc.want == "" {
				if err != nil {
					t.Errorf("%T: %v", tc.c, err)
				}
				continue
			}
			var ie *auth.IdentityError
			if !errors.As(err, &ie) || err.Error() != tc.want {
				t.Errorf("%T: %v, want IdentityError %q", tc.c, err, tc.want)
				continue
			}
			if errors.Is(err, caveat.ErrUnauthorized) {
				t.Errorf("%T: IdentityError wraps ErrUnauthorized", tc.c)
			}
			if !bytes.Equal(ie.Caveat.AppendBody(nil), tc.c.AppendBody(nil)) {
				t.Errorf("%T: IdentityError names a different caveat", tc.c)
			}
		}
	}
}

func TestGoogleUserIDJSON(t *testing.T) {
	for _, bad := range []string{`-1`, `1.5`, `1e3`, `"123"`, `null`, `true`, `[]`, `{}`} {
		var g auth.GoogleUserID
		if err := g.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) = %s, want an error", bad, g.String())
		}
		js := `[{"type":"GoogleUserID","body":` + bad + `}]`
		if _, err := caveat.ParseJSON([]byte(js)); err == nil {
			t.Errorf("ParseJSON accepted %s", js)
		}
	}
	huge := "1" + strings.Repeat("0", 60)
	cs, err := caveat.ParseJSON([]byte(`[{"type":"GoogleUserID","body":` + huge + `}]`))
	if err != nil {
		t.Fatal(err)
	}
	g := cs[0].(*auth.GoogleUserID)
	if g.String() != huge {
		t.Errorf("got %s", g)
	}
	want, _ := new(big.Int).SetString(huge, 10)
	if !bytes.Equal(g.AppendBody(nil), msgpack.AppendBin(nil, want.Bytes())) {
		t.Errorf("body %x", g.AppendBody(nil))
	}
	if _, err := auth.NewGoogleUserID(big.NewInt(-1)); err == nil {
		t.Error("NewGoogleUserID accepted a negative id")
	}
	if _, err := auth.ParseGoogleUserID("12a"); err == nil {
		t.Error("ParseGoogleUserID accepted 12a")
	}
	var zero auth.GoogleUserID
	if got := hex.EncodeToString(zero.AppendBody(nil)); got != "c400" {
		t.Errorf("zero value body %s, want c400", got)
	}
}

func TestDischargeRequestValidate(t *testing.T) {
	req := &auth.DischargeRequest{Google: []auth.GoogleIdentity{{UserID: big.NewInt(-5)}}}
	if err := req.Validate(); !errors.Is(err, caveat.ErrInvalidAccess) {
		t.Errorf("Validate = %v, want ErrInvalidAccess", err)
	}
	if err := (&auth.DischargeRequest{}).Validate(); err != nil {
		t.Errorf("empty request: %v", err)
	}
	if got := (&auth.DischargeRequest{}).Now(); time.Since(got) > time.Minute {
		t.Errorf("Now without Time = %v, want the wall clock", got)
	}
}

// Verification calls Canonical for every caveat and clearing calls Check:
// neither may allocate when the caveat is canonical and allows the access.
func TestNoAllocations(t *testing.T) {
	req := &auth.DischargeRequest{
		Flyio:  []auth.FlyioIdentity{{UserID: 42, OrganizationIDs: []uint64{1234}}},
		Google: []auth.GoogleIdentity{{HD: "example.com"}},
		GitHub: []auth.GitHubIdentity{{OrgIDs: []uint64{99}}},
		Expiry: time.Unix(1750000030, 0),
		Time:   time.Unix(1750000000, 0),
	}
	g, _ := auth.ParseGoogleUserID("118270318312093480297")
	allowed := []caveat.Caveat{
		&auth.ConfineUser{ID: 42}, &auth.ConfineOrganization{ID: 1234},
		ptr(auth.ConfineGoogleHD("example.com")), ptr(auth.ConfineGitHubOrg(99)), ptr(auth.MaxValidity(60)),
	}
	for _, c := range append(allowed, ptr(auth.FlyioUserID(1)), ptr(auth.GitHubUserID(1)), g) {
		raw := caveat.Encode(c)
		if err := raw.Canonical(); err != nil {
			t.Errorf("%T: Canonical: %v", c, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = raw.Canonical() }); n != 0 {
			t.Errorf("%T: Canonical allocates %v times", c, n)
		}
	}
	for _, c := range allowed {
		raw := caveat.Encode(c)
		if n := testing.AllocsPerRun(100, func() { _ = raw.Check(req) }); n != 0 {
			t.Errorf("%T: Check allocates %v times", c, n)
		}
		if err := raw.Check(req); err != nil {
			t.Errorf("%T: %v", c, err)
		}
	}
}

// FuzzDecode checks the strict decoders of every auth type: whatever they
// accept re-encodes to the same bytes, Canonical agrees with Decode, and
// Check never panics.
func FuzzDecode(f *testing.F) {
	for _, h := range []string{"917b", "91cf8000000000000001", "ab6578616d706c652e636f6d", "7b", "cd0e10",
		"c40906695493e1c0b57569", "c400", "c4020001", "927b00", "a0"} {
		f.Add(uint8(0), mustHex(f, h))
	}
	types := []caveat.CaveatType{auth.TypeConfineUser, auth.TypeConfineOrganization, auth.TypeConfineGoogleHD,
		auth.TypeConfineGitHubOrg, auth.TypeMaxValidity, auth.TypeFlyioUserID, auth.TypeGitHubUserID, auth.TypeGoogleUserID}
	req := &auth.DischargeRequest{Flyio: []auth.FlyioIdentity{{UserID: 123, OrganizationIDs: []uint64{123}}},
		Google: []auth.GoogleIdentity{{HD: "example.com"}}, Expiry: time.Unix(100, 0), Time: time.Unix(0, 0)}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		for i, typ := range types {
			if uint8(i) != which%uint8(len(types)) && which != 0 {
				continue
			}
			info, _ := caveat.Lookup(typ)
			c, err := info.Decode(body)
			if (err == nil) != ((caveat.RawCaveat{Type: typ, Body: body}).Canonical() == nil) {
				t.Fatalf("%d: Decode and Canonical disagree on %x: %v", typ, body, err)
			}
			checkErr := caveat.RawCaveat{Type: typ, Body: body}.Check(req)
			if err != nil {
				if !errors.Is(checkErr, caveat.ErrBadCaveat) {
					t.Fatalf("%d: Check of undecodable %x = %v", typ, body, checkErr)
				}
				continue
			}
			if got := c.AppendBody(nil); !bytes.Equal(got, body) {
				t.Fatalf("%d: %x decodes and re-encodes as %x", typ, body, got)
			}
			if pErr := c.Prohibits(req); (pErr == nil) != (checkErr == nil) {
				t.Fatalf("%d: Prohibits %v, Check %v", typ, pErr, checkErr)
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }
