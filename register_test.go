package caveat_test

// Register learns what it needs from the caveat type: its number from
// CaveatType, the number of fields of a record body from AppendBody (and
// checks that Decode reads back what AppendBody writes), and, for small
// values, clearing through Decode and a value Prohibits costs no allocation.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// span allows accesses whose hour is in [From, To]: a record of two fields.
type span struct{ From, To uint64 }

const typeSpan = caveat.TypeUserDefinedMin + 9001

func (c *span) CaveatType() caveat.CaveatType { return typeSpan }

func (c *span) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 2)
	return msgpack.AppendUint(msgpack.AppendUint(b, c.From), c.To)
}

func (c span) Prohibits(a caveat.Access) error {
	if h := uint64(a.Now().UTC().Hour()); h < c.From || h > c.To {
		return fmt.Errorf("%w: hour %d is outside %d–%d", caveat.ErrUnauthorized, h, c.From, c.To)
	}
	return nil
}

func decodeSpan(body []byte) (span, error) {
	var c span
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(2); err != nil {
		return c, err
	}
	var err error
	if c.From, err = r.ReadUint(); err != nil {
		return c, err
	}
	if c.To, err = r.ReadUint(); err != nil {
		return c, err
	}
	return c, r.ExpectEnd()
}

type hourAccess time.Time

func (a hourAccess) Now() time.Time  { return time.Time(a) }
func (a hourAccess) Validate() error { return nil }

func TestRegisterLearnsFromTheType(t *testing.T) {
	caveat.Register(caveat.Def[span]{Name: "TestSpan", Decode: decodeSpan})
	info, ok := caveat.Lookup(typeSpan)
	if !ok {
		t.Fatal("not registered under the number CaveatType gives")
	}
	if info.Record != 2 {
		t.Errorf("Record = %d, want the 2 fields AppendBody writes", info.Record)
	}
	raw := caveat.Encode(&span{From: 9, To: 17})
	c, err := raw.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.(*span); !ok || *got != (span{9, 17}) {
		t.Errorf("decoded %#v, want *span{9, 17}", c)
	}
	var noon, night caveat.Access = hourAccess(time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)),
		hourAccess(time.Date(2026, 1, 2, 23, 0, 0, 0, time.UTC))
	if err := raw.Check(noon); err != nil {
		t.Errorf("noon: %v", err)
	}
	if err := raw.Check(night); !errors.Is(err, caveat.ErrUnauthorized) {
		t.Errorf("night: %v, want ErrUnauthorized", err)
	}
	// Decoding to a value and asking its Prohibits: no allocation, with no
	// function written for it.
	if n := testing.AllocsPerRun(100, func() { _ = raw.Check(noon) }); n != 0 {
		t.Errorf("Check allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = raw.Canonical() }); n != 0 {
		t.Errorf("Canonical allocates %v times", n)
	}
	// A body of three fields is refused by the strict and the lenient
	// decoder alike.
	three := caveat.RawCaveat{Type: typeSpan, Body: []byte{0x93, 1, 2, 3}}
	if err := three.Canonical(); !errors.Is(err, caveat.ErrNonCanonical) {
		t.Errorf("Canonical of 3 fields: %v", err)
	}
	if err := three.Check(noon); !errors.Is(err, caveat.ErrBadCaveat) {
		t.Errorf("Check of 3 fields: %v", err)
	}
	// Decoding a token (leniently, as the reference decoder does) refuses a
	// record body of another length: Record is what AppendBody writes.
	m, err := caveat.Mint(caveat.NewSigningKey(), caveat.NewNonce([]byte("k"), false), "loc", &span{From: 0x41, To: 0x42})
	if err != nil {
		t.Fatal(err)
	}
	enc := m.Encode()
	i := bytes.Index(enc, []byte{0x92, 0x41, 0x42})
	if i < 0 {
		t.Fatal("body not found in the token")
	}
	bad := append(append(append([]byte(nil), enc[:i]...), 0x93, 0x41, 0x42, 0x43), enc[i+3:]...)
	if _, err := caveat.Decode(bad); err == nil || !strings.Contains(err.Error(), "is 3, want 2") {
		t.Errorf("Decode of a 3-field record: %v", err)
	}
}

// wide writes three fields and its Decode reads two: Register refuses it.
type wide struct{ A, B uint64 }

func (c *wide) CaveatType() caveat.CaveatType { return caveat.TypeUserDefinedMin + 9002 }
func (c *wide) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 3)
	return msgpack.AppendUint(msgpack.AppendUint(msgpack.AppendUint(b, c.A), c.B), 0)
}
func (c wide) Prohibits(caveat.Access) error { return nil }

func TestRegisterRefuses(t *testing.T) {
	decodeWide := func(body []byte) (wide, error) {
		s, err := decodeSpan(body)
		return wide{s.From, s.To}, err
	}
	for _, tc := range []struct {
		name string
		def  caveat.Def[wide]
		want string
	}{
		{"no name", caveat.Def[wide]{Decode: decodeWide}, "incomplete registration"},
		{"no decode", caveat.Def[wide]{Name: "TestWide"}, "incomplete registration"},
		{"decode disagrees with AppendBody", caveat.Def[wide]{Name: "TestWide", Decode: decodeWide},
			"Decode refuses the zero value's encoding 93000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if s, _ := recover().(string); !strings.Contains(s, tc.want) {
					t.Errorf("panic %q, want one saying %q", s, tc.want)
				}
			}()
			caveat.Register(tc.def)
		})
	}
	t.Run("taken number", func(t *testing.T) {
		defer func() {
			if s, _ := recover().(string); !strings.Contains(s, "registered twice") {
				t.Errorf("panic %q", s)
			}
		}()
		caveat.Register(caveat.Def[caveat.ValidityWindow]{Name: "Again", Decode: func([]byte) (caveat.ValidityWindow, error) {
			return caveat.ValidityWindow{}, nil
		}})
	})
}

// Every fast path a caveat package handed over was taken by the type it
// was meant for.
func TestFastPathsTaken(t *testing.T) {
	if p := fastpath.Pending(); len(p) != 0 {
		t.Errorf("fast paths set for types never registered: %v", p)
	}
}
