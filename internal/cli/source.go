package cli

// Where a command's token comes from. The order is fixed and documented:
// the TOKEN argument ("-" for stdin), -t/--token, CAVEAT_TOKEN, the config
// file. The first source that is given is the only one used: a token that
// does not parse is an error naming its source, never a reason to try the
// next one (flyctl's "tokens debug SOMETOKEN" silently decoded the config
// file's token instead, which is the bug this design exists to avoid).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/spf13/cobra"
)

// Limits on what is read from stdin and files.
const (
	maxTokenInput  = caveat.MaxHeaderSize + 1024
	maxConfigInput = 1 << 20
)

// tokenSource is a token's text and where it came from.
type tokenSource struct {
	// label completes "caveat: token from …".
	label string
	// subject names the source in errors: "the TOKEN argument".
	subject string
	text    string
	// stdin is set when the token was read from stdin.
	stdin bool
}

// tokenFlag registers -t/--token on cmd and returns where its value goes.
func tokenFlag(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("token", "t", "", `the token ("FlyV1 fm2_…"; "-" reads stdin)`)
}

// resolveToken finds the token for a command from its positional
// arguments (at most one, the TOKEN), its -t flag and the environment, and
// says on stderr which source it used.
func (a *app) resolveToken(cmd *cobra.Command, args []string, flagValue string) (*tokenSource, error) {
	flagSet := cmd.Flags().Changed("token")
	var src *tokenSource
	switch {
	case len(args) > 0 && flagSet:
		return nil, usageError(cmd, "a token was given both as an argument and with -t: give only one")
	case len(args) > 0:
		if args[0] == "-" {
			src = &tokenSource{label: "stdin", subject: "the token read from stdin", stdin: true}
		} else {
			src = &tokenSource{label: "argument", subject: "the TOKEN argument", text: args[0]}
		}
	case flagSet:
		if flagValue == "-" {
			src = &tokenSource{label: "stdin", subject: "the token read from stdin (-t -)", stdin: true}
		} else {
			src = &tokenSource{label: "-t", subject: "the -t value", text: flagValue}
		}
	case a.env("CAVEAT_TOKEN") != "":
		src = &tokenSource{label: "CAVEAT_TOKEN", subject: "CAVEAT_TOKEN", text: a.env("CAVEAT_TOKEN")}
	default:
		var err error
		if src, err = a.configToken(); err != nil {
			return nil, err
		}
	}
	a.info("token from %s", src.label)
	if src.stdin {
		b, err := a.readStdin("the token", maxTokenInput)
		if err != nil {
			return nil, err
		}
		src.text = string(b)
	}
	if strings.TrimSpace(src.text) == "" {
		return nil, failf("%s is empty", src.subject)
	}
	return src, nil
}

// configPath returns the config file's path, or "" when neither
// CAVEAT_CONFIG_DIR nor HOME is set.
func (a *app) configPath() string {
	if dir := a.env("CAVEAT_CONFIG_DIR"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	if home := a.env("HOME"); home != "" {
		return filepath.Join(home, ".config", "caveat", "config.json")
	}
	return ""
}

// configFile is the part of the config file the CLI reads today. Other
// fields are allowed, for later commands.
type configFile struct {
	Token string `json:"token"`
}

// configToken returns the config file's token, the last source; its
// absence is the "no token" error, which lists every source.
func (a *app) configToken() (*tokenSource, error) {
	noToken := func(why string) error {
		return failf("no token: give one as an argument (\"-\" for stdin), with -t, or in CAVEAT_TOKEN").
			withHint("%s", why)
	}
	path := a.configPath()
	if path == "" {
		return nil, noToken("no config file either: neither CAVEAT_CONFIG_DIR nor HOME is set")
	}
	b, err := readFileLimited(path, maxConfigInput)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noToken(fmt.Sprintf("no config file either: %s does not exist", path))
	}
	if err != nil {
		return nil, failf("reading config file: %v", err)
	}
	var cfg configFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, failf("config file %s is not valid JSON: %v", path, jsonSyntaxOnly(err)).
			withHint(`it should hold {"token": "FlyV1 fm2_…"}`)
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, noToken(fmt.Sprintf(`the config file %s has no "token"`, path))
	}
	return &tokenSource{label: "config file " + path, subject: "the token in config file " + path, text: cfg.Token}, nil
}

// jsonSyntaxOnly drops anything from a JSON error that could quote the
// input (the config file holds a token).
func jsonSyntaxOnly(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q holds a JSON %s", te.Field, te.Value)
	}
	return "cannot decode"
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

// loadBundle resolves the command's token and parses it as a bundle.
func (a *app) loadBundle(cmd *cobra.Command, args []string, flagValue string) (*caveat.Bundle, *tokenSource, error) {
	src, err := a.resolveToken(cmd, args, flagValue)
	if err != nil {
		return nil, nil, err
	}
	b, err := parseBundle(src)
	if err != nil {
		return nil, nil, err
	}
	return b, src, nil
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
