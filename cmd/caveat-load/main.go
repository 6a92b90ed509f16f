// Command caveat-load drives a running caveat deployment with a mix of
// requests from many concurrent clients and prints what it measured; the
// work is done by package loadtest, which says what the mix is.
//
//	caveat-load [flags] URL...          load the replicas at URL…
//	caveat-load check [flags] URL...    check a run's record against them
//
// Progress goes to stderr, one line a second; the summary to stdout, as a
// table or, with --json, as JSON. The exit status is 0 when the run had no
// more errors than --max-errors (intended denials and 412s of machine
// start and stop are not errors), 1 otherwise or on any failure, 2 on a
// usage error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/caveatdev/caveat/loadtest"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// cmdError is an error with its exit status and hints.
type cmdError struct {
	code  int
	msg   string
	hints []string
}

func (e *cmdError) Error() string { return e.msg }

func failf(format string, args ...any) *cmdError {
	return &cmdError{code: exitFailure, msg: fmt.Sprintf(format, args...)}
}

func usagef(format string, args ...any) *cmdError {
	return &cmdError{code: exitUsage, msg: fmt.Sprintf(format, args...),
		hints: []string{"see 'caveat-load --help'"}}
}

func (e *cmdError) hint(format string, args ...any) *cmdError {
	e.hints = append(e.hints, fmt.Sprintf(format, args...))
	return e
}

// run runs one invocation and returns its exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	var err error
	if len(args) > 0 && args[0] == "check" {
		err = checkCommand(ctx, args[1:], stdin, stdout, stderr, env)
	} else {
		err = loadCommand(ctx, args, stdin, stdout, stderr, env)
	}
	if err == nil {
		return exitOK
	}
	var ce *cmdError
	if !errors.As(err, &ce) {
		ce = failf("%v", err)
	}
	fmt.Fprintf(stderr, "caveat-load: error: %s\n", ce.msg)
	for _, h := range ce.hints {
		fmt.Fprintf(stderr, "caveat-load: hint: %s\n", h)
	}
	return ce.code
}

// errHelp is returned after printing the help: exit 0.
var errHelp = errors.New("help")

const loadUsage = `Usage: caveat-load [flags] URL...

Drive a running caveat deployment: --clients concurrent clients send, for
--duration, a mix of POST /v1/tokens/authorize and /authenticate (with
prepared tokens and accesses, some meant to be refused), machine starts and
stops (a 412 for a machine in the wrong state is expected), and mints and
revocations (with the admin session). Requests go to the URLs in turn; one
that fails with a network error or a 5xx is sent again to the next URL.

Before the load it logs in with --email and the password (one line on
stdin with --password-stdin, else CAVEAT_LOAD_PASSWORD), after signing up
with --setup (a fresh server), and finds or creates the apps load-a and
load-b, --machines machines in load-a, and five tokens.

Every second a progress line goes to stderr; at the end the summary
(throughput, latency percentiles per kind of request, counts by outcome)
goes to stdout. The exit status is 1 when there were more than --max-errors
errors: unintended denials or allows, other 4xx, 5xx, network errors.

--record FILE writes every mint and revocation that returned success as a
JSON line (mode 0600: it holds the tokens), for 'caveat-load check'.

Flags:
`

const checkUsage = `Usage: caveat-load check --record FILE [flags] URL...

Check a run's record through every URL: each token whose mint returned
success is listed and authorizes its access, unless it was revoked; each
token whose revocation returned success is listed as revoked and refused.
It waits until --settle after the last revocation first. Problems go to
stdout (or --json) and make the exit status 1.

Flags:
`

// newFlags returns a flag set that prints usage to stdout on --help.
func newFlags(name, usage string, stdout io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses args; --help prints the usage and returns errHelp.
func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fs.Usage()
			return errHelp
		}
		return usagef("%v", err)
	}
	return nil
}

// account are the flags that say who logs in.
type account struct {
	email         string
	passwordStdin bool
	org           string
	publicURL     string
}

func (a *account) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.email, "email", "load@example.com", "the account's email")
	fs.BoolVar(&a.passwordStdin, "password-stdin", false, "read the password from stdin (default: CAVEAT_LOAD_PASSWORD)")
	fs.StringVar(&a.org, "org", "", `organization slug (default: the account's only one; "loadtest" with --setup)`)
	fs.StringVar(&a.publicURL, "public-url", "", "the deployment's public URL, the tokens' location (default: the first URL)")
}

// target builds the target from the flags, the URLs and the password.
func (a *account) target(urls []string, stdin io.Reader, env func(string) string) (loadtest.Target, error) {
	t := loadtest.Target{URLs: urls, PublicURL: a.publicURL, Email: a.email, Org: a.org}
	if len(urls) == 0 {
		return t, usagef("give the base URL of at least one replica, e.g. http://127.0.0.1:8080")
	}
	if a.passwordStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return t, failf("reading the password from stdin: %v", err)
		}
		t.Password = strings.TrimRight(line, "\r\n")
		if t.Password == "" {
			return t, failf("the password on stdin is empty")
		}
	} else {
		t.Password = env("CAVEAT_LOAD_PASSWORD")
		if t.Password == "" {
			return t, usagef("no password: give it on stdin with --password-stdin, or in CAVEAT_LOAD_PASSWORD")
		}
	}
	if err := t.Validate(); err != nil {
		return t, usagef("%v", err)
	}
	return t, nil
}

func loadCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) error {
	fs := newFlags("caveat-load", loadUsage, stdout)
	var (
		acct      account
		cfg       loadtest.Config
		mix       string
		setup     bool
		machines  int
		jsonOut   bool
		maxErrors uint64
		quiet     bool
	)
	fs.IntVarP(&cfg.Clients, "clients", "c", loadtest.DefaultClients, "concurrent clients")
	fs.DurationVarP(&cfg.Duration, "duration", "d", loadtest.DefaultDuration, "how long to send requests")
	fs.StringVar(&mix, "mix", loadtest.DefaultMix.String(), "weights of the groups of requests")
	acct.register(fs)
	fs.BoolVar(&setup, "setup", false, "sign up first (a fresh server); an existing account is fine")
	fs.IntVar(&machines, "machines", loadtest.DefaultMachines, "machines load-a should have (created when missing)")
	fs.IntVar(&cfg.Retries, "retries", loadtest.DefaultRetries, "attempts after the first of a request that failed with a network error or a 5xx, each on the next URL")
	fs.DurationVar(&cfg.Timeout, "timeout", loadtest.DefaultTimeout, "timeout of each attempt")
	fs.StringVar(&cfg.Record, "record", "", "write successful mints and revocations to FILE (JSON lines, mode 0600)")
	fs.BoolVar(&cfg.ForceRecord, "force", false, "overwrite the --record file if it exists")
	fs.Uint64Var(&maxErrors, "max-errors", 0, "errors allowed before the exit status is 1")
	fs.BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	if err := parse(fs, args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	m, err := loadtest.ParseMix(mix)
	if err != nil {
		return usagef("--mix: %v", err)
	}
	cfg.Mix = m
	switch {
	case cfg.Clients < 1 || cfg.Clients > 10_000:
		return usagef("--clients must be from 1 to 10000, not %d", cfg.Clients)
	case cfg.Duration <= 0:
		return usagef("--duration must be positive")
	case machines < 1 || machines > 1000:
		return usagef("--machines must be from 1 to 1000, not %d", machines)
	case cfg.Retries < 0:
		return usagef("--retries must not be negative")
	case cfg.Timeout <= 0:
		return usagef("--timeout must be positive")
	case fs.Changed("force") && cfg.Record == "":
		return usagef("--force is for --record: give a record file")
	}
	if cfg.Retries == 0 {
		cfg.Retries = -1 // loadtest.Config: 0 is the default, negative none
	}
	t, err := acct.target(fs.Args(), stdin, env)
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "caveat-load: "+format+"\n", args...) }
	fx, err := loadtest.Prepare(ctx, t, loadtest.PrepareOptions{Signup: setup, Machines: machines, Clients: cfg.Clients, Logf: logf})
	if err != nil {
		ce := failf("setup: %v", err)
		if !setup && strings.Contains(err.Error(), "login") {
			ce.hint("on a fresh server, add --setup to sign up first")
		}
		return ce
	}
	defer fx.Close()
	if !quiet {
		cfg.Progress = stderr
	}
	logf("%d clients for %s against %s", cfg.Clients, cfg.Duration, strings.Join(t.URLs, " "))
	res, runErr := loadtest.Run(ctx, fx, cfg)
	if res != nil {
		if err := printResult(stdout, res, jsonOut); err != nil {
			return failf("writing the summary: %v", err)
		}
	}
	switch {
	case runErr != nil:
		return failf("%v", runErr)
	case ctx.Err() != nil:
		return failf("interrupted after %.1f s", res.Duration)
	case res.Errors > maxErrors:
		return failf("%d errors (allowed: %d)", res.Errors, maxErrors).
			hint("the outcomes table says which kind; the servers' logs say why")
	}
	return nil
}

func printResult(w io.Writer, res *loadtest.Result, asJSON bool) error {
	if !asJSON {
		return res.WriteText(w)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func checkCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) error {
	fs := newFlags("caveat-load check", checkUsage, stdout)
	var (
		acct    account
		record  string
		settle  time.Duration
		jsonOut bool
	)
	fs.StringVar(&record, "record", "", "the record file of a run (required)")
	acct.register(fs)
	fs.DurationVar(&settle, "settle", loadtest.DefaultSettle, "wait this long after the last recorded revocation")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if record == "" {
		return usagef("give the record file of a run with --record FILE")
	}
	if settle < 0 {
		return usagef("--settle must not be negative")
	}
	t, err := acct.target(fs.Args(), stdin, env)
	if err != nil {
		return err
	}
	f, err := os.Open(record)
	if err != nil {
		return failf("record file: %v", err)
	}
	recs, err := loadtest.ReadRecords(f)
	f.Close()
	if err != nil {
		return failf("%s: %v", record, err)
	}
	res, err := loadtest.Check(ctx, t, recs, loadtest.CheckOptions{Settle: settle})
	if err != nil {
		return failf("check: %v", err)
	}
	if jsonOut {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return failf("%v", err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		for _, p := range res.Problems {
			fmt.Fprintln(stdout, p)
		}
		fmt.Fprintf(stdout, "%d mints, %d revoked, %d revocations of unknown outcome, %d authorize requests through %d replicas: %d problems\n",
			res.Mints, res.Revoked, res.Unknown, res.Requests, len(t.URLs), res.ProblemCount)
	}
	if res.ProblemCount > 0 {
		return failf("%d problems: a token was lost, or a revocation not enforced", res.ProblemCount)
	}
	return nil
}
