package authority

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRevocationFeedNeedsToken is the last finding of issue 14, section 8:
// GET /v1/tokens/revocations answers only a valid token, of any kind and
// any organization.
func TestRevocationFeedNeedsToken(t *testing.T) {
	h := newHarness(t)
	ada, _ := h.user("ada@example.com", "acme")
	bob, _ := h.user("bob@example.com", "globex")
	adaSession, _ := h.login(ada.ID, time.Hour)
	bobSession, _ := h.login(bob.ID, time.Hour)
	mint := func(session, org string) (string, string) {
		code, out := h.do("POST", "/v1/tokens", session, map[string]string{"profile": "readonly", "org": org})
		if code != http.StatusCreated {
			t.Fatalf("mint: %d %v", code, out)
		}
		return out["token"].(string), out["id"].(string)
	}
	revokedTok, revokedID := mint(adaSession, "acme")
	if code, _ := h.do("DELETE", "/v1/tokens/"+revokedID, adaSession, nil); code != http.StatusOK {
		t.Fatal("revoke failed")
	}
	globexTok, _ := mint(bobSession, "globex")

	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"garbage", "FlyV1 fm2_AAAA", http.StatusUnauthorized},
		{"revoked token", revokedTok, http.StatusUnauthorized},
		{"session", adaSession, http.StatusOK},
		{"named token of another organization", globexTok, http.StatusOK},
	} {
		code, out := h.do("GET", "/v1/tokens/revocations?after=0", tc.header, nil)
		if code != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, code, out, tc.status)
			continue
		}
		if code == http.StatusOK {
			revs, _ := out["revocations"].([]any)
			if len(revs) != 1 || !strings.Contains(revs[0].(map[string]any)["token_id"].(string), revokedID) {
				t.Errorf("%s: feed %v, want the one revocation", tc.name, out)
			}
		} else if msg, _ := out["error"].(string); msg == "" {
			t.Errorf("%s: %d without a JSON error", tc.name, code)
		}
	}
}
