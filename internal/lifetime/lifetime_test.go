package lifetime

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30m": 30 * time.Minute, "720h": 720 * time.Hour, "1h30m": 90 * time.Minute,
		"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "1d30m": 24*time.Hour + 30*time.Minute,
		"1s": time.Second, "36500d": Max,
		// the invitation lifetimes of caveat orgs invite
		"7d": 7 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0s", "0d", "-1h", "-1d", "1d-1h", "500ms", "d", "1.5d", "x30d",
		"30days", "1y", "36501d", "1000000h", "d1h", "1d+", "+1d", " 1d", "1dd",
		"7 d", "7days", "-3h", "forever"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		}
	}
}
