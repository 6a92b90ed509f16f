package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/flyio"
)

// TestWireForms pins the bytes each shape encodes to, as the server's and
// the client's declarations encoded them before they became one: field
// names, their order, and what is left out when empty. Fly's clients and
// older caveat clients read these answers, so a change here is a change of
// the wire format.
func TestWireForms(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"organization", api.Organization{ID: 1, Slug: "acme"}, `{"id":1,"slug":"acme"}`},
		{"organization with role", api.Organization{ID: 1, Slug: "acme", Role: "admin"}, `{"id":1,"slug":"acme","role":"admin"}`},
		{"app", api.App{ID: 2, Name: "web", OrgID: 1, CreatedAt: t0}, `{"id":2,"name":"web","org_id":1,"created_at":"2026-01-02T03:04:05Z"}`},
		{"token listed", api.Token{ID: "t", Name: "n", Profile: "deploy", OrgID: 1, CreatedBy: 3, CreatedByEmail: "a@x", CreatedAt: t0},
			`{"id":"t","name":"n","profile":"deploy","org_id":1,"created_by":3,"created_by_email":"a@x","created_at":"2026-01-02T03:04:05Z","revoked_branches":0}`},
		{"token created", api.Token{ID: "t", AppID: 2, CreatedAt: t0, ExpiresAt: &t0, Header: "FlyV1 fm2_x"},
			`{"id":"t","name":"","profile":"","org_id":0,"app_id":2,"created_by":0,"created_at":"2026-01-02T03:04:05Z","expires_at":"2026-01-02T03:04:05Z","revoked_branches":0,"token":"FlyV1 fm2_x"}`},
		{"create token, empty", api.CreateTokenRequest{Profile: "deploy", Org: "acme"}, `{"profile":"deploy","org":"acme"}`},
		{"create token, commands", api.CreateTokenRequest{Profile: "machine-exec", Org: "acme", Commands: flyio.Commands{{Args: []string{"ls"}, Exact: true}, {Args: []string{"ps"}}}},
			`{"profile":"machine-exec","org":"acme","commands":[{"args":["ls"],"exact":true},{"args":["ps"]}]}`},
		{"branch revocation", api.BranchRevocation{ID: "t", Branch: "ab", Revoked: true}, `{"id":"t","branch":"ab","revoked":true}`},
		{"key", api.Key{KID: "01", State: "active", CreatedAt: t0}, `{"kid":"01","state":"active","created_at":"2026-01-02T03:04:05Z"}`},
		{"verified token", api.VerifiedToken{TokenID: "t", Kind: "token", UserID: 3, OrgID: 1, Caveats: json.RawMessage(`[]`), CaveatsMsgpack: "kA==",
			Memberships: []api.Organization{{ID: 1, Slug: "acme", Role: "admin"}}, PermissionToken: "AAA="},
			`{"token_id":"t","kind":"token","user_id":3,"org_id":1,"caveats":[],"caveats_msgpack":"kA==","memberships":[{"id":1,"slug":"acme","role":"admin"}],"permission_token":"AAA="}`},
		{"revocations", api.Revocations{Cursor: 7, Revocations: []api.Revocation{{Cursor: 6, TokenID: "t"}, {Cursor: 7, TokenID: "t", Branch: "ab"}}},
			`{"cursor":7,"revocations":[{"cursor":6,"token_id":"t"},{"cursor":7,"token_id":"t","branch":"ab"}]}`},
		{"member", api.Member{UserID: 3, Email: "a@x", Role: "member", JoinedAt: t0}, `{"user_id":3,"email":"a@x","role":"member","joined_at":"2026-01-02T03:04:05Z"}`},
		{"invitation", api.Invitation{ID: 4, OrgID: 1, Email: "b@x", Role: "admin", InvitedBy: 3, CreatedAt: t0, ExpiresAt: t0, Code: "cvi1_x"},
			`{"id":4,"org_id":1,"email":"b@x","role":"admin","invited_by":3,"created_at":"2026-01-02T03:04:05Z","expires_at":"2026-01-02T03:04:05Z","code":"cvi1_x"}`},
		{"removal", api.Removal{UserID: 3, Email: "a@x", Tokens: []api.Token{}}, `{"user_id":3,"email":"a@x","tokens":[]}`},
		{"invite", api.InviteRequest{Email: "b@x"}, `{"email":"b@x"}`},
		{"session", api.Session{SessionID: "s", Secret: "cvs1_x", Token: "fm2_x", ExpiresAt: t0, User: api.User{ID: 3, Email: "a@x"}},
			`{"session_id":"s","secret":"cvs1_x","token":"fm2_x","expires_at":"2026-01-02T03:04:05Z","user":{"id":3,"email":"a@x"}}`},
		{"signup", api.SignupResult{User: api.User{ID: 3, Email: "a@x"}}, `{"user":{"id":3,"email":"a@x"}}`},
		{"whoami", api.WhoAmI{User: api.User{ID: 3, Email: "a@x"}, Organizations: []api.Organization{}, Session: api.SessionInfo{ID: "s", ExpiresAt: t0}},
			`{"user":{"id":3,"email":"a@x"},"organizations":[],"session":{"id":"s","expires_at":"2026-01-02T03:04:05Z"}}`},
		{"web login", api.WebLogin{UserInteractive: api.UserInteractive{UserURL: "u", PollURL: "p"}}, `{"user_interactive":{"user_url":"u","poll_url":"p"}}`},
		{"machine hidden", api.Machine{ID: "m", Nonce: "n"}, `{"id":"m","nonce":"n"}`},
		{"machine", api.Machine{ID: "m", Name: "w", State: "started", Region: "ams", ImageRef: api.ImageRef{Repository: "w", Tag: "1"},
			InstanceID: "i", PrivateIP: "fdaa::2", CreatedAt: t0, UpdatedAt: t0, Config: json.RawMessage(`{"image":"w:1"}`),
			Events: []api.MachineEvent{{Type: "start", Status: "started", Source: "flyd", Timestamp: 1}}},
			`{"id":"m","name":"w","state":"started","region":"ams","image_ref":{"registry":"","repository":"w","tag":"1","digest":""},"instance_id":"i","private_ip":"fdaa::2","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","config":{"image":"w:1"},"events":[{"type":"start","status":"started","source":"flyd","timestamp":1}]}`},
		{"create machine", api.CreateMachineRequest{Config: json.RawMessage(`{"image":"w:1"}`), LeaseTTL: 30}, `{"config":{"image":"w:1"},"lease_ttl":30}`},
		{"start, hidden", api.MachineStartResult{Message: "m", Status: "starting"}, `{"message":"m","status":"starting"}`},
		{"lease", api.LeaseResponse{Status: "success", Data: api.MachineLease{ExpiresAt: 9, Owner: "o"}}, `{"status":"success","data":{"expires_at":9,"owner":"o"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
