package inspect

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	// The caveat types of the catalogue, as the CLI registers them.
	_ "github.com/caveatdev/caveat/auth"
	_ "github.com/caveatdev/caveat/flyio"
)

// TestSummaryGolden checks Summary and Views against the output of
// "caveat tokens debug" recorded before this package existed
// (testdata/summary.golden, from the bundles in testdata/bundles.txt:
// alone with a year, without expiry, an expired proof, an undischarged
// third-party caveat, the same discharged and bound, two third-party
// caveats of which one is discharged plus a stray discharge, and a lone
// discharge), at two instants each, byte for byte.
func TestSummaryGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/bundles.txt")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/summary.golden")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var got strings.Builder
	lines := strings.Fields(string(raw))
	if len(lines) != 7 {
		t.Fatalf("%d bundles in testdata/bundles.txt, want 7", len(lines))
	}
	for i, s := range lines {
		b, err := caveat.ParseBundle(s)
		if err != nil {
			t.Fatalf("bundle %d: %v", i+1, err)
		}
		for _, at := range []time.Time{now, now.Add(3*time.Hour + 10*time.Minute + 40*time.Second)} {
			got.WriteString("== bundle " + string(rune('1'+i)) + " at " + at.Format(time.RFC3339) + "\n")
			got.WriteString(Summary(b, at))
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(Views(b)); err != nil {
				t.Fatal(err)
			}
			got.WriteString(buf.String())
		}
	}
	if got.String() != string(want) {
		gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("line %d differs:\n got %q\nwant %q", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("got %d lines, want %d", len(gl), len(wl))
	}
}

func TestDescribeTokenAlone(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	key, tkey := caveat.NewSigningKey(), caveat.NewEncryptionKey()
	m, err := caveat.Mint(key, caveat.NewNonce([]byte{9}, false), "https://api.example/v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add3P(tkey, "https://auth.example"); err != nil {
		t.Fatal(err)
	}
	tk, err := caveat.OpenTicket(tkey, m.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tk.Discharge("https://auth.example", caveat.NewValidityWindow(now, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := caveat.ParseBundle(m.String() + "," + d.String())
	if err != nil {
		t.Fatal(err)
	}
	ts := Describe(b, now)
	if len(ts) != 2 || ts[0].Discharge || !ts[1].Discharge {
		t.Fatalf("tokens: %+v", ts)
	}
	if ts[0].TokenAlone != "the token alone never expires" ||
		ts[0].Expires != "2025-01-01T01:00:00Z (in 1h), set by a discharge, not the token itself: token 2, caveat 0 (ValidityWindow)" {
		t.Fatalf("expires %q, alone %q", ts[0].Expires, ts[0].TokenAlone)
	}
	if tp := ts[0].ThirdParties; len(tp) != 1 || tp[0].DischargedBy != 2 || tp[0].Status() != "discharged by token 2" {
		t.Fatalf("third parties: %+v", tp)
	}
	if !strings.Contains(Summary(b, now), "\n            the token alone never expires\n") {
		t.Fatalf("summary:\n%s", Summary(b, now))
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{500 * time.Millisecond, "less than 1s"},
		{45 * time.Second, "45s"},
		{10*time.Minute + 30*time.Second, "10m30s"},
		{10 * time.Minute, "10m"},
		{3*time.Hour + 20*time.Second, "3h"},
		{3*time.Hour + 5*time.Minute, "3h5m"},
		{49 * time.Hour, "2d1h"},
		{365 * 24 * time.Hour, "365d"},
		{364*24*time.Hour + 23*time.Hour + 59*time.Minute, "364d23h"},
	}
	for _, tt := range tests {
		if got := ShortDuration(tt.d); got != tt.want {
			t.Errorf("ShortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := Relative(now.Add(-3*time.Hour), now); got != "expired 3h ago" {
		t.Errorf("Relative: %q", got)
	}
	if got := Relative(now.Add(630*time.Second), now); got != "in 10m30s" {
		t.Errorf("Relative: %q", got)
	}
}
