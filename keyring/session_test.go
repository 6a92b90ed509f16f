package keyring

import (
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
)

func TestSessionSecrets(t *testing.T) {
	kr := NewKeyring(NewMasterKey(), nil, time.Now)
	s := kr.SessionSecret("0f5a1d2e-0000-4000-8000-000000000001")
	if !strings.HasPrefix(s, "cvs1_0f5a1d2e-") {
		t.Fatalf("secret %q", s)
	}
	if id, ok := kr.CheckSessionSecret(s); !ok || id != "0f5a1d2e-0000-4000-8000-000000000001" {
		t.Fatalf("CheckSessionSecret(own secret) = %q, %v", id, ok)
	}
	other := NewKeyring(NewMasterKey(), nil, time.Now)
	bad := []string{
		"", "cvs1_", "cvs1_x", "cvs1_.abc", s[:len(s)-1], s + "A", strings.Replace(s, "0001", "0002", 1),
		other.SessionSecret("0f5a1d2e-0000-4000-8000-000000000001"), "Bearer " + s,
	}
	for _, b := range bad {
		if _, ok := kr.CheckSessionSecret(b); ok {
			t.Errorf("CheckSessionSecret(%q) accepted", b)
		}
	}
}

func TestMintSession(t *testing.T) {
	kr := NewKeyring(NewMasterKey(), nil, time.Now)
	now := time.Unix(1764000000, 0)
	s, err := kr.MintSession(42, now, now.Add(30*24*time.Hour), "https://c.example/v1", "https://c.example/aaa/v1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Token.Nonce.UUID().String() != s.ID || !kr.IsSessionKID(s.Token.Nonce.KID) {
		t.Fatalf("session %s, token nonce %s", s.ID, s.Token.Nonce.UUID())
	}
	if id, ok := kr.CheckSessionSecret(s.Secret); !ok || id != s.ID {
		t.Fatalf("secret does not name the session")
	}
	tickets := s.Token.ThirdPartyTickets()
	if len(tickets) != 1 || tickets[0].Location != "https://c.example/aaa/v1" {
		t.Fatalf("tickets %+v", tickets)
	}
	tk, err := caveat.OpenTicket(kr.LoginTicketKey(), tickets[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := tk.Caveats.Decode()
	if err != nil || len(cs) != 1 || *(cs[0].(*auth.ConfineUser)) != (auth.ConfineUser{ID: 42}) {
		t.Fatalf("ticket caveats %v, %v", cs, err)
	}
	if _, err := kr.MintSession(42, now, now, "a", "b"); err == nil {
		t.Error("a session ending as it starts was minted")
	}
}
