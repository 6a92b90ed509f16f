package cli

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/caveatdev/caveat/internal/inspect"
	"github.com/caveatdev/caveat/internal/lifetime"
	"github.com/spf13/cobra"
)

func (a *app) tokensCreateCommand() *cobra.Command {
	var (
		f               onlineFlags
		name, expiry    string
		app, org        string
		commands        []string
		commandPrefixes []string
		req             client.CreateTokenRequest
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
		PreRunE: func(cmd *cobra.Command, args []string) error {
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
			req = client.CreateTokenRequest{Profile: profile, Name: name, App: app}
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
			return nil
		},
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, _ []string) error {
			var err error
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
		}),
	}
	f.registerAuthenticated(c, true)
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
		f                onlineFlags
		lf               listFlags
		app, org         string
		expiring, unused string
		revoked, expired bool
		now              time.Time
		within, idle     time.Duration
	)
	c := &cobra.Command{
		Use:   "list [-o ORG] [-a APP] [--expiring-within DURATION] [--unused-for DURATION] [--revoked] [--expired] [--limit N] [--json]",
		Short: "List the named tokens of an organization or app (needs a login)",
		Long: `List the named tokens of an organization, or of one app, oldest first: id,
name, profile, creator (email), expiry, last use, when the token was revoked
(whole), and how many of its branches (attenuations revoked with 'caveat
tokens revoke --branch') are revoked. Tokens that have expired are left
out unless --expired. Rows print as the server's pages arrive (an
organization may hold millions of tokens); --limit N stops after N rows.

Filters, which combine: --expiring-within 30d keeps live tokens that expire
within that time; --unused-for 90d keeps tokens not used for that long
(never used ones count from their creation); --revoked keeps revoked ones.
Durations are Go durations or days (12h, 30d). The last use is recorded at
most once a minute per token and server.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(cmd); err != nil {
				return err
			}
			var err error
			if now, err = a.now(); err != nil {
				return err
			}
			if cmd.Flags().Changed("expiring-within") {
				if within, err = lifetimeFlag("--expiring-within", expiring); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("unused-for") {
				if idle, err = lifetimeFlag("--unused-for", unused); err != nil {
					return err
				}
			}
			return nil
		},
		RunE: a.onlineList(&f, func(ctx context.Context, cl *client.Client, _ []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			keep := func(t client.Token) bool {
				switch {
				case revoked && t.RevokedAt == nil:
				case within > 0 && (t.RevokedAt != nil || t.ExpiresAt == nil || t.ExpiresAt.Before(now) || t.ExpiresAt.After(now.Add(within))):
				case idle > 0 && lastActive(t).After(now.Add(-idle)):
				default:
					return true
				}
				return false
			}
			out := a.newListPrinter(f.json, lf, "ID", "NAME", "PROFILE", "CREATED BY", "EXPIRES", "LAST USED", "REVOKED", "REVOKED BRANCHES")
			pages := cl.Tokens(ctx, client.TokenQuery{Org: org, App: app, Expired: expired}, lf.page())
			err = printPages(out, pages, keep, func(t client.Token) []string {
				creator := t.CreatedByEmail
				if creator == "" {
					creator = "user " + u64s(t.CreatedBy)
				}
				return []string{t.ID, t.Name, t.Profile, creator, expiresText(t.ExpiresAt, now), timeOr(t.LastUsedAt, "never"),
					timeOr(t.RevokedAt, "-"), strconv.Itoa(t.RevokedBranches)}
			})
			if err != nil {
				return apiErr("tokens list", err)
			}
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	lf.register(c)
	c.Flags().StringVarP(&app, "app", "a", "", "only the tokens of this app")
	c.Flags().StringVarP(&org, "org", "o", "", "organization slug (default: your only organization)")
	c.Flags().StringVar(&expiring, "expiring-within", "", "only live tokens that expire within this time (e.g. 30d)")
	c.Flags().StringVar(&unused, "unused-for", "", "only tokens not used for this long (e.g. 90d)")
	c.Flags().BoolVar(&revoked, "revoked", false, "only revoked tokens")
	c.Flags().BoolVar(&expired, "expired", false, "list expired tokens too")
	return c
}

// lifetimeFlag parses a duration flag in the forms of --expiry.
func lifetimeFlag(name, v string) (time.Duration, error) {
	d, err := lifetime.Parse(v)
	if err != nil {
		return 0, failf("%s: %v", name, err).withHint("days work too: 30d, 90d")
	}
	return d, nil
}

// lastActive is when a token was last used, or created if never.
func lastActive(t client.Token) time.Time {
	if t.LastUsedAt != nil {
		return *t.LastUsedAt
	}
	return t.CreatedAt
}

// expiresText is the expiry with a warning when it is near or past.
func expiresText(at *time.Time, now time.Time) string {
	switch {
	case at == nil:
		return "never"
	case !at.After(now):
		return timeOr(at, "") + " (expired)"
	case at.Sub(now) <= 7*24*time.Hour:
		return timeOr(at, "") + " (in " + inspect.ShortDuration(at.Sub(now)) + ")"
	}
	return timeOr(at, "")
}

func (a *app) tokensRevokeCommand() *cobra.Command {
	var (
		f         onlineFlags
		branch    bool
		self      bool
		token     string
		name, org string
		byID      func(*cobra.Command, []string) error
	)
	c := &cobra.Command{
		Use:   "revoke (ID… | --name NAME | --branch [-t TOKEN | -] [--self])",
		Short: "Revoke named tokens by id, or one branch of a token (needs a login)",
		Long: `Revoke named tokens by id (as 'caveat tokens list' shows): every copy and
every attenuation of them. Every server refuses a revoked token on its next
request. The exit status is 1 if any revocation failed.

With --branch, revoke one branch instead: the token given with -t, on stdin
("-") or in CAVEAT_TOKEN — an attenuation of one of your tokens — and every
token attenuated from it are refused, while the tokens it was attenuated
from, and their other attenuations, keep working. You must be logged in as
an admin of the token's organization or as its creator; your login comes
from CAVEAT_TOKEN or the config file, as for every online command (from the
config file only when CAVEAT_TOKEN holds the branch). So -t here gives
the branch, not the login as on the other online commands: to revoke with
another login than the saved one, put it in CAVEAT_TOKEN and give the
branch with -t or "-". With --self, the
branch token itself is the credential, so no login is needed: it revokes
exactly the branch it is and nothing above it. A token has at most 1000
revoked branches; past that, revoke it by id.`,
		Example: `  caveat tokens revoke 0f5a1d2e-…
  caveat tokens attenuate -t "$(cat deploy.token)" < narrow.json > ci.token
  caveat tokens revoke --branch - < ci.token         # ci.token and its attenuations only
  CAVEAT_TOKEN="$(cat ci.token)" caveat tokens revoke --branch --self`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case self && !branch:
				return usageError(cmd, "--self goes with --branch")
			case branch && (len(args) > 1 || len(args) == 1 && args[0] != "-"):
				return usageError(cmd, "--branch takes the branch token (-t, \"-\" for stdin, or CAVEAT_TOKEN), not ids")
			case name != "" && (branch || len(args) > 0):
				return usageError(cmd, "--name names the one token to revoke: give no ids and no --branch with it")
			case !branch && len(args) == 0 && name == "":
				return usageError(cmd, "give the id of at least one token, --name NAME, or --branch with a token")
			case !branch && cmd.Flags().Changed("token"):
				return usageError(cmd, "-t names a branch to revoke and goes with --branch; give ids as arguments")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if branch {
				return a.revokeBranch(cmd, args, token, self)
			}
			return byID(cmd, args)
		},
	}
	byID = a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
		if name != "" {
			id, err := a.tokenByName(ctx, cl, org, name)
			if err != nil {
				return err
			}
			args = []string{id}
		}
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
	})
	f.register(c, false)
	c.Flags().StringVarP(&name, "name", "n", "", "revoke the one live token with exactly this name")
	c.Flags().StringVarP(&org, "org", "o", "", "with --name: the organization (default: your only organization)")
	c.Flags().BoolVar(&branch, "branch", false, "revoke the branch the given token is, and its attenuations, instead of tokens by id")
	c.Flags().BoolVar(&self, "self", false, "with --branch: use the branch token itself as the credential (no login)")
	c.Flags().StringVarP(&token, "token", "t", "", `with --branch: the branch token ("-" reads stdin)`)
	return c
}

// tokenByName finds the one live token of the organization with exactly
// this name; none, or several, is an error that lists them.
func (a *app) tokenByName(ctx context.Context, cl *client.Client, org, name string) (string, error) {
	org, err := a.pickOrg(ctx, cl, org)
	if err != nil {
		return "", err
	}
	now, err := a.now()
	if err != nil {
		return "", err
	}
	// The live tokens, a page at a time: only the matching ids are kept.
	var ids []string
	for page, err := range cl.Tokens(ctx, client.TokenQuery{Org: org}, client.Page{Limit: pageSize}) {
		if err != nil {
			return "", apiErr("tokens revoke --name", err)
		}
		for _, t := range page {
			if t.Name == name && t.RevokedAt == nil && (t.ExpiresAt == nil || t.ExpiresAt.After(now)) {
				ids = append(ids, t.ID)
			}
		}
	}
	switch len(ids) {
	case 1:
		return ids[0], nil
	case 0:
		return "", failf("no live token of %s is named %q", org, name).withHint("'caveat tokens list' shows the names")
	}
	return "", failf("%d live tokens of %s are named %q: %s", len(ids), org, name, strings.Join(ids, ", ")).
		withHint("revoke them by id: caveat tokens revoke ID…")
}

// revokeBranch is 'tokens revoke --branch': the branch token comes from
// "-" (stdin), -t or CAVEAT_TOKEN, never from the config file, which holds
// the caller's own login. The login is then found as for every online
// command, but for the source that gave the branch: CAVEAT_TOKEN or the
// config file when -t or stdin gave it, the config file only when
// CAVEAT_TOKEN did, and the branch itself with --self.
func (a *app) revokeBranch(cmd *cobra.Command, args []string, flagValue string, self bool) error {
	// cl sends the branch itself: the credential of --self.
	cl, src, err := a.authenticatedBy(cmd, tokenQuery{what: "branch token", args: args, flag: flagValue,
		flagSet: cmd.Flags().Changed("token"), noConfig: true,
		none: func() *cliError {
			return failf("no branch token: give it with -t, on stdin (\"-\") or in CAVEAT_TOKEN").
				withHint("the token to give is the attenuation to revoke, not your login")
		}})
	if err != nil {
		return err
	}
	if !self {
		q := tokenQuery{}
		if src.label == "CAVEAT_TOKEN" {
			q = tokenQuery{noEnv: true, none: func() *cliError {
				return failf("not logged in (CAVEAT_TOKEN holds the branch to revoke, not a login)").
					withHint("run 'caveat auth login', or add --self to revoke the branch with itself as the credential")
			}}
		}
		if cl, _, err = a.authenticatedBy(cmd, q); err != nil {
			return err
		}
	}
	ctx, cancel := a.ctx()
	defer cancel()
	var r client.BranchRevocation
	if self {
		r, err = cl.RevokeSelf(ctx)
	} else {
		r, err = cl.RevokeBranch(ctx, src.header())
	}
	if err != nil {
		return apiErr("revoke branch", err)
	}
	if !r.Revoked {
		a.info("branch %s of token %s was already revoked", r.Branch, r.ID)
		return nil
	}
	a.info("revoked branch %s of token %s: it and its attenuations are refused; the tokens it was attenuated from keep working", r.Branch, r.ID)
	return nil
}

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}
