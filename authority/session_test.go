package authority

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/flyio"
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

func TestSessionPrincipal(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, o := h.user("ada@example.com", "acme")
	header, id := h.login(u.ID, 10*time.Minute)
	secret := h.kr.SessionSecret(id)

	p, err := h.svc.SessionPrincipal(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	viaToken := h.principal(header)
	if p.UserID != viaToken.UserID || p.SessionID != viaToken.SessionID || !p.IsSession() || p.Attenuations != nil {
		t.Fatalf("from the secret %+v, from the token %+v", p, viaToken)
	}
	// The session's full rights: what its unattenuated token may do.
	for _, a := range []string{`{"orgid": ORG, "action": "c"}`, `{"orgid": ORG, "feature": "keys", "action": "d"}`, `{"orgid": 0, "action": "c"}`} {
		var acc flyio.Access
		if err := json.Unmarshal([]byte(strings.ReplaceAll(a, "ORG", u64(o.ID))), &acc); err != nil {
			t.Fatal(err)
		}
		acc2 := acc
		if got, want := h.svc.Allow(ctx, p, &acc), h.svc.Allow(ctx, viaToken, &acc2); (got == nil) != (want == nil) {
			t.Errorf("%s: from the secret %v, from the token %v", a, got, want)
		}
	}
	if _, err := h.svc.Mint(ctx, p, MintRequest{Profile: ProfileOrg, OrgID: o.ID}); err != nil {
		t.Fatalf("mint from the secret's principal: %v", err)
	}

	for name, bad := range map[string]string{
		"empty": "", "forged": strings.Replace(secret, id, "0f5a1d2e-0000-4000-8000-000000000001", 1),
		"other keyring": NewKeyring(NewMasterKey(), nil, time.Now).SessionSecret(id),
	} {
		if _, err := h.svc.SessionPrincipal(ctx, bad); status(err) != http.StatusUnauthorized {
			t.Errorf("%s secret: %v", name, err)
		}
	}
	h.clk.t = h.clk.t.Add(31 * 24 * time.Hour)
	if _, err := h.svc.SessionPrincipal(ctx, secret); status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired session: %v", err)
	}
	h.clk.t = h.clk.t.Add(-31 * 24 * time.Hour)
	if _, err := h.db.RevokeSession(ctx, id, h.clk.t); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.SessionPrincipal(ctx, secret); status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "logged out") {
		t.Errorf("revoked session: %v", err)
	}
}
