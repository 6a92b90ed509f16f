package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

func (a *app) tokensCreateCommand() *cobra.Command {
	var (
		f        onlineFlags
		name     string
		expiry   time.Duration
		app, org string
		commands []string
	)
	c := &cobra.Command{
		Use:   "create (org | deploy | readonly | machine-exec) [-o ORG] [-a APP] [--name NAME] [--expiry DURATION] [--json]",
		Short: "Create a named token on the server (needs a login)",
		Long: `Create a named token: a token that stands on its own, with no login caveat,
until it expires or is revoked. It is listed by 'caveat tokens list' and
revoked by 'caveat tokens revoke'. The token is printed on stdout.

Profiles:
  org           everything in the organization (admins only)
  deploy        everything on one app (-a)
  readonly      read everything in the organization
  machine-exec  only run commands on the machines of one app (-a); --command
                limits which (repeatable; "ls -l" allows "ls -l" and longer)

--expiry defaults to one year (8760h). Narrow a token further offline with
'caveat tokens attenuate'.`,
		Example: `  caveat tokens create deploy -a workers --expiry 8760h --name autoscaler > deploy.token
  caveat tokens create machine-exec -a workers --command "uptime" --command "ls -l"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(cmd, "name one profile: org, deploy, readonly or machine-exec")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := a.authenticated(&f, "")
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx()
			defer cancel()
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			req := client.CreateTokenRequest{Profile: args[0], Name: name, Org: org, App: app}
			if expiry < 0 {
				return usageError(cmd, "--expiry must be positive")
			}
			if expiry > 0 {
				req.Expiry = expiry.String()
			}
			for _, cmdline := range commands {
				req.Commands = append(req.Commands, client.Command{Args: strings.Fields(cmdline)})
			}
			t, err := cl.CreateToken(ctx, req)
			if err != nil {
				return apiErr("tokens create", err)
			}
			if f.json {
				return a.printJSON(t)
			}
			exp := "never"
			if t.ExpiresAt != nil {
				exp = t.ExpiresAt.UTC().Format(time.RFC3339)
			}
			a.info("created %s token %s (%q), expires %s", t.Profile, t.ID, t.Name, exp)
			return a.output(t.Header + "\n")
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&name, "name", "", "a name to find the token by in the list")
	c.Flags().DurationVar(&expiry, "expiry", 0, "lifetime, e.g. 720h (default 8760h)")
	c.Flags().StringVarP(&app, "app", "a", "", "the app (deploy, machine-exec)")
	c.Flags().StringVarP(&org, "org", "o", "", "organization slug (default: your only organization)")
	c.Flags().StringArrayVar(&commands, "command", nil, "machine-exec: an allowed command line (repeatable)")
	return c
}

func (a *app) tokensListCommand() *cobra.Command {
	var (
		f        onlineFlags
		app, org string
	)
	c := &cobra.Command{
		Use:   "list [-o ORG] [-a APP] [--json]",
		Short: "List the named tokens of an organization or app (needs a login)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := a.authenticated(&f, "")
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx()
			defer cancel()
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			ts, err := cl.Tokens(ctx, org, app)
			if err != nil {
				return apiErr("tokens list", err)
			}
			if f.json {
				return a.printJSON(ts)
			}
			rows := make([][]string, len(ts))
			for i, t := range ts {
				rows[i] = []string{t.ID, t.Name, t.Profile, u64s(t.CreatedBy), timeOr(t.ExpiresAt, "never"), timeOr(t.RevokedAt, "-")}
			}
			return a.table([]string{"ID", "NAME", "PROFILE", "CREATED BY", "EXPIRES", "REVOKED"}, rows)
		},
	}
	f.register(c, true)
	c.Flags().StringVarP(&app, "app", "a", "", "only the tokens of this app")
	c.Flags().StringVarP(&org, "org", "o", "", "organization slug (default: your only organization)")
	return c
}

func (a *app) tokensRevokeCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "revoke ID…",
		Short: "Revoke named tokens by id (needs a login)",
		Long: `Revoke named tokens by id (as 'caveat tokens list' shows). Every server
refuses a revoked token on its next request. The exit status is 1 if any
revocation failed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(cmd, "give the id of at least one token")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := a.authenticated(&f, "")
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx()
			defer cancel()
			failed := 0
			for _, id := range args {
				revoked, err := cl.RevokeToken(ctx, id)
				switch {
				case err != nil:
					failed++
					a.printErr(apiErr("revoke "+id, err).(*cliError))
				case revoked:
					a.info("revoked %s", id)
				default:
					a.info("%s was already revoked", id)
				}
			}
			if failed > 0 {
				return failf("%d of %d revocations failed", failed, len(args))
			}
			return nil
		},
	}
	f.register(c, false)
	return c
}

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}
