package client

import (
	"context"
	"iter"
	"net/url"
	"strings"
)

func orgPath(slug, rest string) string { return "/v1/orgs/" + url.PathEscape(slug) + rest }

// MembersPage lists a page of the organization's members, by user id,
// and the cursor of the next page ("" after the last).
func (c *Client) MembersPage(ctx context.Context, org string, p Page) ([]Member, string, error) {
	var out struct {
		Members []Member `json:"members"`
		Next    string   `json:"next"`
	}
	err := c.do(ctx, "GET", orgPath(org, "/members")+p.query(nil), nil, &out, nil)
	return out.Members, out.Next, err
}

// Members yields the organization's members a page at a time, from p on.
func (c *Client) Members(ctx context.Context, org string, p Page) iter.Seq2[[]Member, error] {
	return Pages(p, func(p Page) ([]Member, string, error) { return c.MembersPage(ctx, org, p) })
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

// InvitationsPage lists a page of the organization's pending
// invitations and the cursor of the next page ("" after the last).
func (c *Client) InvitationsPage(ctx context.Context, org string, p Page) ([]Invitation, string, error) {
	var out struct {
		Invitations []Invitation `json:"invitations"`
		Next        string       `json:"next"`
	}
	err := c.do(ctx, "GET", orgPath(org, "/invitations")+p.query(nil), nil, &out, nil)
	return out.Invitations, out.Next, err
}

// Invitations yields the organization's pending invitations a page at a
// time, from p on.
func (c *Client) Invitations(ctx context.Context, org string, p Page) iter.Seq2[[]Invitation, error] {
	return Pages(p, func(p Page) ([]Invitation, string, error) { return c.InvitationsPage(ctx, org, p) })
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
