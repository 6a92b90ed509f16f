package resset_test

import (
	"bytes"
	"testing"

	"github.com/caveatdev/caveat"
	_ "github.com/caveatdev/caveat/flyio" // the resource-set caveats, for the seeds
	"github.com/caveatdev/caveat/internal/msgpack"
	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/internal/wire"
	"github.com/caveatdev/caveat/resset"
)

// FuzzResourceSet checks the strict decoder of resource sets, with string
// and with uint64 keys: whatever it accepts re-encodes to the same bytes,
// and it accepts exactly what the allocation-free walk that clearing uses
// (internal/wire) accepts. Seeded with the sets inside the resource-set
// caveats of the spec's vectors.
func FuzzResourceSet(f *testing.F) {
	var cases []struct {
		Type    uint64 `json:"type"`
		BodyHex string `json:"body_hex"`
	}
	vectors.Section(f, "caveat_encodings", &cases)
	n := 0
	for _, c := range cases {
		info, ok := caveat.Lookup(caveat.CaveatType(c.Type))
		if !ok || info.Record != 1 {
			continue
		}
		body := vectors.Hex(f, c.BodyHex)
		r := msgpack.NewReader(body)
		if r.ReadRecordHeader(1) == nil && (r.Peek() == msgpack.KindMap || r.Peek() == msgpack.KindNil) {
			f.Add(r.Rest())
			n++
		}
	}
	if n == 0 {
		f.Fatal("no seeds")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		str, serr := resset.ParseResourceSet[string](b)
		if serr == nil {
			if got := str.AppendMsgpack(nil); !bytes.Equal(got, b) {
				t.Fatalf("%x decodes and re-encodes as %x", b, got)
			}
		}
		u, uerr := resset.ParseResourceSet[uint64](b)
		if uerr == nil {
			if got := u.AppendMsgpack(nil); !bytes.Equal(got, b) {
				t.Fatalf("%x decodes and re-encodes as %x", b, got)
			}
		}
		if (serr == nil) != (wire.CanonicalSet(b, true) == nil) || (uerr == nil) != (wire.CanonicalSet(b, false) == nil) {
			t.Fatalf("%x: ParseResourceSet and the strict walk disagree: %v, %v", b, serr, uerr)
		}
	})
}
