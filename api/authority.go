package api

import (
	"encoding/json"
	"time"

	"github.com/caveatdev/caveat/flyio"
)

// Organization is an organization, with the caller's role in it where the
// answer is about a user (a list of the caller's organizations, a
// session's memberships).
type Organization struct {
	ID   uint64 `json:"id"`
	Slug string `json:"slug"`
	Role string `json:"role,omitempty"`
}

// App is an app of an organization.
type App struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	OrgID     uint64    `json:"org_id"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is a named token's registry record, as POST /v1/tokens answers it
// (with Header) and GET /v1/tokens lists it (with CreatedByEmail).
type Token struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Profile   string `json:"profile"`
	OrgID     uint64 `json:"org_id"`
	AppID     uint64 `json:"app_id,omitempty"`
	CreatedBy uint64 `json:"created_by"`
	// CreatedByEmail is the creator's email, in lists.
	CreatedByEmail string     `json:"created_by_email,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
	// RevokedBranches counts the token's revoked branches (attenuations
	// revoked with everything derived from them; the token itself and
	// its other attenuations keep working).
	RevokedBranches int `json:"revoked_branches"`
	// Header is the token as an Authorization header value ("FlyV1
	// fm2_…"), only in the answer to its creation: the server keeps no
	// copy.
	Header string `json:"token,omitempty"`
}

// Command is one allowed command of a machine-exec token: its arguments,
// a prefix of the command unless Exact.
type Command = flyio.Command

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Profile string `json:"profile"`
	Name    string `json:"name,omitempty"`
	// Org is the organization's slug; required.
	Org string `json:"org"`
	// App is the app's name, for the profiles confined to one app.
	App string `json:"app,omitempty"`
	// Expiry is a lifetime such as "720h" or "30d"; the profile's default
	// when empty.
	Expiry string `json:"expiry,omitempty"`
	// Commands are the commands a machine-exec token allows.
	Commands flyio.Commands `json:"commands,omitempty"`
}

// BranchRevocation is the answer to a branch revocation (POST
// /v1/tokens/revoke and /v1/tokens/revoke-branch).
type BranchRevocation struct {
	// ID is the token's id, which every branch of it shares.
	ID string `json:"id"`
	// Branch is the revoked branch: the binding id of the branch token's
	// final tail, in hex.
	Branch string `json:"branch"`
	// Revoked is false when the branch was already revoked.
	Revoked bool `json:"revoked"`
}

// Key is an organization's root key as GET /v1/orgs/{slug}/keys lists it:
// never its material.
type Key struct {
	// KID is the key's id, in hex.
	KID       string     `json:"kid"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	RotatedAt *time.Time `json:"rotated_at,omitempty"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// VerifiedToken is one permission token the authority verified, as POST
// /v1/tokens/authenticate answers it (in an array, Fly's shape) and POST
// /v1/tokens/authorize shows it: Fly's fields (caveats, permission_token)
// and caveat's.
type VerifiedToken struct {
	// TokenID is the permission token's nonce UUID: a named token's id,
	// or a session's.
	TokenID string `json:"token_id"`
	// Kind is "session" or "token".
	Kind string `json:"kind"`
	// UserID is a session's user, or the creator of a named token.
	UserID uint64 `json:"user_id"`
	// OrgID is the organization of a named token; 0 for a session.
	OrgID   uint64          `json:"org_id,omitempty"`
	Caveats json.RawMessage `json:"caveats"`
	// CaveatsMsgpack is the verified caveat set in its wire form (standard
	// base64), for verifiers that clear accesses themselves: JSON is not a
	// lossless form of caveats.
	CaveatsMsgpack string `json:"caveats_msgpack"`
	// ExpiresAt is the effective expiry: the earliest end of a
	// ValidityWindow over the token and its discharges.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Memberships are a session's organizations and roles; for a named
	// token, its creator's role in the token's organization (none when
	// the creator is no longer a member), which decides whether it may do
	// what only admins may.
	Memberships []Organization `json:"memberships,omitempty"`
	// PermissionToken is the verified permission token's bytes in
	// standard padded base64 (the fm2_ text without its prefix), which
	// Fly's machinesapi client matches against its own bundle.
	PermissionToken string `json:"permission_token"`
}

// Revocation is one entry of the revocation feed (GET
// /v1/tokens/revocations): a named token revoked whole, or one branch of
// it.
type Revocation struct {
	// Cursor orders the feed; pass the last one seen as "after".
	Cursor  uint64 `json:"cursor"`
	TokenID string `json:"token_id"`
	// Branch is set for the revocation of one branch of the token, in
	// hex.
	Branch string `json:"branch,omitempty"`
}

// Revocations is the answer of GET /v1/tokens/revocations: the entries
// after the cursor asked for, and the cursor to ask from next.
type Revocations struct {
	Cursor      uint64       `json:"cursor"`
	Revocations []Revocation `json:"revocations"`
}
