package resset_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/resset"
)

func TestActionStrings(t *testing.T) {
	var bits map[string]uint16
	var misc struct {
		ActionBits map[string]uint16 `json:"action_bits"`
	}
	vectors.Section(t, "misc", &misc)
	bits = misc.ActionBits
	if len(bits) != 6 {
		t.Fatalf("misc.action_bits has %d entries", len(bits))
	}
	for s, want := range bits {
		if got := resset.ParseAction(s); uint16(got) != want {
			t.Errorf("ParseAction(%q) = %#x, want %#x", s, uint16(got), want)
		}
	}
	for s, want := range map[string]resset.Action{
		"": 0, "rwcdC": 0x1f, "Crw": 0x13, "r*": 1, "**": 0, "xyz": 0, "rr": 1,
	} {
		if got := resset.ParseAction(s); got != want {
			t.Errorf("ParseAction(%q) = %#x, want %#x", s, uint16(got), uint16(want))
		}
	}
	for a, want := range map[resset.Action]string{0: "", 0x13: "rwC", 0xffff: "rwcdC", 0x20: ""} {
		if got := a.String(); got != want {
			t.Errorf("%#x.String() = %q, want %q", uint16(a), got, want)
		}
	}
	var a resset.Action
	if err := json.Unmarshal([]byte(`3`), &a); err == nil {
		t.Error("a numeric JSON mask was accepted")
	}
	if err := json.Unmarshal([]byte(`"*"`), &a); err != nil || a != resset.ActionStar {
		t.Errorf(`"*" = %#x, %v`, uint16(a), err)
	}
	if !resset.ActionRead.IsSubsetOf(0x13) || resset.ActionDelete.IsSubsetOf(0x13) || !resset.ActionNone.IsSubsetOf(0) {
		t.Error("IsSubsetOf")
	}
}

func TestResourceSetEncoding(t *testing.T) {
	s := resset.ResourceSet[uint64]{70000: resset.ActionDelete, 1: 3, 200: resset.ActionControl, 3: 1}
	if got := hex.EncodeToString(s.AppendMsgpack(nil)); got != "8401030301ccc810ce0001117008" {
		t.Errorf("uint set %s", got)
	}
	back, err := resset.ParseResourceSet[uint64](s.AppendMsgpack(nil))
	if err != nil || len(back) != 4 || back[70000] != resset.ActionDelete {
		t.Errorf("round trip %v, %v", back, err)
	}
	str := resset.ResourceSet[string]{"b": 1, "B": 1, "aa": 1, "a": 1, "": 0}
	if got := hex.EncodeToString(str.AppendMsgpack(nil)); got != "85a000a14201a16101a2616101a16201" {
		t.Errorf("string set %s", got)
	}
	var nilSet resset.ResourceSet[string]
	if got := hex.EncodeToString(nilSet.AppendMsgpack(nil)); got != "c0" {
		t.Errorf("nil set %s", got)
	}
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
		b := vectors.Hex(t, strings.ReplaceAll(bad, " ", ""))
		if _, err := resset.ParseResourceSet[string](b); err == nil {
			t.Errorf("ParseResourceSet(%s) accepted", bad)
		}
		// The checks on encoded sets (internal/wire, flyio's resource
		// caveats) refuse the same bodies: TestBadSets in flyio.
	}
	if _, err := resset.ParseResourceSet[uint64](vectors.Hex(t, "8202010101")); err == nil {
		t.Error("uint keys out of order accepted")
	}
}

// actor is a minimal access with an action, to test resset without flyio.
type actor resset.Action

func (actor) Now() time.Time             { return time.Unix(1750000000, 0) }
func (actor) Validate() error            { return nil }
func (a actor) GetAction() resset.Action { return resset.Action(a) }

type noAction struct{}

func (noAction) Now() time.Time  { return time.Unix(1750000000, 0) }
func (noAction) Validate() error { return nil }

func TestIfPresent(t *testing.T) {
	window := caveat.Encode(&caveat.ValidityWindow{NotBefore: 1, NotAfter: 2}) // expired
	inner := caveat.Encode(new(resset.ActionCaveat))
	ip := &resset.IfPresent{Ifs: caveat.CaveatSet{window, inner}, Else: resset.ActionRead}
	set := caveat.NewCaveatSet(ip)
	err := set.Clear(actor(resset.ActionWrite))
	// Both inner caveats are relevant and refuse; both are reported.
	if !errors.Is(err, caveat.ErrUnauthorizedForAction) || !strings.Contains(err.Error(), "ifs caveat 0 (ValidityWindow)") ||
		!strings.Contains(err.Error(), "ifs caveat 1 (Action)") {
		t.Errorf("two relevant refusals: %v", err)
	}
	if err := set.Clear(noAction{}); !errors.Is(err, caveat.ErrInvalidAccess) {
		t.Errorf("access without action: %v", err)
	}

	// nil ifs is refused wherever it is met.
	body := vectors.Hex(t, "92c001")
	info, _ := caveat.Lookup(resset.TypeIfPresent)
	if _, err := info.Decode(body); err == nil {
		t.Error("Decode accepted nil ifs")
	}
	if err := ifPresent(body).Canonical(); err == nil {
		t.Error("Canonical accepted nil ifs")
	}
	nilIfs := caveat.CaveatSet{{Type: resset.TypeIfPresent, Body: body}}
	if err := nilIfs.Clear(actor(0)); !errors.Is(err, caveat.ErrBadCaveat) {
		t.Errorf("Clear of nil ifs: %v", err)
	}
	// An inner caveat that is not canonical makes the IfPresent not canonical.
	if err := ifPresent(vectors.Hex(t, "92920492d0000201")).Canonical(); err == nil {
		t.Error("Canonical accepted a non-canonical inner ValidityWindow")
	}
}

// ifPresent is an IfPresent caveat with the given body.
func ifPresent(body []byte) caveat.RawCaveat {
	return caveat.RawCaveat{Type: resset.TypeIfPresent, Body: body}
}

func TestIfPresentNesting(t *testing.T) {
	// IfPresent nested 40 deep cannot be decoded: the nesting limit stops
	// it before Check could recurse without bound.
	body := []byte{0x92, 0x90, 0x01}
	for i := 0; i < 40; i++ {
		next := []byte{0x92, 0x92, 0x0d}
		next = append(next, body...)
		body = append(next, 0x01)
	}
	set := caveat.CaveatSet{{Type: resset.TypeIfPresent, Body: body}}
	if err := set.Clear(actor(resset.ActionRead)); !errors.Is(err, caveat.ErrBadCaveat) {
		t.Errorf("deep IfPresent: %v", err)
	}
	if err := set[0].Canonical(); err == nil {
		t.Error("deep IfPresent is canonical")
	}
}

func TestParseActionStrict(t *testing.T) {
	for in, want := range map[string]resset.Action{"": 0, "r": resset.ActionRead, "rC": resset.ActionRead | resset.ActionControl,
		"Cr": resset.ActionRead | resset.ActionControl, "rwcdC": resset.ActionAll, "*": resset.ActionStar} {
		got, err := resset.ParseActionStrict(in)
		if err != nil || got != want {
			t.Errorf("ParseActionStrict(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"rX", "R", "all", "xyz", "r*", "**", " r"} {
		if got, err := resset.ParseActionStrict(in); err == nil {
			t.Errorf("ParseActionStrict(%q) = %v, want an error", in, got)
		}
		// The spec's reading rule stays lenient.
		_ = resset.ParseAction(in)
		var a resset.Action
		if err := a.UnmarshalJSON([]byte(`"` + in + `"`)); err == nil {
			t.Errorf("JSON mask %q accepted as %v", in, a)
		}
	}
	if resset.ParseAction("r*") != resset.ActionRead {
		t.Error(`ParseAction("r*") is no longer the spec's 0x01`)
	}
}
