package console

// Members and invitations: the list, inviting (the link shown once),
// cancelling, changing a role, removing a member after a warning that
// names the tokens revoked with them, and joining with an invitation.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/authority"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/internal/invitation"
	"github.com/caveatdev/caveat/store"
)

// memberRow is a member as the members page shows it.
type memberRow struct {
	store.Member
	// Self is the logged-in user.
	Self bool
}

// invitationRow is a pending invitation as the members page shows it.
type invitationRow struct {
	store.Invitation
	Expired   bool
	InvitedBy string // the admin's email
}

// inviteForm is what the invitation form holds, to show it again after a
// refusal.
type inviteForm struct {
	Email, Role, Expiry string
}

type membersData struct {
	Members     []memberRow
	Invitations []invitationRow
	Form        inviteForm
	Expiries    []expiryOption
}

var invitationExpiries = []expiryOption{{"24h", "1 day"}, {"168h", "7 days"}, {"720h", "30 days"}}

// membersPage serves GET /orgs/{org}/members.
func (c *Console) membersPage(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	return c.showMembers(w, q, org, http.StatusOK, nil, newInviteForm())
}

// newInviteForm is the invitation form as the page first shows it.
func newInviteForm() inviteForm { return inviteForm{Role: string(store.RoleMember), Expiry: "168h"} }

// refuseOnMembers shows the members page again, with an empty invitation
// form, saying why err refused an operation on a member or invitation.
func (c *Console) refuseOnMembers(w http.ResponseWriter, q *request, org *store.OrganizationRole, err error) error {
	p := c.problemOf(q.Request, err)
	return c.showMembers(w, q, org, p.Status, p, newInviteForm())
}

func (c *Console) showMembers(w http.ResponseWriter, q *request, org *store.OrganizationRole, status int, p *problem, f inviteForm) error {
	ms, err := c.allMembers(q, org)
	if err != nil {
		return err
	}
	invs, err := allOf(func(p store.Page) ([]store.Invitation, string, error) {
		return c.cfg.Authority.Invitations(q.ctx(), q.p, org.ID, p)
	})
	if err != nil {
		return err
	}
	d := membersData{Form: f, Expiries: invitationExpiries}
	for _, m := range ms {
		d.Members = append(d.Members, memberRow{Member: m, Self: m.UserID == q.p.UserID})
	}
	emails := map[uint64]string{}
	for _, m := range ms {
		emails[m.UserID] = m.Email
	}
	now := c.cfg.Now()
	for _, inv := range invs {
		by := emails[inv.InvitedBy]
		if by == "" {
			by = fmt.Sprintf("user %d", inv.InvitedBy)
		}
		d.Invitations = append(d.Invitations, invitationRow{Invitation: inv, Expired: !now.Before(inv.ExpiresAt), InvitedBy: by})
	}
	v := q.view(org.Slug+" · Members", "members", org)
	v.Notice, v.Problem, v.Data = q.notice(), p, d
	c.render(w, status, "members", v)
	return nil
}

type invitedData struct {
	Invitation store.Invitation
	URL        string
}

// invite serves POST /orgs/{org}/invitations: the operation "invite", and
// the invitation's link shown once.
func (c *Console) invite(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	f := inviteForm{Email: strings.TrimSpace(q.PostForm.Get("email")), Role: q.PostForm.Get("role"), Expiry: q.PostForm.Get("expiry")}
	refuse := func(err error) error {
		p := c.problemOf(q.Request, err)
		return c.showMembers(w, q, org, p.Status, p, f)
	}
	d, err := time.ParseDuration(f.Expiry)
	if err != nil || d <= 0 {
		return refuse(httpjson.Errorf(http.StatusBadRequest, "the invitation's lifetime must be a positive duration such as 168h, not %q", f.Expiry))
	}
	inv, err := c.cfg.Authority.Invite(q.ctx(), q.p, org.ID, authority.InviteRequest{Email: f.Email, Role: store.Role(f.Role), Expiry: d})
	if err != nil {
		return refuse(err)
	}
	v := q.view(org.Slug+" · Invitation", "members", org)
	v.Data = invitedData{Invitation: inv.Invitation, URL: inv.URL}
	c.render(w, http.StatusOK, "invited", v)
	return nil
}

// cancelInvitation serves POST /orgs/{org}/invitations/{id}/cancel.
func (c *Console) cancelInvitation(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	id, err := strconv.ParseUint(q.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		return httpjson.Errorf(http.StatusNotFound, "%q is not an invitation id", q.PathValue("id"))
	}
	if _, err := c.cfg.Authority.CancelInvitation(q.ctx(), q.p, org.ID, strconv.FormatUint(id, 10)); err != nil {
		return c.refuseOnMembers(w, q, org, err)
	}
	redirect(w, q, "/orgs/"+org.Slug+"/members", "cancelled")
	return nil
}

// orgMember is the path's organization and the user id of its member.
func (q *request) orgMember() (*store.OrganizationRole, string, error) {
	org, err := q.org()
	if err != nil {
		return nil, "", err
	}
	id, err := strconv.ParseUint(q.PathValue("user"), 10, 64)
	if err != nil || id == 0 {
		return nil, "", httpjson.Errorf(http.StatusNotFound, "%q is not a user id", q.PathValue("user"))
	}
	return org, strconv.FormatUint(id, 10), nil
}

// setRole serves POST /orgs/{org}/members/{user}/role.
func (c *Console) setRole(w http.ResponseWriter, q *request) error {
	org, who, err := q.orgMember()
	if err != nil {
		return err
	}
	if _, err := c.cfg.Authority.SetRole(q.ctx(), q.p, org.ID, who, store.Role(q.PostForm.Get("role"))); err != nil {
		return c.refuseOnMembers(w, q, org, err)
	}
	redirect(w, q, "/orgs/"+org.Slug+"/members", "role")
	return nil
}

type removeData struct {
	Member memberRow
	// Tokens are the member's tokens that still work, which the removal
	// revokes (or, when kept, re-assigns).
	Tokens []tokenRow
}

// removePage serves GET /orgs/{org}/members/{user}/remove: the warning.
func (c *Console) removePage(w http.ResponseWriter, q *request) error {
	return c.showRemove(w, q, http.StatusOK, nil)
}

func (c *Console) showRemove(w http.ResponseWriter, q *request, status int, p *problem) error {
	org, who, err := q.orgMember()
	if err != nil {
		return err
	}
	ms, err := c.allMembers(q, org)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if strconv.FormatUint(m.UserID, 10) != who {
			continue
		}
		d := removeData{Member: memberRow{Member: m, Self: m.UserID == q.p.UserID}}
		rows, err := c.tokenRows(q, org)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.CreatedBy == m.UserID && r.Status == "active" {
				d.Tokens = append(d.Tokens, r)
			}
		}
		v := q.view(org.Slug+" · Remove "+m.Email, "members", org)
		v.Problem, v.Data = p, d
		c.render(w, status, "remove", v)
		return nil
	}
	return httpjson.Errorf(http.StatusNotFound, "user %s is not a member of %s", who, org.Slug)
}

// removeMember serves POST /orgs/{org}/members/{user}/remove: the
// operation "remove a member".
func (c *Console) removeMember(w http.ResponseWriter, q *request) error {
	org, who, err := q.orgMember()
	if err != nil {
		return err
	}
	removed, err := c.cfg.Authority.RemoveMember(q.ctx(), q.p, org.ID, who, q.PostForm.Get("keep_tokens") == "on")
	if err != nil {
		p := c.problemOf(q.Request, err)
		return c.showRemove(w, q, p.Status, p)
	}
	if removed.User.ID == q.p.UserID {
		redirect(w, q, "/", "left")
		return nil
	}
	redirect(w, q, "/orgs/"+org.Slug+"/members", "removed")
	return nil
}

// join serves POST /join: the operation "accept an invitation", with the
// invitation's link or its code.
func (c *Console) join(w http.ResponseWriter, q *request) error {
	code := strings.TrimSpace(q.PostForm.Get("code"))
	if i := strings.LastIndex(code, invitation.Path); i >= 0 {
		code = code[i+len(invitation.Path):]
	}
	_, o, err := c.cfg.Authority.AcceptInvitation(q.ctx(), q.p, code)
	if err != nil {
		v := q.view("Organizations", "orgs", nil)
		v.Problem = c.problemOf(q.Request, err)
		v.Data = homeData{SessionEnds: formatDate(q.p.Expires)}
		c.render(w, v.Problem.Status, "home", v)
		return nil
	}
	redirect(w, q, "/orgs/"+o.Slug+"/tokens", "joined")
	return nil
}
