package caveat

import (
	"testing"
	"time"
)

func TestBundleExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := NewSigningKey()
	ka := NewEncryptionKey()
	m, _ := Mint(key, NewNonce([]byte("k"), false), "https://a/v1", NewValidityWindow(now, 365*24*time.Hour))
	if err := m.Add3P(ka, "https://a/aaa/v1"); err != nil {
		t.Fatal(err)
	}
	m.Add(NewValidityWindow(now, 30*24*time.Hour))
	ticket, _ := OpenTicket(ka, m.ThirdPartyTickets()[0].Ticket)
	d, _ := ticket.Discharge("https://a/aaa/v1", NewValidityWindow(now, 630*time.Second))
	d.Bind(m)
	unrelated, _ := Mint(key, NewNonce([]byte("k2"), false), "https://b/v1", NewValidityWindow(now, time.Second))

	b, err := ParseBundle(m.String() + "," + unrelated.String() + "," + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if b.IsDischarge(0) || b.IsDischarge(1) || !b.IsDischarge(2) {
		t.Errorf("roles: %v %v %v", b.IsDischarge(0), b.IsDischarge(1), b.IsDischarge(2))
	}
	e := b.Expiry(0)
	if want := now.Add(630 * time.Second); !e.At.Equal(want) || e.Token != 2 || e.Caveat != 0 {
		t.Errorf("expiry = %+v, want %v set by token 2 caveat 0", e, want)
	}
	// Without its discharge the token's own earliest window decides.
	b2, _ := ParseBundle(m.String())
	if e := b2.Expiry(0); !e.At.Equal(now.Add(30*24*time.Hour)) || e.Token != 0 || e.Caveat != 2 {
		t.Errorf("expiry without discharge = %+v", e)
	}
	if e := b.Expiry(1); !e.At.Equal(now.Add(time.Second)) || e.Token != 1 {
		t.Errorf("unrelated token's expiry = %+v", e)
	}
	never, _ := Mint(key, NewNonce(nil, false), "x")
	b3, _ := ParseBundle(never.String())
	if !b3.Expiry(0).Never() {
		t.Error("token without a window expires")
	}
}

func TestValidityWindowBounds(t *testing.T) {
	vw := &ValidityWindow{NotBefore: 100, NotAfter: 200}
	for _, tc := range []struct {
		now time.Time
		ok  bool
	}{
		{time.Unix(99, 999_999_999), false},
		{time.Unix(100, 0), true},
		{time.Unix(200, 0), true},
		{time.Unix(200, 500_000_000), false},
	} {
		err := vw.Prohibits(timeAccess(tc.now))
		if (err == nil) != tc.ok {
			t.Errorf("now %v: err = %v, want ok = %v", tc.now, err, tc.ok)
		}
	}
}

type timeAccess time.Time

func (a timeAccess) Now() time.Time  { return time.Time(a) }
func (a timeAccess) Validate() error { return nil }
