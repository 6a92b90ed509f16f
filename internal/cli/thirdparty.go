package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/spf13/cobra"
)

func (a *app) thirdPartyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "3p",
		Short: "Third-party caveats: add them, extract tickets, issue and attach discharges",
		Long: `Work with third-party caveats, offline.

A third-party caveat makes a token demand a discharge from another service
(the third party, at a location URL) before it is accepted. The flow:

  caveat tokens 3p add --location URL --secret-file shared.key TOKEN   # attenuator
  caveat tokens 3p ticket --location URL TOKEN                           # holder
  caveat tokens 3p discharge --location URL --secret-file shared.key --ticket B64   # third party
  caveat tokens 3p add-discharge --discharge fm2_… TOKEN                 # holder

The secret file holds the 32-byte key shared by the attenuator and the third
party, as standard padded base64 (head -c 32 /dev/urandom | base64).`,
		Args: subcommandArgs,
		RunE: missingSubcommand,
	}
	c.AddCommand(a.threePAddCommand(), a.threePTicketCommand(), a.threePDischargeCommand(), a.threePAddDischargeCommand())
	return c
}

func (a *app) threePAddCommand() *cobra.Command {
	var token *string
	var location, secretFile, file string
	c := &cobra.Command{
		Use:   "add --location URL --secret-file FILE [-f FILE] [-t TOKEN | TOKEN | -]",
		Short: "Add a third-party caveat to every permission token",
		Long: `Add a third-party caveat for the third party at --location to every permission
token of the bundle, and print the new header on stdout. The ticket is sealed
with the key in --secret-file, which the third party must hold.

-f FILE gives caveats, as a JSON array, that the third party is asked to check
before it discharges (for example ConfineUser); they travel in the ticket.
Without -f the ticket carries none (stdin is not read for them).

` + caveatsJSONHelp,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if location == "" {
				return usageError(cmd, "--location is empty")
			}
			ka, err := readEncryptionKey("--secret-file", secretFile)
			if err != nil {
				return err
			}
			b, _, err := a.loadBundle(cmd, args, *token)
			if err != nil {
				return err
			}
			cs, err := a.readCaveatsJSON("-f", file, false)
			if err != nil {
				return err
			}
			n, err := addToPermissionTokens(b, func(m *caveat.Macaroon) error { return m.Add3P(ka, location, cs...) })
			if err != nil {
				return err
			}
			a.info("added a third-party caveat for %q to %s, with %s", location, n, countNoun(len(cs), "ticket caveat"))
			return a.output(b.Header() + "\n")
		},
	}
	token = tokenFlag(c)
	c.Flags().StringVarP(&location, "location", "l", "", "location (URL) of the third party")
	c.Flags().StringVar(&secretFile, "secret-file", "", "file holding the 32-byte key shared with the third party (base64)")
	c.Flags().StringVarP(&file, "file", "f", "", `caveats JSON for the ticket, checked by the third party ("-" for stdin)`)
	_ = c.MarkFlagRequired("location")
	_ = c.MarkFlagRequired("secret-file")
	return c
}

func (a *app) threePTicketCommand() *cobra.Command {
	var token *string
	var location string
	c := &cobra.Command{
		Use:   "ticket --location URL [-t TOKEN | TOKEN | -]",
		Short: "Print the tickets of undischarged third-party caveats for a location",
		Long: `Print, one per line on stdout, the ticket (standard base64) of each third-party
caveat for --location that no discharge in the bundle satisfies yet. A ticket
is what the third party needs to issue a discharge. It is an error when there
is none.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if location == "" {
				return usageError(cmd, "--location is empty")
			}
			b, _, err := a.loadBundle(cmd, args, *token)
			if err != nil {
				return err
			}
			var out strings.Builder
			pending := map[string]bool{}
			found, discharged := 0, 0
			for i := range b.Tokens {
				if b.IsDischarge(i) {
					continue
				}
				for _, tp := range b.ThirdParties(i) {
					if tp.Location != location {
						if !tp.Discharged() {
							pending[fmt.Sprintf("%q", tp.Location)] = true
						}
						continue
					}
					found++
					if tp.Discharged() {
						discharged++
						continue
					}
					out.WriteString(caveat.EncodeTicket(tp.Ticket) + "\n")
				}
			}
			if out.Len() == 0 {
				e := failf("no undischarged third-party caveat for %q", location)
				if found > 0 {
					e.msg = fmt.Sprintf("the %d third-party caveat(s) for %q are already discharged in this bundle", discharged, location)
				}
				if len(pending) > 0 {
					e.withHint("undischarged third-party caveats are for: %s", strings.Join(sortedKeys(pending), ", "))
				}
				return e
			}
			return a.output(out.String())
		},
	}
	token = tokenFlag(c)
	c.Flags().StringVarP(&location, "location", "l", "", "location (URL) of the third party")
	_ = c.MarkFlagRequired("location")
	return c
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (a *app) threePDischargeCommand() *cobra.Command {
	var location, secretFile, ticketArg, file, expiry string
	c := &cobra.Command{
		Use:   "discharge --location URL --secret-file FILE --ticket B64 [-f FILE] [--expiry DURATION]",
		Short: "Issue a discharge for a ticket, as the third party",
		Long: `Act as the third party: open a ticket with the shared key in --secret-file and
print a discharge for it ("fm2_…", a proof) on stdout.

The ticket's caveats, the conditions the third party was asked to check before
discharging, are printed as JSON on stderr: checking them is up to you.

-f FILE gives caveats, as a JSON array, to put in the discharge (for example a
FlyioUserID attestation); --expiry adds a ValidityWindow from now to now +
DURATION. --ticket - reads the ticket from stdin.

` + caveatsJSONHelp,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if location == "" {
				return usageError(cmd, "--location is empty")
			}
			if cmd.Flags().Changed("file") && file == "" {
				return usageError(cmd, "-f is empty: give a file name, or \"-\" for stdin")
			}
			ka, err := readEncryptionKey("--secret-file", secretFile)
			if err != nil {
				return err
			}
			vw, err := a.expiryCaveat(expiry)
			if err != nil {
				return err
			}
			ticket, err := a.readTicket(ticketArg)
			if err != nil {
				return err
			}
			cs, err := a.readCaveatsJSON("-f", file, false)
			if err != nil {
				return err
			}
			if vw != nil {
				cs = append(cs, vw)
			}
			t, err := caveat.OpenTicket(ka, ticket)
			if err != nil {
				return failf("cannot open the ticket: %s", strings.TrimPrefix(err.Error(), "ticket: ")).
					withHint("the ticket was sealed with another key than --secret-file, or it is damaged")
			}
			if len(t.Caveats) == 0 {
				a.info("the ticket asks the third party to check no caveats")
			} else {
				js, err := indentJSON(t.Caveats)
				if err != nil {
					return err
				}
				a.info("the ticket asks the third party to check %s before discharging:", countNoun(len(t.Caveats), "caveat"))
				fmt.Fprint(a.stderr, js)
			}
			d, err := t.Discharge(location, cs...)
			if err != nil {
				return failf("discharge: %v", err)
			}
			a.info("issued a discharge for %q with %s", location, countNoun(len(d.Caveats), "caveat"))
			return a.output(d.String() + "\n")
		},
	}
	c.Flags().StringVarP(&location, "location", "l", "", "location (URL) of this third party")
	c.Flags().StringVar(&secretFile, "secret-file", "", "file holding the 32-byte key shared with the attenuator (base64)")
	c.Flags().StringVar(&ticketArg, "ticket", "", `the ticket, standard base64 ("-" reads stdin)`)
	c.Flags().StringVarP(&file, "file", "f", "", `caveats JSON to put in the discharge ("-" for stdin)`)
	c.Flags().StringVar(&expiry, "expiry", "", "add a ValidityWindow from now to now + DURATION")
	for _, f := range []string{"location", "secret-file", "ticket"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}

// readTicket decodes --ticket: standard base64, or "-" for stdin.
func (a *app) readTicket(s string) ([]byte, error) {
	if s == "-" {
		b, err := a.readStdin("the ticket", maxTokenInput)
		if err != nil {
			return nil, err
		}
		s = string(b)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, failf("--ticket is empty")
	}
	if strings.ContainsAny(s, " \n") {
		return nil, failf("--ticket holds more than one ticket: give one at a time")
	}
	t, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, failf("--ticket is not standard padded base64 (%d characters)", len(s)).
			withHint("copy the ticket as 'caveat tokens 3p ticket' prints it")
	}
	return t, nil
}

func (a *app) threePAddDischargeCommand() *cobra.Command {
	var token *string
	var dischargeArg string
	c := &cobra.Command{
		Use:   "add-discharge --discharge DISCHARGE [-t TOKEN | TOKEN | -]",
		Short: "Attach a discharge to the token whose third-party caveat it satisfies",
		Long: `Add a discharge ("fm2_…") to the bundle and print the new header on stdout.

The discharge must match the ticket of a third-party caveat of a permission
token in the bundle; otherwise nothing is printed and the exit status is 1. A
discharge already in the bundle for the same ticket (an expired one, say) is
replaced by the new one. --discharge - reads the discharge from stdin.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text := dischargeArg
			if text == "-" {
				raw, err := a.readStdin("the discharge", maxTokenInput)
				if err != nil {
					return err
				}
				text = string(raw)
			}
			db, err := parseBundle(&tokenSource{subject: "the --discharge value", text: text})
			if err != nil {
				return err
			}
			if len(db.Tokens) != 1 {
				return failf("the --discharge value holds %d tokens: give one discharge", len(db.Tokens))
			}
			d := db.Tokens[0]
			b, _, err := a.loadBundle(cmd, args, *token)
			if err != nil {
				return err
			}
			target, caveatIdx := -1, -1
			for i := range b.Tokens {
				if b.IsDischarge(i) {
					continue
				}
				for _, tp := range b.ThirdParties(i) {
					if bytes.Equal(tp.Ticket, d.Nonce.KID) {
						target, caveatIdx = i, tp.Caveat
						break
					}
				}
				if target >= 0 {
					break
				}
			}
			if target < 0 {
				return failf("the discharge matches no third-party caveat of a permission token in this bundle").
					withHint("a discharge is made for one ticket: get the ticket with 'caveat tokens 3p ticket' from this token")
			}
			toks := make([]caveat.Macaroon, 0, len(b.Tokens)+1)
			replaced := 0
			for i := range b.Tokens {
				if i != target && bytes.Equal(b.Tokens[i].Nonce.KID, d.Nonce.KID) {
					replaced++
					continue
				}
				toks = append(toks, b.Tokens[i])
			}
			toks = append(toks, d)
			out := &caveat.Bundle{Tokens: toks}
			what := fmt.Sprintf("added a discharge for token %d, caveat %d", target+1, caveatIdx)
			if replaced > 0 {
				what += fmt.Sprintf(", replacing the %d discharge(s) already in the bundle for that ticket", replaced)
			}
			a.info("%s", what)
			return a.output(out.Header() + "\n")
		},
	}
	token = tokenFlag(c)
	c.Flags().StringVar(&dischargeArg, "discharge", "", `the discharge, "fm2_…" ("-" reads stdin)`)
	_ = c.MarkFlagRequired("discharge")
	return c
}
