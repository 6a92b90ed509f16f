package authority

import (
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
)

// Every operation of the authority's API is an access that the caller's
// verified caveats must allow before its role is looked at (DESIGN.md,
// "Caveats first, then roles"): a token narrowed by attenuation cannot do
// through the authority what it gave up, whatever its holder's role. The
// table below is the rule; it is served at GET /v1/operations and printed
// in the README, and securitytest checks every row against the running
// server. A new endpoint adds a row and clears its access with one of the
// functions below, never a special case.
//
// Tokens are the organization's (or one app's) resources: listing them is
// r, minting c and revoking d on the organization, or on the app for the
// tokens of an app, so that an Organization or Apps caveat confines them
// and a member's role covers them (spec §6.5). Keys are the organization
// feature "keys", which spec §6.5 leaves to admins, so that a FeatureSet
// caveat can scope them and a member's token (IsMember) never reaches
// them. Members and invitations are the feature "membership" (see
// members.go).

// FeatureKeys is the organization feature of the key operations.
const FeatureKeys = "keys"

// Operation is one row of the operation table.
type Operation struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Access is the access cleared against the caller's caveats, in the
	// JSON form of flyio.Access with placeholders (ORG, APP).
	Access string `json:"access"`
	// Role is who may do it once the caveats allow it.
	Role string `json:"role"`
}

// Operations is the operation table of the authority's API.
var Operations = []Operation{
	{"list organizations", "GET", "/v1/orgs",
		`{"orgid": ORG, "action": "r"} for each organization listed`, "member of it"},
	{"create organization", "POST", "/v1/orgs",
		`{"orgid": 0, "action": "c"} (0: an organization not created yet)`, "logged-in user (session)"},
	{"list apps", "GET", "/v1/apps",
		`{"orgid": ORG, "appid": APP, "action": "r"} for each app listed`, "member"},
	{"create app", "POST", "/v1/apps",
		`{"orgid": ORG, "appid": 0, "action": "c"} (0: an app not created yet)`, "member"},
	{"list tokens", "GET", "/v1/tokens",
		`{"orgid": ORG, "action": "r"}; with app=NAME {"orgid": ORG, "appid": APP, "action": "r"}`,
		"member"},
	{"create token (org, readonly)", "POST", "/v1/tokens",
		`{"orgid": ORG, "action": "c"}`,
		"session of a member; the org profile needs an admin"},
	{"create token (deploy, machine-exec)", "POST", "/v1/tokens",
		`{"orgid": ORG, "appid": APP, "action": "c"}`, "session of a member"},
	{"revoke token by id", "DELETE", "/v1/tokens/{id}",
		`{"orgid": ORG, "action": "d"}; for a token of an app {"orgid": ORG, "appid": APP, "action": "d"}`,
		"session of an admin, or of the token's creator"},
	{"revoke the presented token", "POST", "/v1/tokens/revoke",
		`none: it revokes only the presented token's own branch, which gives up power and never widens it`, "any holder"},
	{"revoke a branch", "POST", "/v1/tokens/revoke-branch",
		`{"orgid": ORG, "action": "d"}; for a token of an app {"orgid": ORG, "appid": APP, "action": "d"}`,
		"session of an admin, or of the token's creator"},
	{"list keys", "GET", "/v1/orgs/{slug}/keys", `{"orgid": ORG, "feature": "keys", "action": "r"}`, "session of an admin"},
	{"rotate key", "POST", "/v1/orgs/{slug}/rotate-key", `{"orgid": ORG, "feature": "keys", "action": "c"}`, "session of an admin"},
	{"retire key", "POST", "/v1/orgs/{slug}/retire-key", `{"orgid": ORG, "feature": "keys", "action": "d"}`, "session of an admin"},
	{"list members", "GET", "/v1/orgs/{slug}/members", `{"orgid": ORG, "feature": "membership", "action": "r"}`, "member"},
	{"change a member's role", "POST", "/v1/orgs/{slug}/members/role",
		`{"orgid": ORG, "feature": "membership", "action": "w"}`, "session of an admin; never the last admin's demotion"},
	{"remove a member", "POST", "/v1/orgs/{slug}/members/remove",
		`{"orgid": ORG, "feature": "membership", "action": "d"}`, "session of an admin; never the last admin"},
	{"leave", "POST", "/v1/orgs/{slug}/leave",
		`{"orgid": ORG, "action": "d"} (the caller's own membership)`, "session of a member; never the last admin"},
	{"list invitations", "GET", "/v1/orgs/{slug}/invitations", `{"orgid": ORG, "feature": "membership", "action": "r"}`, "member"},
	{"invite", "POST", "/v1/orgs/{slug}/invitations", `{"orgid": ORG, "feature": "membership", "action": "c"}`, "session of an admin"},
	{"cancel an invitation", "POST", "/v1/orgs/{slug}/invitations/cancel",
		`{"orgid": ORG, "feature": "membership", "action": "d"}`, "session of an admin"},
	{"accept an invitation", "POST", "/v1/invitations/accept",
		`{"orgid": ORG, "action": "c"} (ORG: the invitation's; the caller's own membership)`,
		"session of the user with the invited email"},
	{"authenticate", "POST", "/v1/tokens/authenticate", `none: it judges the bundle in the body`, "anyone"},
	{"authorize", "POST", "/v1/tokens/authorize", `the access in the body, against the bundle in the body`, "anyone"},
	{"operation table", "GET", "/v1/operations", `none: the table is public`, "anyone"},
}

// orgAccess is an action on the organization itself.
func orgAccess(orgID uint64, action resset.Action) *flyio.Access {
	return &flyio.Access{OrgID: &orgID, Action: action}
}

// keysAccess is an action on the organization's keys.
func keysAccess(orgID uint64, action resset.Action) *flyio.Access {
	f := FeatureKeys
	return &flyio.Access{OrgID: &orgID, Feature: &f, Action: action}
}

// tokensAccess is an action on the organization's tokens, or on an app's
// tokens when appID is not 0.
func tokensAccess(orgID, appID uint64, action resset.Action) *flyio.Access {
	a := orgAccess(orgID, action)
	if appID != 0 {
		a.AppID = &appID
	}
	return a
}
