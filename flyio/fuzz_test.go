package flyio_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/vectors"
)

// fuzzAccesses are the accesses every fuzzed body is cleared against.
var fuzzAccesses = []*flyio.Access{
	{OrgID: flyio.Ptr[uint64](4721), AppID: flyio.Ptr[uint64](555), Machine: flyio.Ptr("m1"), Action: 0x11},
	{OrgID: flyio.Ptr[uint64](1234), AppID: flyio.Ptr[uint64](0), Action: 0x04},
	{OrgID: flyio.Ptr[uint64](1), Feature: flyio.Ptr("litefs-cloud"), Cluster: flyio.Ptr("c1"), Action: 1},
	{OrgID: flyio.Ptr[uint64](1), StorageObject: flyio.Ptr("https://storage.fly/bucket/x"), Action: 3},
	{OrgID: flyio.Ptr[uint64](1), AppID: flyio.Ptr[uint64](2), Machine: flyio.Ptr("m"),
		Command: []string{"ls", "-l"}, Mutation: flyio.Ptr("addCertificate"),
		SourceMachine: flyio.Ptr("i"), SourceApp: flyio.Ptr("a"), SourceOrganization: flyio.Ptr("o")},
	{OrgID: flyio.Ptr[uint64](1), Feature: flyio.Ptr("membership"), Action: 2},
}

// FuzzCaveatBody feeds arbitrary bodies to every flyio and resset type and
// holds the registry's contracts: Canonical accepts exactly what Decode
// accepts; what decodes re-encodes to the same bytes; and the allocation-
// free Check (which clearing uses) agrees with Decode followed by
// Prohibits, down to the error class.
func FuzzCaveatBody(f *testing.F) {
	var cases []encodingCase
	vectors.Section(f, "caveat_encodings", &cases)
	n := 0
	for _, tc := range cases {
		if ours[caveat.CaveatType(tc.Type)] {
			f.Add(uint8(tc.Type), vectors.Hex(f, tc.BodyHex))
			n++
		}
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
	now := time.Unix(1750000000, 0)
	for _, a := range fuzzAccesses {
		a.Time = now
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		ct := caveat.CaveatType(typ % 32)
		if !ours[ct] {
			return
		}
		info, _ := caveat.Lookup(ct)
		c, derr := info.Decode(body)
		cerr := caveat.RawCaveat{Type: ct, Body: body}.Canonical()
		if (derr == nil) != (cerr == nil) {
			t.Fatalf("type %d body %x: Decode error %v, Canonical error %v", ct, body, derr, cerr)
		}
		if derr == nil {
			if got := c.AppendBody(nil); !bytes.Equal(got, body) {
				t.Fatalf("type %d: body %x re-encodes to %x", ct, body, got)
			}
		}
		raw := caveat.RawCaveat{Type: ct, Body: body}
		for i, a := range fuzzAccesses {
			checked := raw.Check(a)
			if derr != nil {
				if !errors.Is(checked, caveat.ErrBadCaveat) {
					t.Fatalf("type %d body %x access %d: undecodable, but Check says %v", ct, body, i, checked)
				}
				continue
			}
			typed := c.Prohibits(a)
			if (checked == nil) != (typed == nil) || sameClass(checked, typed) != nil {
				t.Fatalf("type %d body %x access %d: Check %v, Prohibits %v", ct, body, i, checked, typed)
			}
		}
	})
}

// sameClass returns an error when a and b differ in any error class.
func sameClass(a, b error) error {
	for name, class := range errorClasses {
		if errors.Is(a, class) != errors.Is(b, class) {
			return errors.New(name)
		}
	}
	return nil
}
