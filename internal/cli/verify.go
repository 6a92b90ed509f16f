package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caveatdev/caveat"
	"github.com/spf13/cobra"
)

// verifyFlags are the flags verify and check share.
type verifyFlags struct {
	token    *string
	keyFile  string
	location string
	thirdPty []string
}

func (f *verifyFlags) register(c *cobra.Command) {
	f.token = tokenFlag(c)
	c.Flags().StringVar(&f.keyFile, "key-file", "", "file holding the root key (standard padded base64)")
	c.Flags().StringVar(&f.location, "location", "", "verify the permission token for this location (default: the first permission token's)")
	c.Flags().StringArrayVar(&f.thirdPty, "3p-key", nil, "trust LOCATION=FILE: the third party at LOCATION seals tickets with the 32-byte key in FILE (repeatable)")
	_ = c.MarkFlagRequired("key-file")
}

const verifyFlagsHelp = `--key-file holds the root key as standard padded base64. --location picks the
permission token to verify (default: the location of the first token that is
not a discharge). Discharges in the bundle satisfy its third-party caveats.
--3p-key LOCATION=FILE trusts a third party: the attestations (user ids) of
discharges whose tickets its key opens are returned too; without it they are
dropped. The FILE holds the 32-byte key as standard padded base64.`

// verified is a bundle that verified, with what it verified to.
type verified struct {
	bundle  *caveat.Bundle
	caveats caveat.CaveatSet
	token   int
}

// verify loads the command's token and verifies it.
func (a *app) verify(cmd *cobra.Command, args []string, f *verifyFlags) (*verified, error) {
	key, err := readSigningKey("--key-file", f.keyFile)
	if err != nil {
		return nil, err
	}
	trusted, err := parseTrustedKeys(f.thirdPty)
	if err != nil {
		return nil, err
	}
	b, _, err := a.loadBundle(cmd, args, *f.token)
	if err != nil {
		return nil, err
	}
	location := f.location
	if !cmd.Flags().Changed("location") {
		for i := range b.Tokens {
			if !b.IsDischarge(i) {
				location = b.Tokens[i].Location
				break
			}
		}
		if allDischarges(b) {
			return nil, failf("invalid token: the bundle holds only discharges, no permission token").
				withHint("a discharge is used together with the token whose third-party caveat it satisfies")
		}
	}
	v, err := b.Verify(location, caveat.StaticKey(key), trusted)
	if err != nil {
		return nil, invalidTokenError(b, err)
	}
	var with string
	if ds := usedDischarges(v); len(ds) > 0 {
		nums := make([]string, len(ds))
		for i, d := range ds {
			nums[i] = fmt.Sprint(d + 1)
		}
		with = " with discharge(s) in token " + strings.Join(nums, ", ")
	}
	a.info("token %d (%q) verified%s", v.Token+1, location, with)
	return &verified{bundle: b, caveats: v.Caveats, token: v.Token}, nil
}

func allDischarges(b *caveat.Bundle) bool {
	for i := range b.Tokens {
		if !b.IsDischarge(i) {
			return false
		}
	}
	return true
}

// invalidTokenError explains a verification failure.
func invalidTokenError(b *caveat.Bundle, err error) *cliError {
	e := failf("invalid token: %v", err)
	switch {
	case errors.Is(err, caveat.ErrNoPermissionToken):
		e.withHint("use --location to pick the permission token's location")
	case errors.Is(err, caveat.ErrMissingDischarge):
		e.withHint("get a discharge from the third party and add it: 'caveat tokens 3p ticket', '3p discharge', '3p add-discharge'")
	case errors.Is(err, caveat.ErrWrongParent):
		e.withHint("the discharge was issued for another token; get a new discharge for this one")
	case errors.Is(err, caveat.ErrSignature):
		e.withHint("is --key-file the root key this token was minted with? ('caveat tokens debug' shows its key id)")
	}
	return e
}

func (a *app) verifyCommand() *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify --key-file FILE [--location URL] [--3p-key LOCATION=FILE]… [TOKEN | -]",
		Short: "Verify a token's signatures with its root key",
		Long: `Verify a token offline with its root key: the HMAC chain of the permission
token, and each of its third-party caveats against a discharge in the bundle.

stdout: the verified caveats as an indented JSON array [{"type", "body"}]: the
permission token's own, then those of its discharges (third-party and binding
caveats are consumed by verification). These are what an access is checked
against ('caveat tokens check'). Exit status 0 when the token verifies, 1 with
the reason on stderr when it does not. Verification does not look at the
time: an expired token verifies, and check refuses it.

` + verifyFlagsHelp,
		Example: `  caveat tokens verify --key-file root.key "$TOKEN"
  caveat tokens verify --key-file root.key --3p-key https://auth.example.com=auth.key - < token.txt`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.verify(cmd, args, &f)
			if err != nil {
				return err
			}
			out, err := indentJSON(v.caveats)
			if err != nil {
				return err
			}
			return a.output(out)
		},
	}
	f.register(c)
	return c
}

func (a *app) checkCommand() *cobra.Command {
	var f verifyFlags
	var accessArg string
	c := &cobra.Command{
		Use:   "check --access JSON --key-file FILE [verify flags] [TOKEN | -]",
		Short: "Verify a token, then check whether it allows an access",
		Long: `Verify a token (as 'caveat tokens verify' does), then check one access against
its verified caveats. Exit status 0 when the access is allowed; 1 when it is
denied, naming the caveat that denies it; 1 when the token does not verify.
The two failures say which they are: "denied: …" for a valid token that does
not allow the access, "invalid token: …" for one that does not verify.
Caveat numbers in a denial index the JSON array that verify prints.

--access is a JSON object describing the access (or @FILE to read it from a
file, @- from stdin). Its fields, all optional except orgid:

  action              the actions attempted: letters of r w c d C (read,
                      write, create, delete, control), e.g. "r" or "rw"
  orgid               organization id (number)
  appid               app id (number)
  machine             machine id; needs appid
  volume              volume id; needs appid
  app_feature         app feature, e.g. "images"; needs appid
  machine_feature     machine feature, e.g. "metadata"; needs machine
  command             argv of a command run on a machine (list of strings); needs machine
  feature             organization feature, e.g. "wg", "builder", "membership"
  cluster             LiteFS Cloud cluster; needs feature "litefs-cloud"
  storage_object      storage object URL
  mutation            GraphQL mutation name
  sourceMachine, sourceApp, sourceOrganization
                      where the request comes from (FlySrc, FromMachineSource)

At most one of appid, feature and storage_object; at most one of machine,
volume and app_feature. An unknown field is an error. The access's time is
now (CAVEAT_NOW when set).

` + verifyFlagsHelp,
		Example: `  caveat tokens check --key-file root.key --access '{"orgid": 1, "appid": 10, "machine": "e784", "action": "C"}' "$TOKEN"
  caveat tokens check --key-file root.key --access @access.json - < token.txt`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := a.readAccessArg(accessArg)
			if err != nil {
				return err
			}
			now, err := a.now()
			if err != nil {
				return err
			}
			access, err := decodeAccess(data, now)
			if err != nil {
				return err
			}
			if err := access.Validate(); err != nil {
				return failf("the access is invalid: %v", err).
					withHint("run 'caveat tokens check --help' for the access fields and their rules")
			}
			v, err := a.verify(cmd, args, &f)
			if err != nil {
				return err
			}
			if err := v.caveats.Clear(access); err != nil {
				return failf("denied: token %d is valid but does not allow this access: %v", v.token+1, err).
					withHint("'caveat tokens verify' prints the verified caveats, numbered from 0")
			}
			a.info("allowed: token %d allows the access", v.token+1)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&accessArg, "access", "", "the access: a JSON object, @FILE, or @- for stdin")
	_ = c.MarkFlagRequired("access")
	return c
}

// readAccessArg returns the JSON of --access: inline, @FILE or @-.
func (a *app) readAccessArg(s string) ([]byte, error) {
	switch {
	case s == "":
		return nil, failf("--access is empty: give a JSON object like {\"orgid\": 1, \"action\": \"r\"}")
	case s == "@-":
		return a.readStdin("the access JSON", maxCaveatInput)
	case strings.HasPrefix(s, "@"):
		b, err := readFileLimited(s[1:], maxCaveatInput)
		if err != nil {
			return nil, failf("reading --access: %v", err)
		}
		return b, nil
	}
	return []byte(s), nil
}

// usedDischarges are the tokens of the bundle that verification accepted as
// discharges of the verified token, each once, in bundle order.
func usedDischarges(v *caveat.Verified) []int {
	var out []int
	for _, d := range v.Discharges {
		out = append(out, d.Discharge)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
