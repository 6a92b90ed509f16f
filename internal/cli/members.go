package cli

// The team commands under "caveat orgs": members, roles and invitations.

import (
	"context"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/lifetime"
	"github.com/spf13/cobra"
)

func (a *app) memberCommands() []*cobra.Command {
	return []*cobra.Command{a.orgsMembersCommand(), a.orgsSetRoleCommand(), a.orgsRemoveCommand(), a.orgsLeaveCommand(),
		a.orgsInviteCommand(), a.orgsInvitationsCommand(), a.orgsUninviteCommand(), a.orgsJoinCommand()}
}

// orgFlag registers -o/--org.
func orgFlag(c *cobra.Command, org *string) {
	c.Flags().StringVarP(org, "org", "o", "", "organization slug (default: your only organization)")
}

func (a *app) orgsMembersCommand() *cobra.Command {
	return orgListCommand(a, orgList[client.Member]{
		use:    "members [-o ORG] [--limit N] [--json]",
		short:  "List an organization's members",
		what:   "orgs members",
		header: []string{"USER ID", "EMAIL", "ROLE", "JOINED", "LAST LOGIN"},
		pages:  (*client.Client).Members,
		row: func(m client.Member) []string {
			return []string{u64s(m.UserID), m.Email, m.Role, m.JoinedAt.UTC().Format(time.RFC3339), timeOr(m.LastLoginAt, "never")}
		},
	})
}

func (a *app) orgsSetRoleCommand() *cobra.Command {
	var (
		f   onlineFlags
		org string
	)
	c := &cobra.Command{
		Use:   "set-role EMAIL (member | admin) [-o ORG]",
		Short: "Change a member's role (admins)",
		Long: `Change a member's role. A demoted admin's tokens lose at once, on every
server, what only admins may do. The organization's last admin cannot be
demoted: make another member admin first.`,
		Args: exactArgs(2, "the member's email (or user id) and the role, member or admin"),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if args[1] != "member" && args[1] != "admin" {
				return usageError(cmd, "the role is member or admin, not %q", args[1])
			}
			return nil
		},
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			m, err := cl.SetRole(ctx, org, args[0], args[1])
			if err != nil {
				return apiErr("orgs set-role", err)
			}
			a.info("%s is now %s of %s", m.Email, withArticle(m.Role), org)
			return nil
		}),
	}
	f.registerAuthenticated(c, false)
	orgFlag(c, &org)
	return c
}

// printRemoval reports a removal or a departure: the tokens go to stdout.
func (a *app) printRemoval(f *onlineFlags, r client.Removal, what, org string) error {
	if f.json {
		return a.printJSON(r)
	}
	switch {
	case len(r.Tokens) == 0:
		a.info("%s %s; they had no live token there", what, org)
		return nil
	case r.Kept:
		a.info("%s %s; their %d token(s) there keep working, now created by you:", what, org, len(r.Tokens))
	default:
		a.info("%s %s; their %d token(s) there are revoked on every server:", what, org, len(r.Tokens))
	}
	rows := make([][]string, len(r.Tokens))
	for i, t := range r.Tokens {
		rows[i] = []string{t.ID, t.Name, t.Profile, timeOr(t.ExpiresAt, "never"), timeOr(t.RevokedAt, "-")}
	}
	if err := a.table([]string{"ID", "NAME", "PROFILE", "EXPIRES", "REVOKED"}, rows); err != nil {
		return err
	}
	if r.Kept {
		a.info("hint: %s may still hold copies of them: replace them ('caveat tokens create', then 'caveat tokens revoke ID') when you can", r.Email)
	}
	return nil
}

func (a *app) orgsRemoveCommand() *cobra.Command {
	var (
		f    onlineFlags
		org  string
		keep bool
	)
	c := &cobra.Command{
		Use:   "remove EMAIL [-o ORG] [--keep-tokens] [--json]",
		Short: "Remove a member (admins); their tokens of the organization are revoked",
		Long: `Remove a member from the organization. Their session loses the organization
at once, and the named tokens they created there that are still live are
revoked with the removal, on every server within a second; they are listed
on stdout (and stay in 'caveat tokens list', revoked).

With --keep-tokens, their tokens are re-assigned to you instead, and keep
working: for tokens that programs depend on. The removed member may still
hold copies of them, so replace them soon. The organization's last admin
cannot be removed.`,
		Args: exactArgs(1, "the member's email (or user id)"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			r, err := cl.RemoveMember(ctx, org, args[0], keep)
			if err != nil {
				return apiErr("orgs remove", err)
			}
			return a.printRemoval(&f, r, "removed "+r.Email+" from", org)
		}),
	}
	f.registerAuthenticated(c, true)
	orgFlag(c, &org)
	c.Flags().BoolVar(&keep, "keep-tokens", false, "re-assign the member's tokens to you instead of revoking them")
	return c
}

func (a *app) orgsLeaveCommand() *cobra.Command {
	var (
		f   onlineFlags
		org string
	)
	c := &cobra.Command{
		Use:   "leave [-o ORG] [--json]",
		Short: "Leave an organization; your tokens of it are revoked",
		Long: `Leave an organization. The named tokens you created there that are still
live are revoked, and listed on stdout. The last admin cannot leave: make
another member admin first.`,
		Args: cobra.NoArgs,
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, _ []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			r, err := cl.Leave(ctx, org)
			if err != nil {
				return apiErr("orgs leave", err)
			}
			return a.printRemoval(&f, r, "you left", org)
		}),
	}
	f.registerAuthenticated(c, true)
	orgFlag(c, &org)
	return c
}

func (a *app) orgsInviteCommand() *cobra.Command {
	var (
		f           onlineFlags
		org, role   string
		expiryText  string
		expiry      time.Duration
		defaultLife = "7d"
	)
	c := &cobra.Command{
		Use:   "invite EMAIL [--role member|admin] [-o ORG] [--expiry 7d] [--json]",
		Short: "Invite someone by email (admins); prints a one-time link and code",
		Long: `Invite someone to the organization. The invitation's link and its code are
printed on stdout, once (the server keeps only a hash of the code): send
either to the invitee. They accept with the link in a browser (logging in,
or creating their account), with 'caveat orgs join CODE' when logged in, or
with 'caveat auth signup --invite CODE', which works even when the server's
open signup is closed. Only an account with the invited email can accept.
The invitation lasts --expiry (7d by default, 30d at most);
'caveat orgs invitations' lists pending ones, 'caveat orgs uninvite'
cancels one.`,
		Example: `  caveat orgs invite bob@example.com
  caveat orgs invite carol@example.com --role admin --expiry 2d --json`,
		Args: exactArgs(1, "the invitee's email"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if role != "member" && role != "admin" {
				return usageError(cmd, "--role is member or admin, not %q", role)
			}
			var err error
			if expiry, err = lifetime.Parse(expiryText); err != nil {
				return usageError(cmd, "--expiry: %v", err)
			}
			return nil
		},
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			inv, err := cl.Invite(ctx, org, client.InviteRequest{Email: args[0], Role: role, Expiry: expiry.String()})
			if err != nil {
				return apiErr("orgs invite", err)
			}
			if f.json {
				return a.printJSON(map[string]any{"code": inv.Code, "url": inv.URL, "email": inv.Email, "role": inv.Role,
					"expires_at": inv.ExpiresAt.UTC(), "id": inv.ID, "org": org})
			}
			a.info("invited %s to %s as %s, until %s; send them the link (or the code), which is shown only now:",
				inv.Email, org, withArticle(inv.Role), inv.ExpiresAt.UTC().Format(time.RFC3339))
			return a.output(inv.URL + "\n" + inv.Code + "\n")
		}),
	}
	f.registerAuthenticated(c, true)
	orgFlag(c, &org)
	c.Flags().StringVar(&role, "role", "member", "the invitee's role: member or admin")
	c.Flags().StringVar(&expiryText, "expiry", defaultLife, "how long the invitation lasts: days (7d) or a duration (36h)")
	return c
}

func (a *app) orgsInvitationsCommand() *cobra.Command {
	return orgListCommand(a, orgList[client.Invitation]{
		use:    "invitations [-o ORG] [--limit N] [--json]",
		short:  "List an organization's pending invitations",
		what:   "orgs invitations",
		header: []string{"ID", "EMAIL", "ROLE", "INVITED BY", "EXPIRES"},
		pages:  (*client.Client).Invitations,
		row: func(inv client.Invitation) []string {
			exp := inv.ExpiresAt.UTC().Format(time.RFC3339)
			if inv.Expired {
				exp += " (expired)"
			}
			return []string{u64s(inv.ID), inv.Email, inv.Role, u64s(inv.InvitedBy), exp}
		},
	})
}

func (a *app) orgsUninviteCommand() *cobra.Command {
	var (
		f   onlineFlags
		org string
	)
	c := &cobra.Command{
		Use:   "uninvite (EMAIL | ID) [-o ORG]",
		Short: "Cancel a pending invitation (admins)",
		Args:  exactArgs(1, "the invitation's email or id, as 'caveat orgs invitations' shows"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			inv, err := cl.CancelInvitation(ctx, org, args[0])
			if err != nil {
				return apiErr("orgs uninvite", err)
			}
			a.info("cancelled the invitation of %s to %s", inv.Email, org)
			return nil
		}),
	}
	f.registerAuthenticated(c, false)
	orgFlag(c, &org)
	return c
}

func (a *app) orgsJoinCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "join (CODE | LINK) [--json]",
		Short: "Accept an invitation with your login",
		Long: `Accept an invitation: join its organization in the role it names. It must
be for your account's email. Without an account, use
'caveat auth signup --invite CODE' (or open the link in a browser).`,
		Args: exactArgs(1, "the invitation's code (cvi1_…) or link"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			o, err := cl.AcceptInvitation(ctx, args[0])
			if err != nil {
				return apiErr("orgs join", err)
			}
			if f.json {
				return a.printJSON(o)
			}
			a.info("joined %s as %s", o.Slug, withArticle(o.Role))
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	return c
}

// withArticle is "a member" or "an admin".
func withArticle(role string) string {
	if role == "admin" {
		return "an admin"
	}
	return "a " + role
}
