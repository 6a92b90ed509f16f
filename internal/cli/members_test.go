package cli

import (
	"strings"
	"testing"

	"github.com/caveatdev/caveat/client"
)

func TestInvitationCodeFromLink(t *testing.T) {
	const code = "cvi1_zbV0udn2HXhoEN2Yf24KnJtV5q88nuFq"
	for _, in := range []string{code, " " + code + "\n", "https://caveat.example.com/aaa/v1/invitations/" + code,
		"http://127.0.0.1:8080/aaa/v1/invitations/" + code + "/"} {
		if got := client.InvitationCode(in); got != code {
			t.Errorf("InvitationCode(%q) = %q", in, got)
		}
	}
}

// TestTeamUsageErrors: arguments the team commands refuse before asking
// any server (exit status 2, with a hint).
func TestTeamUsageErrors(t *testing.T) {
	env := map[string]string{"CAVEAT_API_URL": "http://127.0.0.1:1", "CAVEAT_TOKEN": "FlyV1 fm2_unused"}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"orgs", "invite"}, "the invitee's email"},
		{[]string{"orgs", "invite", "bob@example.com", "--role", "owner"}, "--role is member or admin"},
		{[]string{"orgs", "invite", "bob@example.com", "--expiry", "soon"}, "--expiry"},
		{[]string{"orgs", "set-role", "bob@example.com", "root"}, "the role is member or admin"},
		{[]string{"orgs", "set-role", "bob@example.com"}, "wants 2 argument(s)"},
		{[]string{"orgs", "remove"}, "the member's email"},
		{[]string{"orgs", "join"}, "the invitation's code"},
		{[]string{"orgs", "leave", "acme"}, "unknown command"},
		{[]string{"auth", "signup", "--email", "bob@example.com", "--password-stdin", "--invite", "cvi1_x", "--org", "bob"}, "leave out --org"},
	} {
		res := runMain(t, env, "a password\n", tc.args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tc.msg) || !strings.Contains(res.stderr, "caveat: hint:") {
			t.Errorf("caveat %s: exit %d\n%s\nwant exit 2 with %q and a hint", strings.Join(tc.args, " "), res.code, res.stderr, tc.msg)
		}
	}
}
