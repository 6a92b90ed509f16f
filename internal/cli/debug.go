package cli

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/inspect"
	"github.com/spf13/cobra"
)

func (a *app) debugCommand() *cobra.Command {
	var token *string
	c := &cobra.Command{
		Use:   "debug [TOKEN | -]",
		Short: "Show the caveats, roles, discharges and real expiry of a token",
		Long: `Show what is in a token, offline.

stdout: an indented JSON array with one object per token of the bundle,
{"location": …, "caveats": [{"type": NAME, "body": …}]}, for example:

  caveat tokens debug "$TOKEN" | jq '.[] | select(.location == "https://api.fly.io/v1") | .caveats[]'

stderr: which token was read (argument, stdin, -t, CAVEAT_TOKEN or the
config file), then per token its role (permission token or discharge), key
id, UUID and whether it is a proof; for each third-party caveat whether a
discharge in the bundle covers it; and the effective expiry of each
permission token: the earliest not_after over the token and its discharges,
with the token and caveat that set it. A one-year token with a ten-minute
login discharge expires in ten minutes, and debug says so.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, _, err := a.loadBundle(cmd, args, *token)
			if err != nil {
				return err
			}
			out, err := bundleJSON(b)
			if err != nil {
				return err
			}
			now, err := a.now()
			if err != nil {
				return err
			}
			fmt.Fprint(a.stderr, inspect.Summary(b, now))
			return a.output(out)
		},
	}
	token = tokenFlag(c)
	return c
}

// bundleJSON renders every token of the bundle for debug's stdout.
func bundleJSON(b *caveat.Bundle) (string, error) {
	return indentJSON(inspect.Views(b))
}

// indentJSON renders v as indented JSON and a newline.
func indentJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "", failf("rendering JSON: %v", err)
	}
	return buf.String(), nil
}
