package cli

// Where a command's token comes from, for the offline commands and the
// online ones alike (resolveToken). The order is fixed and documented: the
// TOKEN argument ("-" for stdin) of the commands that take one, -t/--token
// ("-" for stdin), CAVEAT_TOKEN, then the config file (the saved login).
// The first source that is given is the only one used: a token that is
// empty or does not parse is an error naming its source, never a reason to
// try the next one (flyctl's "tokens debug SOMETOKEN" silently decoded the
// config file's token instead, which is the bug this design exists to
// avoid). Every command says on stderr which source it used.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/spf13/cobra"
)

// maxTokenInput bounds a token read from stdin.
const maxTokenInput = caveat.MaxHeaderSize + 1024

// tokenSource is a token's text and where it came from.
type tokenSource struct {
	// label completes "caveat: token from …".
	label string
	// subject names the source in errors: "the TOKEN argument".
	subject string
	text    string
	// stdin is set when the token was read from stdin.
	stdin bool
	// secret is the session secret when the token is the saved login's,
	// which renews its discharge.
	secret string
	// bundle is the parsed token.
	bundle *caveat.Bundle
}

// header is the token as sent: its text without surrounding space.
func (s *tokenSource) header() string { return strings.TrimSpace(s.text) }

// tokenFlag registers -t/--token on cmd and returns where its value goes.
func tokenFlag(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("token", "t", "", `the token ("FlyV1 fm2_…"; "-" reads stdin)`)
}

// tokenQuery says where one command looks for a token.
type tokenQuery struct {
	// what names the token in messages: "token" unless set ("branch
	// token").
	what string
	// argument is set for a command that takes the token as its
	// positional argument; args are then its arguments (at most one).
	argument bool
	args     []string
	// flag is the -t/--token value, used when flagSet: a -t that is given
	// empty is an error, not an absent -t.
	flag    string
	flagSet bool
	// noEnv and noConfig leave out CAVEAT_TOKEN and the config file: for
	// a token that is not the caller's login (the branch that 'tokens
	// revoke --branch' revokes), or a login when CAVEAT_TOKEN holds that.
	noEnv, noConfig bool
	// none, when set, is the error when no source gives a token.
	none func() *cliError
}

func (q *tokenQuery) noun() string {
	if q.what == "" {
		return "token"
	}
	return q.what
}

// noToken is the error when no source gives a token; why, when not
// empty, says what the config file lacked.
func (q *tokenQuery) noToken(why string) *cliError {
	if q.none != nil {
		return q.none()
	}
	e := failf("no token: give one with -t or in CAVEAT_TOKEN, or log in")
	if q.argument {
		e = failf("no token: give one as an argument (\"-\" for stdin), with -t, or in CAVEAT_TOKEN")
	}
	if why != "" {
		e.withHint("%s", why)
	}
	if !q.argument {
		e.withHint("run 'caveat auth login' to log in")
	}
	return e
}

// offlineToken is the query of an offline command: the TOKEN argument,
// -t, CAVEAT_TOKEN, the config file.
func offlineToken(cmd *cobra.Command, args []string, flagValue string) tokenQuery {
	return tokenQuery{argument: true, args: args, flag: flagValue, flagSet: cmd.Flags().Changed("token")}
}

// resolveToken finds a command's token in the sources q allows, says on
// stderr which one it used, and parses it.
func (a *app) resolveToken(cmd *cobra.Command, q tokenQuery) (*tokenSource, error) {
	what := q.noun()
	var src *tokenSource
	switch {
	case len(q.args) > 0 && q.flagSet:
		return nil, usageError(cmd, "a %s was given both as an argument and with -t: give only one", what)
	case len(q.args) > 0 && q.args[0] == "-":
		src = &tokenSource{label: "stdin", subject: "the " + what + " read from stdin", stdin: true}
	case len(q.args) > 0:
		src = &tokenSource{label: "argument", subject: "the TOKEN argument", text: q.args[0]}
	case q.flagSet && q.flag == "-":
		src = &tokenSource{label: "stdin", subject: "the " + what + " read from stdin (-t -)", stdin: true}
	case q.flagSet:
		src = &tokenSource{label: "-t", subject: "the -t value", text: q.flag}
	case !q.noEnv && a.env("CAVEAT_TOKEN") != "":
		src = &tokenSource{label: "CAVEAT_TOKEN", subject: "the " + what + " from CAVEAT_TOKEN", text: a.env("CAVEAT_TOKEN")}
	case !q.noConfig:
		var err error
		if src, err = a.configToken(&q); err != nil {
			return nil, err
		}
	default:
		return nil, q.noToken("")
	}
	a.info("%s from %s", what, src.label)
	if src.stdin {
		b, err := a.readStdin("the "+what, maxTokenInput)
		if err != nil {
			return nil, err
		}
		src.text = string(b)
	}
	if src.header() == "" {
		return nil, failf("%s is empty", src.subject)
	}
	b, err := parseBundle(src)
	if err != nil {
		return nil, err
	}
	src.bundle = b
	return src, nil
}

// configToken returns the config file's token, the last source; its
// absence is the "no token" error, which lists every source. A login
// saved by 'caveat auth login' is named as such, with its account.
func (a *app) configToken(q *tokenQuery) (*tokenSource, error) {
	cfg, err := a.loadConfig()
	switch {
	case err != nil:
		return nil, err
	case cfg.path == "":
		return nil, q.noToken("no config file either: neither CAVEAT_CONFIG_DIR nor HOME is set")
	case !cfg.found:
		return nil, q.noToken(fmt.Sprintf("no config file either: %s does not exist", cfg.path))
	case strings.TrimSpace(cfg.Token) == "":
		return nil, q.noToken(fmt.Sprintf(`the config file %s has no "token"`, cfg.path))
	}
	src := &tokenSource{label: "config file " + cfg.path, subject: "the token in config file " + cfg.path, text: cfg.Token}
	if cfg.SessionSecret != "" {
		src.label, src.secret = "the saved login", cfg.SessionSecret
		if cfg.Email != "" {
			src.label += " (" + cfg.Email + ")"
		}
	}
	return src, nil
}

// readStdin reads all of stdin for purpose ("the token", "the caveats"),
// refusing a second use: stdin can be read only once.
func (a *app) readStdin(purpose string, limit int64) ([]byte, error) {
	if a.stdinUse != "" {
		return nil, failf("stdin is already used for %s; it cannot also give %s", a.stdinUse, purpose)
	}
	a.stdinUse = purpose
	if f, ok := a.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			a.info("reading %s from the terminal (end with Ctrl-D)", purpose)
		}
	}
	b, err := io.ReadAll(io.LimitReader(a.stdin, limit+1))
	if err != nil {
		return nil, failf("reading %s from stdin: %v", purpose, err)
	}
	if int64(len(b)) > limit {
		return nil, failf("%s on stdin is too large (over %d bytes)", purpose, limit)
	}
	return b, nil
}

// readFileLimited reads a file of at most limit bytes.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is too large (over %d bytes)", path, limit)
	}
	return b, nil
}

// loadBundle resolves an offline command's token (TOKEN argument, -t,
// CAVEAT_TOKEN, config file) and parses it.
func (a *app) loadBundle(cmd *cobra.Command, args []string, flagValue string) (*caveat.Bundle, *tokenSource, error) {
	src, err := a.resolveToken(cmd, offlineToken(cmd, args, flagValue))
	if err != nil {
		return nil, nil, err
	}
	return src.bundle, src, nil
}

// parseBundle parses a token source, explaining failures without quoting
// the token.
func parseBundle(src *tokenSource) (*caveat.Bundle, error) {
	text := strings.TrimSpace(src.text)
	b, err := caveat.ParseBundle(text)
	if err == nil {
		return b, nil
	}
	e := failf("%s is not a valid token (%d characters): %v", src.subject, len(text), err)
	if src.secret != "" {
		// The saved login was damaged in the file, not pasted.
		return nil, e.withHint("log in again with 'caveat auth login'")
	}
	if w, _, ok := strings.Cut(text, " "); ok && !strings.EqualFold(w, "FlyV1") && !strings.EqualFold(w, "Bearer") &&
		!strings.Contains(w, "_") && len(w) <= 16 {
		e.withHint("the scheme %q is not accepted: use \"FlyV1 fm2_…\", \"Bearer fm2_…\" or the bare fm2_… tokens", w)
	} else if !looksLikeTokens(text) {
		e.withHint("a token looks like \"FlyV1 fm2_…\" or \"fm2_…\", with any discharges after commas")
	} else if errors.Is(err, caveat.ErrMalformed) {
		e.withHint("if it was pasted, it may be truncated or mangled: copy it again in full")
	}
	return nil, e
}

// looksLikeTokens reports whether every entry of a header has a token
// prefix, so that a decoding failure is about a damaged token rather than
// something else given in its place.
func looksLikeTokens(header string) bool {
	entries := strings.Split(caveat.StripScheme(header), ",")
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.HasPrefix(e, "fm2_") && !strings.HasPrefix(e, "fm1r_") && !strings.HasPrefix(e, "fm1a_") && !strings.HasPrefix(e, "fo1_") {
			return false
		}
	}
	return true
}
