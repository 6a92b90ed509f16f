package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

func (a *app) authCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "auth",
		Short: "Sign up, log in and out of a caveat server",
		Long: `Sign up, log in and out of a caveat server.

A login saves a session in the config file ($CAVEAT_CONFIG_DIR/config.json,
mode 0600): the session token, its login discharge and the session secret.
Commands renew the discharge with the secret whenever it is about to expire,
so a login lasts as long as the session (30 days by default), however short
the server's discharges are. Named tokens ('caveat tokens create') need no
login at all.`,
		Args: subcommandArgs,
		RunE: missingSubcommand,
	}
	c.AddCommand(a.signupCommand(), a.loginCommand(), a.logoutCommand(), a.whoamiCommand())
	return c
}

// readEmail returns --email, or asks for it on a terminal.
func (a *app) readEmail(cmd *cobra.Command, email string, passwordFromStdin bool) (string, error) {
	if email != "" {
		return email, nil
	}
	if _, tty := a.terminal(); tty && !passwordFromStdin {
		e, err := a.promptLine("Email")
		if err == nil && strings.TrimSpace(e) == "" {
			return "", failf("no email given")
		}
		return strings.TrimSpace(e), err
	}
	return "", usageError(cmd, "--email is required (or use --web)")
}

// readPassword reads the password: one line of stdin with --password-stdin,
// or, on a terminal, typed at a prompt without echo.
func (a *app) readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if !fromStdin {
		if fd, tty := a.terminal(); tty {
			return a.promptPassword(fd, "Password")
		}
		return "", usageError(cmd, "give the password on stdin with --password-stdin (or use --web); on a terminal, caveat asks for it")
	}
	if a.stdinUse != "" {
		return "", failf("stdin is already used for %s; it cannot also give the password", a.stdinUse)
	}
	a.stdinUse = "the password"
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", failf("reading the password from stdin: nothing there")
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", failf("the password on stdin is empty")
	}
	return pw, nil
}

func (a *app) signupCommand() *cobra.Command {
	var (
		f       onlineFlags
		email   string
		org     string
		invite  string
		pwd     bool
		noLogin bool
	)
	c := &cobra.Command{
		Use:   "signup [--email EMAIL] [--password-stdin] [--org SLUG | --invite CODE] [--api URL]",
		Short: "Create an account (and log in)",
		Long: `Create an account on the server, then log in. On a new server, the first
account becomes the admin of a new organization (--org names it).

With --invite, the account is the one an invitation ('caveat orgs invite')
was sent to, and joins its organization; this works even when the server
has closed open signup. The code may also be given as the invitation's link.`,
		Example: `  echo "$PASSWORD" | caveat auth signup --email ada@example.com --password-stdin --org acme
  echo "$PASSWORD" | caveat auth signup --email bob@example.com --password-stdin --invite cvi1_…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			email, err := a.readEmail(cmd, email, pwd)
			if err != nil {
				return err
			}
			if invite != "" && org != "" {
				return usageError(cmd, "--invite joins the invitation's organization: leave out --org")
			}
			pw, err := a.readPassword(cmd, pwd)
			if err != nil {
				return err
			}
			cl, cfg, err := a.anonymous()
			if err != nil {
				return err
			}
			ctx, cancel := a.ctx()
			defer cancel()
			var res client.SignupResult
			if invite != "" {
				res, err = cl.SignupInvited(ctx, email, pw, invite)
			} else {
				res, err = cl.Signup(ctx, email, pw, org)
			}
			if err != nil {
				return apiErr("signup", err)
			}
			a.info("signed up as %s (user %d)", res.User.Email, res.User.ID)
			if res.Organization != nil {
				a.info("%s of organization %s (id %d)", res.Organization.Role, res.Organization.Slug, res.Organization.ID)
			}
			if noLogin {
				return nil
			}
			return a.finishLogin(ctx, cl, cfg, func() (client.Session, error) { return cl.Login(ctx, email, pw) })
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&email, "email", "", "email address")
	c.Flags().StringVar(&org, "org", "", "slug of an organization to create with the account")
	c.Flags().StringVar(&invite, "invite", "", "an invitation's code (or link): join its organization")
	c.Flags().BoolVar(&pwd, "password-stdin", false, "read the password from stdin")
	c.Flags().BoolVar(&noLogin, "no-login", false, "do not log in after signing up")
	return c
}

func (a *app) loginCommand() *cobra.Command {
	var (
		f     onlineFlags
		email string
		pwd   bool
		web   bool
	)
	c := &cobra.Command{
		Use:   "login [--email EMAIL] [--password-stdin | --web] [--api URL]",
		Short: "Log in and save the session",
		Long: `Log in with a password, or in a browser with --web, and save the session in
the config file.

On a terminal, login asks for the email (unless --email) and the password
(without echo); in scripts give --email and the password on stdin with
--password-stdin. --web opens the login page in your browser when there is
one ($BROWSER, or the system's; CAVEAT_NO_BROWSER=1 never opens one), prints
its URL on stderr, and waits until you have logged in there.`,
		Example: `  echo "$PASSWORD" | caveat auth login --email ada@example.com --password-stdin
  caveat auth login --web --api https://caveat.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, cfg, err := a.anonymous()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if web {
				if email != "" || pwd {
					return usageError(cmd, "--web logs in in the browser: give neither --email nor --password-stdin")
				}
				return a.finishLogin(ctx, cl, cfg, func() (client.Session, error) {
					return cl.LoginWeb(ctx, func(url string) error {
						if a.openBrowser(url) {
							a.info("opened the login page in your browser; if it did not open, visit:\n  %s", url)
						} else {
							a.info("open this URL in a browser to log in:\n  %s", url)
						}
						a.info("waiting for the browser…")
						return nil
					}, time.Second)
				})
			}
			email, err := a.readEmail(cmd, email, pwd)
			if err != nil {
				return err
			}
			pw, err := a.readPassword(cmd, pwd)
			if err != nil {
				return err
			}
			return a.finishLogin(ctx, cl, cfg, func() (client.Session, error) { return cl.Login(ctx, email, pw) })
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&email, "email", "", "email address")
	c.Flags().BoolVar(&pwd, "password-stdin", false, "read the password from stdin")
	c.Flags().BoolVar(&web, "web", false, "log in in a browser")
	return c
}

// finishLogin runs the login, fetches the session's first discharge and
// saves the session.
func (a *app) finishLogin(ctx context.Context, cl *client.Client, cfg savedConfig, login func() (client.Session, error)) error {
	s, err := login()
	if err != nil {
		return apiErr("login", err)
	}
	tr := client.NewTransport(cl.BaseURL, s.Token, s.Secret)
	bundle, err := tr.Renew(ctx, false)
	if err != nil {
		return failf("login: fetching the login discharge: %v", err)
	}
	cfg.APIURL, cfg.Token, cfg.SessionSecret, cfg.Email = cl.BaseURL, bundle, s.Secret, s.User.Email
	if err := a.saveConfig(cfg); err != nil {
		return err
	}
	a.info("logged in to %s as %s; session until %s", cl.BaseURL, s.User.Email, s.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

func (a *app) logoutCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "logout [--api URL]",
		Short: "End the session and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, cfg, err := a.anonymous()
			if err != nil {
				return err
			}
			if cfg.SessionSecret == "" {
				return failf("not logged in")
			}
			ctx, cancel := a.ctx()
			defer cancel()
			serverErr := cl.Logout(ctx, cfg.SessionSecret)
			cfg.Token, cfg.SessionSecret, cfg.Email = "", "", ""
			if err := a.saveConfig(cfg); err != nil {
				return err
			}
			if serverErr != nil {
				return apiErr("logout (the session was forgotten here, but the server did not confirm its end)", serverErr)
			}
			a.info("logged out")
			return nil
		},
	}
	f.register(c, false)
	return c
}

func (a *app) whoamiCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "whoami [-t TOKEN] [--api URL] [--json]",
		Short: "Show the logged-in account, or whose a token is",
		Long: `Show the logged-in account: the email, the server, the organizations and the
session's end. With a token (-t, or CAVEAT_TOKEN), show whose it is instead:
its id, kind (a named token or a session), user, organization and expiry, as
the server sees it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("token") || a.env("CAVEAT_TOKEN") != "" {
				return a.whoamiToken(cmd, &f)
			}
			cl, cfg, err := a.anonymous()
			if err != nil {
				return err
			}
			if cfg.SessionSecret == "" {
				return failf("not logged in").withHint("run 'caveat auth login'")
			}
			ctx, cancel := a.ctx()
			defer cancel()
			w, err := cl.WhoAmI(ctx, cfg.SessionSecret)
			if err != nil {
				return apiErr("whoami", err)
			}
			if f.json {
				return a.printJSON(w)
			}
			var orgs []string
			for _, o := range w.Organizations {
				orgs = append(orgs, fmt.Sprintf("%s (%s)", o.Slug, o.Role))
			}
			return a.output(fmt.Sprintf("%s (user %d)\nserver: %s\norganizations: %s\nsession until %s\n", w.User.Email, w.User.ID,
				cl.BaseURL, strings.Join(orgs, ", "), w.Session.ExpiresAt.UTC().Format(time.RFC3339)))
		},
	}
	f.registerAuthenticated(c, true)
	return c
}

// whoamiToken describes the token of -t or CAVEAT_TOKEN, as the server
// authenticates it.
func (a *app) whoamiToken(cmd *cobra.Command, f *onlineFlags) error {
	cl, src, err := a.authenticatedBy(cmd, loginQuery(cmd, f))
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	v, err := cl.Authenticate(ctx, src.header())
	if err != nil {
		return apiErr("whoami", err)
	}
	if f.json {
		return a.printJSON(v)
	}
	kind := "named token"
	if v.Kind == "session" {
		kind = "session"
	}
	var orgs []string
	for _, o := range v.Memberships {
		orgs = append(orgs, fmt.Sprintf("%s (%s)", o.Slug, o.Role))
	}
	exp := "never"
	if v.ExpiresAt != nil {
		exp = v.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return a.output(fmt.Sprintf("%s %s of user %d\nserver: %s\norganizations: %s\nexpires %s\n",
		kind, v.TokenID, v.UserID, cl.BaseURL, strings.Join(orgs, ", "), exp))
}
