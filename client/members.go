package client

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// Member is a member of an organization.
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

// Removal is the outcome of removing a member, or of leaving: the member,
// and their tokens of the organization, revoked, or re-assigned to the
// admin who removed them when Kept.
type Removal struct {
	UserID uint64  `json:"user_id"`
	Email  string  `json:"email"`
	Tokens []Token `json:"tokens"`
	Kept   bool    `json:"kept,omitempty"`
}

// InviteRequest asks for an invitation.
type InviteRequest struct {
	Email  string `json:"email"`
	Role   string `json:"role,omitempty"`   // "member" (the default) or "admin"
	Expiry string `json:"expiry,omitempty"` // a Go duration; 168h by default
}

func orgPath(slug, rest string) string { return "/v1/orgs/" + url.PathEscape(slug) + rest }

// Members lists the organization's members.
func (c *Client) Members(ctx context.Context, org string) ([]Member, error) {
	var out struct {
		Members []Member `json:"members"`
	}
	err := c.do(ctx, "GET", orgPath(org, "/members"), nil, &out, nil)
	return out.Members, err
}

// SetRole changes a member's role; member is an email or a user id.
func (c *Client) SetRole(ctx context.Context, org, member, role string) (Member, error) {
	var out Member
	err := c.do(ctx, "POST", orgPath(org, "/members/role"), map[string]string{"member": member, "role": role}, &out, nil)
	return out, err
}

// RemoveMember removes a member (an email or a user id); keepTokens
// re-assigns their tokens of the organization to the caller instead of
// revoking them.
func (c *Client) RemoveMember(ctx context.Context, org, member string, keepTokens bool) (Removal, error) {
	var out Removal
	err := c.do(ctx, "POST", orgPath(org, "/members/remove"), map[string]any{"member": member, "keep_tokens": keepTokens}, &out, nil)
	return out, err
}

// Leave ends the caller's membership of the organization.
func (c *Client) Leave(ctx context.Context, org string) (Removal, error) {
	var out Removal
	err := c.do(ctx, "POST", orgPath(org, "/leave"), nil, &out, nil)
	return out, err
}

// Invite invites an email to the organization; the result holds the code
// and the link, shown this once.
func (c *Client) Invite(ctx context.Context, org string, req InviteRequest) (Invitation, error) {
	var out Invitation
	err := c.do(ctx, "POST", orgPath(org, "/invitations"), req, &out, nil)
	return out, err
}

// Invitations lists the organization's pending invitations.
func (c *Client) Invitations(ctx context.Context, org string) ([]Invitation, error) {
	var out struct {
		Invitations []Invitation `json:"invitations"`
	}
	err := c.do(ctx, "GET", orgPath(org, "/invitations"), nil, &out, nil)
	return out.Invitations, err
}

// CancelInvitation cancels a pending invitation, named by its id or email.
func (c *Client) CancelInvitation(ctx context.Context, org, invitation string) (Invitation, error) {
	var out Invitation
	err := c.do(ctx, "POST", orgPath(org, "/invitations/cancel"), map[string]string{"invitation": invitation}, &out, nil)
	return out, err
}

// AcceptInvitation joins the organization of an invitation with the
// caller's login; code may also be the invitation's link.
func (c *Client) AcceptInvitation(ctx context.Context, code string) (Organization, error) {
	var out struct {
		Organization Organization `json:"organization"`
	}
	err := c.do(ctx, "POST", "/v1/invitations/accept", map[string]string{"code": InvitationCode(code)}, &out, nil)
	return out.Organization, err
}

// SignupInvited creates the invited account and joins the invitation's
// organization, which it returns; code may also be the invitation's link.
func (c *Client) SignupInvited(ctx context.Context, email, password, code string) (SignupResult, error) {
	var out SignupResult
	err := c.do(ctx, "POST", "/aaa/v1/users",
		map[string]string{"email": email, "password": password, "invitation": InvitationCode(code)}, &out, nil)
	return out, err
}

// InvitationCode returns the code of an invitation given as its code or
// as its link (…/invitations/CODE).
func InvitationCode(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "/invitations/"); i >= 0 && strings.Contains(s, "://") {
		return strings.TrimRight(s[i+len("/invitations/"):], "/")
	}
	return s
}
