package cli

// The online commands (auth, orgs, apps, machines, tokens
// create|list|revoke) talk to a caveat server. Its URL comes from --api,
// else CAVEAT_API_URL, else the config file's "api_url", else
// http://127.0.0.1:8080. Those that send a token find it as the offline
// commands do (source.go), arguments aside: -t, CAVEAT_TOKEN, then the saved
// login, whose discharge is renewed and saved back (config.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

const defaultAPIURL = "http://127.0.0.1:8080"

// onlineFlags are the flags of the online commands. --api is the root's
// persistent flag (app.api), so that it may come before or after the
// subcommand; -t/--token is added by registerAuthenticated to the commands
// that send a token.
type onlineFlags struct {
	json  bool
	token string
	// sendsToken is set by registerAuthenticated: -t is this command's
	// credential.
	sendsToken bool
}

// onlineAnnotation marks the commands that talk to a server: only they
// take --api.
const onlineAnnotation = "caveat-online"

func (f *onlineFlags) register(c *cobra.Command, withJSON bool) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[onlineAnnotation] = "yes"
	if withJSON {
		c.Flags().BoolVar(&f.json, "json", false, "print JSON instead of a table")
	}
}

// registerAuthenticated registers the flags of a command that sends a
// token: register's, and -t/--token.
func (f *onlineFlags) registerAuthenticated(c *cobra.Command, withJSON bool) {
	f.register(c, withJSON)
	f.sendsToken = true
	c.Flags().StringVarP(&f.token, "token", "t", "", `token to send instead of CAVEAT_TOKEN or the saved login ("-" reads stdin)`)
}

// apiURL resolves the server URL: --api, CAVEAT_API_URL, the config file,
// the default. A URL without a scheme is taken as http:// for this machine
// (localhost, 127.0.0.1, [::1]) and refused otherwise, with the fix; a
// token's location (…/v1, …/aaa/v1) is taken as the server's URL.
func (a *app) apiURL(cfg savedConfig) (string, error) {
	for _, src := range []struct{ where, u string }{{"--api", a.api}, {"CAVEAT_API_URL", a.env("CAVEAT_API_URL")}, {"the config file's api_url", cfg.APIURL}} {
		if src.u != "" {
			return normalizeAPI(src.where, src.u)
		}
	}
	return defaultAPIURL, nil
}

func normalizeAPI(where, raw string) (string, error) {
	u := strings.TrimSpace(raw)
	if !strings.Contains(u, "://") {
		host := u
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", failf("%s %q has no scheme", where, raw).
				withHint("write https://%s (or http://%s for a server without TLS)", u, u)
		}
		u = "http://" + u
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", failf("%s %q is not a server URL", where, raw).
			withHint("write it like https://caveat.example.com or http://127.0.0.1:8080")
	}
	u = strings.TrimRight(u, "/")
	// A token's location names the server too.
	for _, suffix := range []string{"/aaa/v1", "/v1"} {
		u = strings.TrimSuffix(u, suffix)
	}
	return u, nil
}

// anonymous returns a client without credentials.
func (a *app) anonymous() (*client.Client, savedConfig, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, cfg, err
	}
	base, err := a.apiURL(cfg)
	if err != nil {
		return nil, cfg, err
	}
	return client.New(base, &http.Client{Timeout: time.Minute}), cfg, nil
}

// onlineRun is the work of an online command that sends a token: ctx
// bounds it, cl sends the token.
type onlineRun func(ctx context.Context, cl *client.Client, args []string) error

// online is the RunE of an online command that sends a token: it resolves
// the token (-t, CAVEAT_TOKEN, the saved login), says on stderr which
// source it used, and runs run with a client that sends it, within a
// context of two minutes. Usage checks belong in the command's PreRunE,
// which runs before: they come before any token is read.
func (a *app) online(f *onlineFlags, run onlineRun) func(*cobra.Command, []string) error {
	return a.onlineWith(f, a.ctx, run)
}

// onlineList is online for a command that lists pages: the context has no
// deadline for the whole list (see listCtx).
func (a *app) onlineList(f *onlineFlags, run onlineRun) func(*cobra.Command, []string) error {
	return a.onlineWith(f, a.listCtx, run)
}

func (a *app) onlineWith(f *onlineFlags, newCtx func() (context.Context, context.CancelFunc), run onlineRun) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cl, err := a.authenticated(cmd, f)
		if err != nil {
			return err
		}
		ctx, cancel := newCtx()
		defer cancel()
		return run(ctx, cl, args)
	}
}

// loginQuery is the token query of an online command: -t when the command
// sends it, CAVEAT_TOKEN, then the saved login.
func loginQuery(cmd *cobra.Command, f *onlineFlags) tokenQuery {
	if !f.sendsToken {
		return tokenQuery{}
	}
	return tokenQuery{flag: f.token, flagSet: cmd.Flags().Changed("token")}
}

// authenticated returns a client that sends the command's token (see
// loginQuery).
func (a *app) authenticated(cmd *cobra.Command, f *onlineFlags) (*client.Client, error) {
	cl, _, err := a.authenticatedBy(cmd, loginQuery(cmd, f))
	return cl, err
}

// authenticatedBy returns a client that sends the token q resolves, and
// that token. The server's URL is checked first, so that a wrong --api is
// reported before any token is read.
func (a *app) authenticatedBy(cmd *cobra.Command, q tokenQuery) (*client.Client, *tokenSource, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	base, err := a.apiURL(cfg)
	if err != nil {
		return nil, nil, err
	}
	src, err := a.resolveToken(cmd, q)
	if err != nil {
		return nil, nil, err
	}
	return a.clientFor(base, src), src, nil
}

// clientFor returns a client of the server at base that sends src's token.
// The saved login's discharge is renewed with its secret, and the renewed
// bundle saved.
func (a *app) clientFor(base string, src *tokenSource) *client.Client {
	tr := client.NewTransport(base, src.header(), src.secret)
	tr.Base = http.DefaultTransport
	if src.secret != "" {
		tr.OnRenew = func(b string) {
			cfg, err := a.loadConfig()
			if err == nil {
				cfg.Token = b
				err = a.saveConfig(cfg)
			}
			if err != nil {
				a.info("warning: could not save the renewed login: %v", err)
			}
		}
	}
	return client.New(base, &http.Client{Transport: tr, Timeout: time.Minute})
}

// apiErr turns a client error into the CLI's error, with hints for the
// statuses a user can act on.
func apiErr(what string, err error) error {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		var ce *cliError
		if errors.As(err, &ce) {
			return ce
		}
		var answer *client.AnswerError
		if errors.As(err, &answer) {
			// The server answered: it runs, but its answer cannot be used.
			e := failf("%s: %v", what, err)
			switch answer.Kind {
			case client.AnswerCut:
				return e.withHint("the connection broke while the answer was read: try again")
			case client.AnswerTooLarge:
				return e.withHint("a caveat server answers lists a page at a time: check that --api (or CAVEAT_API_URL) is one, of this client's version")
			}
			return e.withHint("check that --api (or CAVEAT_API_URL) is the URL of a caveat server, not a proxy's or another service's")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			return failf("%s: %v", what, err).withHint("is the server running? set its URL with --api or CAVEAT_API_URL")
		}
		return failf("%s: %v", what, err)
	}
	e := failf("%s: %s", what, ae.Message)
	msg := strings.ToLower(ae.Message)
	switch ae.Status {
	case http.StatusUnauthorized:
		switch {
		case strings.Contains(msg, "invalid email or password"):
			e.withHint("check the email and the password ('caveat auth signup' creates an account)")
		case strings.Contains(msg, "session expired") || strings.Contains(msg, "session ended") || strings.Contains(msg, "unknown session"):
			e.withHint("the login session is over: log in again with 'caveat auth login'")
		case strings.Contains(msg, "revoked"):
			e.withHint("this token was revoked: use another one ('caveat tokens create'), or drop -t / unset CAVEAT_TOKEN to use your login")
		case strings.Contains(msg, "expired"):
			e.withHint("this token has expired: use another one, or log in again with 'caveat auth login'")
		default:
			e.withHint("log in again with 'caveat auth login', or check the token you gave")
		}
	case http.StatusNotFound:
		if strings.HasPrefix(msg, "no app ") {
			e.withHint("'caveat apps list' shows the apps you can see")
		}
	case http.StatusTooManyRequests:
		if ae.RetryAfter > 0 {
			e.withHint("too many attempts: try again in %s", ae.RetryAfter)
		}
	}
	return e
}

// ctx is the context of one online command.
func (a *app) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

// listCtx is the context of a list command: no deadline for the whole
// list, which may take many pages; each request has the HTTP client's.
func (a *app) listCtx() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return failf("%v", err)
	}
	return a.output(string(b) + "\n")
}

// table prints rows with aligned columns on stdout.
func (a *app) table(header []string, rows [][]string) error {
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", widths[i], c)
			}
		}
		b.WriteString("\n")
	}
	return a.output(b.String())
}
