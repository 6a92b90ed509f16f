package authority

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/keyring"
)

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
		"other keyring": keyring.NewKeyring(keyring.NewMasterKey(), nil, time.Now).SessionSecret(id),
	} {
		if _, err := h.svc.SessionPrincipal(ctx, bad); status(err) != http.StatusUnauthorized {
			t.Errorf("%s secret: %v", name, err)
		}
	}
	h.clk.Advance(31 * 24 * time.Hour)
	if _, err := h.svc.SessionPrincipal(ctx, secret); status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired session: %v", err)
	}
	h.clk.Advance(-31 * 24 * time.Hour)
	if _, err := h.db.RevokeSession(ctx, id, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.SessionPrincipal(ctx, secret); status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "logged out") {
		t.Errorf("revoked session: %v", err)
	}
}
