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
		f               onlineFlags
		name, expiry    string
		app, org        string
		commands        []string
		commandPrefixes []string
	)
	c := &cobra.Command{
		Use:   "create (org | deploy | readonly | machine-exec [COMMAND…]) [-o ORG] [-a APP] [-n NAME] [-x EXPIRY] [--json]",
		Short: "Create a named token on the server (needs a login)",
		Long: `Create a named token: a token that stands on its own, with no login caveat,
until it expires or is revoked. It is listed by 'caveat tokens list' and
revoked by 'caveat tokens revoke'. The token is printed on stdout.

Profiles:
  org           everything in the organization (admins only)
  deploy        everything on one app (-a)
  readonly      read everything in the organization
  machine-exec  run commands on the machines of one app (-a), and read the
                app (list its machines), as flyctl's machine-exec tokens do.
                Each COMMAND argument and each --command is an exact command
                line ("ls -l" allows "ls -l" only); --command-prefix allows
                the command line and any longer one starting with it. With
                none of them, any command is allowed, written into the token.

-x/--expiry defaults to one year; it takes a Go duration or days: 2h, 30d,
1d12h, 8760h. Narrow a token further offline with 'caveat tokens attenuate'.`,
		Example: `  caveat tokens create deploy -a workers -x 365d -n autoscaler > deploy.token
  caveat tokens create machine-exec -a workers uptime "ls -l"
  caveat tokens create machine-exec -a workers --command-prefix "cat /var/log/"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(cmd, "name one profile: org, deploy, readonly or machine-exec")
			}
			if len(args) > 1 && args[0] != "machine-exec" {
				return usageError(cmd, "unexpected argument %s: only machine-exec takes commands", describeArg(args[1]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			profile := args[0]
			needsApp := profile == "deploy" || profile == "machine-exec"
			if needsApp && app == "" {
				return usageError(cmd, "the %s profile is for one app: name it with -a", profile).
					withFirstHint("caveat tokens create %s -a APP ('caveat apps list' shows them)", profile)
			}
			if !needsApp && app != "" && (profile == "org" || profile == "readonly") {
				return usageError(cmd, "the %s profile is for the whole organization: -a %s does not apply", profile, app).
					withFirstHint("for one app, use the deploy profile and narrow it with 'caveat tokens attenuate'")
			}
			if profile != "machine-exec" && (len(commands) > 0 || len(commandPrefixes) > 0) {
				return usageError(cmd, "--command and --command-prefix are for the machine-exec profile")
			}
			req := client.CreateTokenRequest{Profile: profile, Name: name, App: app}
			if cmd.Flags().Changed("expiry") {
				d, err := parseExpiry(expiry)
				if err != nil {
					return err
				}
				req.Expiry = d.String()
			}
			for _, line := range append(args[1:], commands...) {
				argv := strings.Fields(line)
				if len(argv) == 0 {
					return usageError(cmd, "an empty command allows nothing: leave commands out to allow any")
				}
				req.Commands = append(req.Commands, client.Command{Args: argv, Exact: true})
			}
			for _, line := range commandPrefixes {
				argv := strings.Fields(line)
				if len(argv) == 0 {
					return usageError(cmd, "an empty --command-prefix would allow any command: leave commands out instead")
				}
				req.Commands = append(req.Commands, client.Command{Args: argv})
			}
			cl, _, err := a.authenticated(&f, "")
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx()
			defer cancel()
			if req.Org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
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
	c.Flags().StringVarP(&name, "name", "n", "", "a name to find the token by in the list")
	c.Flags().StringVarP(&expiry, "expiry", "x", "", "lifetime: 2h, 30d, 1d12h, 8760h (default a year)")
	c.Flags().StringVarP(&app, "app", "a", "", "the app (deploy, machine-exec)")
	c.Flags().StringVarP(&org, "org", "o", "", "organization slug (default: your only organization)")
	c.Flags().StringArrayVar(&commands, "command", nil, "machine-exec: an allowed command line, exactly (repeatable)")
	c.Flags().StringArrayVar(&commandPrefixes, "command-prefix", nil, "machine-exec: an allowed command line and any longer one (repeatable)")
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
