package identity

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caveatdev/caveat/api"
)

func TestLoginRateLimitPerAccount(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AccountLimit = RateLimit{Burst: 3, Every: time.Minute} })
	h.signup("ada@example.com", "correct horse", "")
	bad := api.LoginRequest{Email: "ada@example.com", Password: "wrong password"}
	for i := range 3 {
		if code, _ := h.do("POST", "/aaa/v1/sessions", bad, nil); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, code)
		}
	}
	// Over the limit, even the right password is refused, with the wait.
	resp := h.request("POST", "/aaa/v1/sessions", api.LoginRequest{Email: "ADA@example.com", Password: "correct horse"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("fourth attempt: %d, Retry-After %q; want 429 and 60", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	code, msg := h.do("POST", "/aaa/v1/sessions", api.LoginRequest{Email: "ada@example.com", Password: "correct horse"}, nil)
	if code != http.StatusTooManyRequests || msg != "too many login attempts; try again in 60 s" {
		t.Errorf("limited: %d %q", code, msg)
	}
	// Other accounts are not affected.
	if code, _ := h.do("POST", "/aaa/v1/sessions", api.LoginRequest{Email: "bob@example.com", Password: "x"}, nil); code != http.StatusUnauthorized {
		t.Errorf("another account: %d, want 401", code)
	}

	h.clk.Advance(time.Minute)
	h.login("ada@example.com", "correct horse")
	// A successful login clears the account's count.
	for i := range 3 {
		if code, _ := h.do("POST", "/aaa/v1/sessions", bad, nil); code != http.StatusUnauthorized {
			t.Fatalf("after success, attempt %d: %d, want 401", i+1, code)
		}
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprint("TrustProxy=", trust), func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.AddressLimit = RateLimit{Burst: 2, Every: 10 * time.Second}
				c.TrustProxy = trust
			})
			try := func(email, xff string) *http.Response {
				resp := h.request("POST", "/aaa/v1/sessions", api.LoginRequest{Email: email, Password: "wrong password"}, "X-Forwarded-For", xff)
				resp.Body.Close()
				return resp
			}
			try("a@example.com", "198.51.100.1")
			try("b@example.com", "198.51.100.1")
			resp := try("c@example.com", "198.51.100.1")
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" {
				t.Errorf("third address attempt: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			// Only behind a trusted proxy does the header name the client;
			// the proxy's entry is the last one.
			resp = try("d@example.com", "198.51.100.1, 203.0.113.9")
			if want := map[bool]int{false: 429, true: 401}[trust]; resp.StatusCode != want {
				t.Errorf("another forwarded address: %d, want %d", resp.StatusCode, want)
			}
			h.clk.Advance(10 * time.Second)
			if resp := try("e@example.com", "198.51.100.1"); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("after the wait: %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestClientAddr(t *testing.T) {
	s := &Service{}
	trusting := &Service{cfg: Config{TrustProxy: true}}
	for _, tc := range []struct {
		svc    *Service
		remote string
		xff    []string
		want   string
	}{
		{s, "192.0.2.1:4321", nil, "192.0.2.1"},
		{s, "192.0.2.1:4321", []string{"203.0.113.9"}, "192.0.2.1"},
		{s, "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{s, "[::ffff:192.0.2.7]:443", nil, "192.0.2.7"},
		{s, "garbage", nil, "unparsable address"},
		{trusting, "10.0.0.1:1", []string{"203.0.113.9, 198.51.100.4"}, "198.51.100.4"},
		{trusting, "10.0.0.1:1", []string{"203.0.113.9", "198.51.100.5"}, "198.51.100.5"},
		{trusting, "10.0.0.1:1", nil, "10.0.0.1"},
		{trusting, "10.0.0.1:1", []string{"not an ip"}, "unparsable address"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := tc.svc.clientAddr(r); got != tc.want {
			t.Errorf("clientAddr(%s, %q, trust=%v) = %q, want %q", tc.remote, tc.xff, tc.svc.cfg.TrustProxy, got, tc.want)
		}
	}
}
