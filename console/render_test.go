package console

import (
	"testing"
	"time"
)

func TestWhen(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Second, "in less than a minute"},
		{-10 * time.Second, "just now"},
		{90 * time.Second, "in 2 minutes"},
		{-time.Minute, "1 minute ago"},
		{59*time.Minute + 40*time.Second, "in 1 hour"},
		{5 * time.Hour, "in 5 hours"},
		{72*time.Hour - time.Second, "in 3 days"},
		{-48 * time.Hour, "2 days ago"},
		{365 * 24 * time.Hour, "in 365 days"},
	} {
		if got := when(now.Add(tt.d), now); got != tt.want {
			t.Errorf("when(now%+v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "/",
		"/orgs/acme/tokens?show=x": "/orgs/acme/tokens?show=x",
		"//evil.example/":          "/",
		"/\\evil.example":          "/",
		"https://evil.example/":    "/",
		"javascript:alert(1)":      "/",
		"/login?next=/x":           "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
