package cli

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/spf13/cobra"
)

const caveatsJSONHelp = `Caveats are a JSON array of {"type": NAME, "body": …} objects, as
'caveat tokens debug' prints them, for example:

  [{"type": "Machines", "body": {"machines": {"": "rC"}}},
   {"type": "ValidityWindow", "body": {"not_before": 1735689600, "not_after": 1767225600}}]

Masks are strings of the letters r w c d C (read, write, create, delete,
control). An unknown type, an unknown field or a value of the wrong type is
an error naming the caveat's index (from 0) and the field.`

func (a *app) attenuateCommand() *cobra.Command {
	var token *string
	var file, expiry string
	c := &cobra.Command{
		Use:   "attenuate [-f FILE] [-t TOKEN | TOKEN | -] [--expiry DURATION]",
		Short: "Add caveats to a token, offline (no key needed)",
		Long: `Add caveats to every permission token of a bundle, offline: attenuation needs
no key and no server. Discharges are kept unchanged (they are proofs and
cannot take caveats), so the attenuated token keeps working with them.
Prints the new header ("FlyV1 fm2_…,fm2_…") on stdout.

The caveats come from -f FILE, or from stdin without -f. When the token itself
is read from stdin, the caveats must come from -f.

` + caveatsJSONHelp + `

--expiry DURATION adds a ValidityWindow from now to now + DURATION (a Go
duration: 30m, 2h, 720h).

Third-party caveats are added with 'caveat tokens 3p add'.`,
		Example: `  echo '[{"type":"Machines","body":{"machines":{"":"rC"}}}]' | caveat tokens attenuate -t "$TOKEN"
  caveat tokens attenuate -f caveats.json --expiry 24h - < token.txt`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("file") && file == "" {
				return usageError(cmd, "-f is empty: give a file name, or \"-\" for stdin")
			}
			vw, err := a.expiryCaveat(expiry)
			if err != nil {
				return err
			}
			b, src, err := a.loadBundle(cmd, args, *token)
			if err != nil {
				return err
			}
			if src.stdin && (file == "" || file == "-") {
				return failf("the token is read from stdin, so the caveats must come from a file: use -f FILE")
			}
			cs, err := a.readCaveatsJSON("-f", file, true)
			if err != nil {
				return err
			}
			if vw != nil {
				cs = append(cs, vw)
			}
			if len(cs) == 0 {
				return failf("no caveats to add: the JSON array is empty and there is no --expiry")
			}
			n, err := addToPermissionTokens(b, func(m *caveat.Macaroon) error { return m.Add(cs...) })
			if err != nil {
				return err
			}
			a.info("added %s to %s", countNoun(len(cs), "caveat"), n)
			return a.output(b.Header() + "\n")
		},
	}
	token = tokenFlag(c)
	c.Flags().StringVarP(&file, "file", "f", "", `read the caveats JSON from FILE ("-" for stdin; default stdin)`)
	c.Flags().StringVar(&expiry, "expiry", "", "also add a ValidityWindow from now to now + DURATION")
	return c
}

// addToPermissionTokens applies add to every permission token of b (not
// discharges, not proofs) and describes which tokens it changed.
func addToPermissionTokens(b *caveat.Bundle, add func(*caveat.Macaroon) error) (string, error) {
	var changed []string
	for i := range b.Tokens {
		m := &b.Tokens[i]
		if b.IsDischarge(i) || m.IsProof() {
			continue
		}
		if err := add(m); err != nil {
			return "", failf("token %d: %v", i+1, err)
		}
		changed = append(changed, fmt.Sprint(i+1))
	}
	switch len(changed) {
	case 0:
		return "", failf("the bundle holds no permission token, only discharges").
			withHint("caveats are added to permission tokens; a discharge is a proof and cannot take more")
	case 1:
		return "token " + changed[0], nil
	}
	return "tokens " + strings.Join(changed, ", "), nil
}

func (a *app) mintCommand() *cobra.Command {
	var keyFile, kid, location, file, expiry string
	c := &cobra.Command{
		Use:   "mint --key-file FILE --kid HEX --location URL [-f FILE] [--expiry DURATION]",
		Short: "Mint a new token with a root key, offline",
		Long: `Mint a permission token with a root key, offline, and print its header
("FlyV1 fm2_…") on stdout.

--key-file holds the root key as standard padded base64 (any non-empty length;
32 random bytes is usual: head -c 32 /dev/urandom | base64 > root.key).
--kid is the key id, in hex, that the verifier uses to find the key.
--location is the URL of the service that will check the token.

The caveats come from -f FILE, or from stdin without -f.

` + caveatsJSONHelp,
		Example: `  echo '[{"type":"Organization","body":{"id":1,"mask":"rwcdC"}}]' |
    caveat tokens mint --key-file root.key --kid 01 --location https://caveat.example/v1 --expiry 720h`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			kidBytes, err := hex.DecodeString(kid)
			if err != nil {
				return usageError(cmd, "--kid %s is not hex", describeArg(kid))
			}
			if len(kidBytes) == 0 {
				return usageError(cmd, "--kid is empty: give the key id in hex")
			}
			if location == "" {
				return usageError(cmd, "--location is empty")
			}
			if cmd.Flags().Changed("file") && file == "" {
				return usageError(cmd, "-f is empty: give a file name, or \"-\" for stdin")
			}
			key, err := readSigningKey("--key-file", keyFile)
			if err != nil {
				return err
			}
			vw, err := a.expiryCaveat(expiry)
			if err != nil {
				return err
			}
			cs, err := a.readCaveatsJSON("-f", file, true)
			if err != nil {
				return err
			}
			if vw != nil {
				cs = append(cs, vw)
			}
			m, err := caveat.Mint(key, caveat.NewNonce(kidBytes, false), location, cs...)
			if err != nil {
				return failf("%v", err)
			}
			a.info("minted a token for %q with key id %s and %s", location, kid, countNoun(len(m.Caveats), "caveat"))
			return a.output("FlyV1 " + m.String() + "\n")
		},
	}
	c.Flags().StringVar(&keyFile, "key-file", "", "file holding the root key (standard padded base64)")
	c.Flags().StringVar(&kid, "kid", "", "key id, in hex")
	c.Flags().StringVar(&location, "location", "", "location (URL) of the service that checks the token")
	c.Flags().StringVarP(&file, "file", "f", "", `read the caveats JSON from FILE ("-" for stdin; default stdin)`)
	c.Flags().StringVar(&expiry, "expiry", "", "also add a ValidityWindow from now to now + DURATION")
	for _, f := range []string{"key-file", "kid", "location"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}
