package api

import "time"

// Member is a member of an organization, as GET /v1/orgs/{slug}/members
// lists it.
type Member struct {
	UserID      uint64     `json:"user_id"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	JoinedAt    time.Time  `json:"joined_at"`
	LastLoginAt *time.Time `json:"last_login_at,omitempty"`
}

// Invitation is a pending invitation to an organization; Code and URL are
// set only in the answer to its creation.
type Invitation struct {
	ID        uint64    `json:"id"`
	OrgID     uint64    `json:"org_id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedBy uint64    `json:"invited_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Expired   bool      `json:"expired,omitempty"`
	Code      string    `json:"code,omitempty"`
	URL       string    `json:"url,omitempty"`
}

// Removal is the answer to a member's removal or departure: the member,
// and their tokens of the organization, revoked, or re-assigned to the
// admin who removed them when Kept.
type Removal struct {
	UserID uint64  `json:"user_id"`
	Email  string  `json:"email"`
	Tokens []Token `json:"tokens"`
	Kept   bool    `json:"kept,omitempty"`
}

// InviteRequest is the body of POST /v1/orgs/{slug}/invitations.
type InviteRequest struct {
	Email string `json:"email"`
	// Role is "member" (the default) or "admin".
	Role string `json:"role,omitempty"`
	// Expiry is a Go duration; 168h by default.
	Expiry string `json:"expiry,omitempty"`
}
