// Package cli implements the caveat command line.
//
// # Entry point
//
// Main runs one invocation and returns its exit status; cmd/caveat is a thin
// wrapper around it. Main never calls os.Exit, never panics and reads its
// environment only through the function it is given, so that tests run it
// in-process.
//
// # Conventions
//
//   - stdout carries data only (JSON, a header, a ticket). Everything meant
//     for people goes to stderr: "caveat: error: …", "caveat: hint: …",
//     "caveat: token from …" and summaries.
//   - Exit status 0 on success, 1 on any failure, 2 on a usage error (bad
//     flags, missing or extra arguments).
//   - "-" means stdin. An argument is never silently ignored: a positional
//     token that does not parse is an error, not a reason to use another
//     source.
//   - Tokens, keys and secrets never appear in errors or hints.
//
// # Time
//
// Commands that need the current time (expiry, ValidityWindow) read it from
// CAVEAT_NOW (RFC 3339) when it is set, and from the clock otherwise.
// CAVEAT_NOW is a testing aid.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Main runs the caveat command with args (the command-line arguments after
// the program name), the given standard streams and environment lookup
// (nil means an empty environment), and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) (code int) {
	if env == nil {
		env = func(string) string { return "" }
	}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	defer func() {
		if r := recover(); r != nil {
			a.printErr(&cliError{code: exitFailure, msg: fmt.Sprintf("internal error: %v", r),
				hints: []string{"this is a bug in caveat; please report it with the command you ran (without any token)"}})
			code = exitFailure
		}
	}()

	root := a.rootCommand()
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		// Anything cobra itself reports (unknown flag, missing required
		// flag) is a usage error.
		ce = usageError(cmd, "%s", err.Error())
	}
	a.printErr(ce)
	return ce.code
}

// app holds the streams and environment of one invocation.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string

	// stdinUse says what stdin has been read for, so that it is read at
	// most once and a second use is an error rather than an empty read.
	stdinUse string

	// api is the root's persistent --api flag.
	api string

	// cfg is the config file once read (loadConfig).
	cfg *savedConfig
}

// now returns the current time: CAVEAT_NOW when set, else the clock.
func (a *app) now() (time.Time, error) {
	s := a.env("CAVEAT_NOW")
	if s == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, failf("CAVEAT_NOW is not an RFC 3339 time (like 2025-01-02T15:04:05Z): %q", s).
			withHint("unset CAVEAT_NOW to use the clock")
	}
	return t, nil
}

// info prints a "caveat: …" message for people on stderr.
func (a *app) info(format string, args ...any) {
	fmt.Fprintf(a.stderr, "caveat: "+format+"\n", args...)
}

// printErr prints an error and its hints on stderr.
func (a *app) printErr(e *cliError) {
	for i, line := range strings.Split(e.msg, "\n") {
		if i == 0 {
			fmt.Fprintf(a.stderr, "caveat: error: %s\n", line)
		} else {
			fmt.Fprintf(a.stderr, "caveat: error:   %s\n", line)
		}
	}
	for _, h := range e.hints {
		fmt.Fprintf(a.stderr, "caveat: hint: %s\n", h)
	}
}

// output writes data to stdout.
func (a *app) output(s string) error {
	if _, err := io.WriteString(a.stdout, s); err != nil {
		return failf("writing to stdout: %v", err)
	}
	return nil
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "caveat",
		Short: "Macaroon tokens compatible with Fly.io's fm2 format",
		Long: `caveat works with macaroon tokens in Fly.io's fm2 format ("FlyV1 fm2_…").

The offline tokens commands (debug, attenuate, mint, verify, check, 3p) work on
any fm2 token, including real Fly.io tokens, without contacting a server.
'caveat server' runs a caveat server; auth, orgs, apps, machines and tokens
create|list|revoke talk to one (--api, CAVEAT_API_URL, or the URL saved at
login).

Every command that reads a token, offline or online, takes it from, highest
first: the TOKEN argument of the offline commands, -t/--token ("-" reads
stdin for either), the CAVEAT_TOKEN environment variable, then the "token"
field of $CAVEAT_CONFIG_DIR/config.json (default ~/.config/caveat/config.json),
where 'caveat auth login' saves the session. It says on stderr which one it
used ("caveat: token from …"). Only that source is used: an empty or
malformed token is an error naming it, never a reason to try the next.

Environment:
  CAVEAT_TOKEN       a token, used when none is given on the command line
  CAVEAT_API_URL     the server of the online commands (default http://127.0.0.1:8080)
  CAVEAT_CONFIG_DIR  the configuration directory (default ~/.config/caveat)
  CAVEAT_NOW         the current time, RFC 3339 (a testing aid; default: the clock)

Exit status: 0 on success, 1 on failure, 2 on a usage error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          subcommandArgs,
		RunE:          missingSubcommand,
	}
	root.Version = version()
	root.SetVersionTemplate("caveat {{.Version}}\n")
	// "caveat completion bash|zsh|fish|powershell" writes a completion
	// script; its hidden subcommands stay out of the help.
	root.CompletionOptions.HiddenDefaultCmd = false
	root.PersistentFlags().StringVar(&a.api, "api", "", "server URL of the online commands (default: CAVEAT_API_URL, the config file, or "+defaultAPIURL+"); before or after the subcommand")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Flags().Changed("api") && cmd.Annotations[onlineAnnotation] == "" {
			return usageError(cmd, "--api is for the commands that talk to a server; %s works offline", cmd.CommandPath())
		}
		return nil
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError(cmd, "%v", err)
	})
	root.AddCommand(a.tokensCommand(), a.serverCommand(), a.authCommand(), a.orgsCommand(), a.appsCommand(), a.machinesCommand(),
		a.versionCommand())
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			// An unknown shell is an error, not a help text and success.
			c.Args, c.RunE = subcommandArgs, missingSubcommand
		}
	}
	// Commands that only group others run just to report a missing
	// subcommand: their usage shows the subcommands, not a bare use line.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	// Each Use line already shows its flags.
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

func (a *app) tokensCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "tokens",
		Short: "Work with tokens: offline (debug, attenuate, …) and on a server (create, list, revoke)",
		Long: `Work with fm2 tokens. debug, attenuate, mint, verify, check and 3p work
offline: no server is contacted. create, list and revoke manage the named
tokens of a caveat server, and need a login ('caveat auth login').

A token as printed here is a bundle: "FlyV1 " then comma-separated fm2_ tokens,
the permission token(s) first and then discharges of their third-party caveats.
Tokens are numbered from 1 in the order of the bundle; caveats from 0, as in
the JSON arrays and in the errors of verify and check.`,
		Args: subcommandArgs,
		RunE: missingSubcommand,
	}
	c.AddCommand(
		a.debugCommand(),
		a.attenuateCommand(),
		a.mintCommand(),
		a.verifyCommand(),
		a.checkCommand(),
		a.thirdPartyCommand(),
		a.tokensCreateCommand(),
		a.tokensListCommand(),
		a.tokensRevokeCommand(),
	)
	return c
}

// subcommandArgs accepts no positional arguments on a command that only
// groups others: anything there is a mistyped subcommand.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	e := usageError(cmd, "unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		e.hints = append([]string{fmt.Sprintf("did you mean %q?", s[0])}, e.hints...)
	}
	return e
}

func missingSubcommand(cmd *cobra.Command, _ []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usageError(cmd, "%s needs a subcommand: %s", cmd.CommandPath(), strings.Join(names, ", "))
}

// maxArgs accepts at most n positional arguments, naming the first extra
// one: an argument is never ignored.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			if n == 0 {
				return usageError(cmd, "unexpected argument %s: %s takes no arguments",
					describeArg(args[0]), cmd.CommandPath())
			}
			return usageError(cmd, "unexpected extra argument %s: %s takes at most %s", describeArg(args[n]), cmd.CommandPath(), countNoun(n, "argument"))
		}
		return nil
	}
}

// describeArg names an unexpected argument without printing what might be
// a token: short words are quoted, anything else is described by length.
func describeArg(s string) string {
	if len(s) <= 24 && !strings.Contains(s, "_") {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("(%d characters)", len(s))
}

// countNoun renders "no caveats", "1 caveat", "3 caveats".
func countNoun(n int, noun string) string {
	switch n {
	case 0:
		return "no " + noun + "s"
	case 1:
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
