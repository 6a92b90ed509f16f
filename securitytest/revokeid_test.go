package securitytest

// Revoking by id names a token of some organization: to a user who does
// not belong to it, the answer is the very 404 an id that exists nowhere
// gets, never a 403 that confirms the token and names its organization's
// id (README, "What an answer reveals"). Token ids are not secret enough to rely on: the revocation feed
// lists every organization's revoked ones to any valid token.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/client"
)

func TestRevokeAnotherOrganizationsToken(t *testing.T) {
	s := startServer(t, serverOptions{})
	ctx := context.Background()
	s.signup("alice@a.test", "alice's password", "org-a")
	s.signup("bob@b.test", "bob's password", "org-b")
	alice := s.login("alice@a.test", "alice's password")
	bob := s.login("bob@b.test", "bob's password")
	const nowhere = "00000000-0000-4000-8000-000000000000"
	for _, profile := range []string{"readonly", "deploy"} {
		req := client.CreateTokenRequest{Profile: profile, Org: "org-a", Expiry: "24h"}
		if profile == "deploy" {
			if _, err := alice.api.CreateApp(ctx, "org-a", "web"); err != nil {
				t.Fatal(err)
			}
			req.App = "web"
		}
		tok, err := alice.api.CreateToken(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		code, out := s.do("DELETE", "/v1/tokens/"+tok.ID, bob.bundle, nil)
		codeNowhere, outNowhere := s.do("DELETE", "/v1/tokens/"+nowhere, bob.bundle, nil)
		want := strings.ReplaceAll(fmt.Sprint(outNowhere), nowhere, tok.ID)
		if code != http.StatusNotFound || codeNowhere != http.StatusNotFound || fmt.Sprint(out) != want {
			t.Errorf("a stranger revoking a %s token of org-a by id: %d %v; an id that exists nowhere: %d %v", profile, code, out, codeNowhere, outNowhere)
		}
		// Nor through a branch of it, which the stranger holds (and so
		// learns nothing from a 403).
		if code, out := s.do("POST", "/v1/tokens/revoke-branch", bob.bundle, map[string]any{"token": tok.Header}); code != http.StatusForbidden {
			t.Errorf("a stranger revoking a branch of a %s token of org-a: %d %v, want 403", profile, code, out)
		}
		if code, body := s.authenticate(tok.Header); code != http.StatusOK {
			t.Errorf("the %s token after a stranger's attempts: %d %s", profile, code, body)
		}
	}
}
