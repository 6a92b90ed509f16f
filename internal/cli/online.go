package cli

// The online commands (auth, orgs, apps, tokens create|list|revoke) talk to a
// caveat server. Its URL comes from --api, else CAVEAT_API_URL, else the
// config file's "api_url", else http://127.0.0.1:8080.
//
// The config file ($CAVEAT_CONFIG_DIR/config.json, default
// ~/.config/caveat/config.json) is written with mode 0600 in a 0700
// directory, atomically (a temporary file renamed over it). After a login it
// holds:
//
//	{"api_url": "…", "token": "FlyV1 fm2_…,fm2_…", "session_secret": "cvs1_…", "email": "…"}
//
// "token" is the session bundle: the session token and its current login
// discharge. The client renews the discharge with the session secret before
// it expires and saves the renewed bundle back, so the offline commands,
// which read "token" last, see a current bundle too.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

const defaultAPIURL = "http://127.0.0.1:8080"

// savedConfig is the whole config file.
type savedConfig struct {
	APIURL        string `json:"api_url,omitempty"`
	Token         string `json:"token,omitempty"`
	SessionSecret string `json:"session_secret,omitempty"`
	Email         string `json:"email,omitempty"`
}

// loadConfig reads the config file; a missing file is an empty config.
func (a *app) loadConfig() (savedConfig, string, error) {
	var cfg savedConfig
	path := a.configPath()
	if path == "" {
		return cfg, "", nil
	}
	b, err := readFileLimited(path, maxConfigInput)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, failf("reading config file: %v", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, path, failf("config file %s is not valid JSON: %v", path, jsonSyntaxOnly(err)).
			withHint("move it away and log in again")
	}
	return cfg, path, nil
}

// saveConfig writes the config file atomically with mode 0600.
func (a *app) saveConfig(cfg savedConfig) error {
	path := a.configPath()
	if path == "" {
		return failf("cannot save the login: neither CAVEAT_CONFIG_DIR nor HOME is set")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failf("config directory: %v", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return failf("config: %v", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return failf("writing config file: %v", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return failf("writing config file: %v", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return failf("writing config file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return failf("writing config file: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return failf("writing config file: %v", err)
	}
	return nil
}

// onlineFlags are the flags of the online commands. --api is the root's
// persistent flag (app.api), so that it may come before or after the
// subcommand; -t/--token is added by registerAuthenticated to the commands
// that send a token.
type onlineFlags struct {
	json  bool
	token string
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
	c.Flags().StringVarP(&f.token, "token", "t", "", "token to send instead of CAVEAT_TOKEN or the saved login")
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
func (a *app) anonymous(f *onlineFlags) (*client.Client, savedConfig, error) {
	cfg, _, err := a.loadConfig()
	if err != nil {
		return nil, cfg, err
	}
	base, err := a.apiURL(cfg)
	if err != nil {
		return nil, cfg, err
	}
	return client.New(base, &http.Client{Timeout: time.Minute}), cfg, nil
}

// authenticated returns a client that sends the caller's token, found as
// the offline commands find theirs, arguments aside: token (a command's
// own source, when not empty), -t, CAVEAT_TOKEN, then the config file's
// session. It says on stderr which source it used, and refuses a token
// that does not parse, naming its source. A session's discharges are
// renewed and saved.
func (a *app) authenticated(f *onlineFlags, token string) (*client.Client, savedConfig, error) {
	return a.authenticatedWith(f, token, true)
}

// authenticatedFromConfig is authenticated with the config file's login
// only, for a command whose CAVEAT_TOKEN names something else (the branch
// that 'tokens revoke --branch' revokes).
func (a *app) authenticatedFromConfig(f *onlineFlags) (*client.Client, savedConfig, error) {
	return a.authenticatedWith(f, "", false)
}

func (a *app) authenticatedWith(f *onlineFlags, token string, useEnv bool) (*client.Client, savedConfig, error) {
	cfg, _, err := a.loadConfig()
	if err != nil {
		return nil, cfg, err
	}
	base, err := a.apiURL(cfg)
	if err != nil {
		return nil, cfg, err
	}
	if token == "" {
		token = f.token
	}
	bundle, secret, from := token, "", "-t"
	if bundle == "" && useEnv {
		bundle, from = a.env("CAVEAT_TOKEN"), "CAVEAT_TOKEN"
	}
	if bundle == "" {
		bundle, secret, from = cfg.Token, cfg.SessionSecret, "the saved login"
		if cfg.Email != "" {
			from += " (" + cfg.Email + ")"
		}
	}
	if bundle == "" && !useEnv {
		return nil, cfg, failf("not logged in (CAVEAT_TOKEN holds the branch to revoke, not a login)").
			withHint("run 'caveat auth login', or add --self to revoke the branch with itself as the credential")
	}
	if bundle == "" {
		return nil, cfg, failf("not logged in, and no token given").
			withHint("run 'caveat auth login', or give a token with -t or CAVEAT_TOKEN")
	}
	if _, err := caveat.ParseBundle(bundle); err != nil {
		e := failf("the token from %s is not a valid token (%d characters): %v", from, len(bundle), err)
		if secret != "" {
			return nil, cfg, e.withHint("log in again with 'caveat auth login'")
		}
		return nil, cfg, e.withHint("if it was pasted, it may be cut: copy it again in full ('caveat tokens debug' shows what is wrong)")
	}
	a.info("token from %s", from)
	tr := client.NewTransport(base, bundle, secret)
	tr.Base = http.DefaultTransport
	if secret != "" {
		tr.OnRenew = func(b string) {
			cfg.Token = b
			if err := a.saveConfig(cfg); err != nil {
				a.info("warning: could not save the renewed login: %v", err)
			}
		}
	}
	return client.New(base, &http.Client{Transport: tr, Timeout: time.Minute}), cfg, nil
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
