package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
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
			fmt.Fprint(a.stderr, summarize(b, now))
			return a.output(out)
		},
	}
	token = tokenFlag(c)
	return c
}

// tokenView is the JSON form of one token in debug's output.
type tokenView struct {
	Location string           `json:"location"`
	Caveats  caveat.CaveatSet `json:"caveats"`
}

// bundleJSON renders every token of the bundle for debug's stdout.
func bundleJSON(b *caveat.Bundle) (string, error) {
	views := make([]tokenView, len(b.Tokens))
	for i := range b.Tokens {
		views[i] = tokenView{Location: b.Tokens[i].Location, Caveats: b.Tokens[i].Caveats}
	}
	return indentJSON(views)
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

// thirdParty is a decoded top-level 3P caveat of a token.
type thirdParty struct {
	index    int
	location string
	ticket   []byte
}

// thirdParties returns the 3P caveats of m that decode.
func thirdParties(m *caveat.Macaroon) []thirdParty {
	var out []thirdParty
	for i, c := range m.Caveats {
		if c.Type != caveat.Type3P {
			continue
		}
		v, err := c.Decode()
		if err != nil {
			continue
		}
		if tp, ok := v.(*caveat.Caveat3P); ok {
			out = append(out, thirdParty{index: i, location: tp.Location, ticket: tp.Ticket})
		}
	}
	return out
}

// dischargeOf returns the index of the first other token of b whose nonce
// KID is ticket, or -1.
func dischargeOf(b *caveat.Bundle, self int, ticket []byte) int {
	for j := range b.Tokens {
		if j != self && len(ticket) > 0 && bytes.Equal(b.Tokens[j].Nonce.KID, ticket) {
			return j
		}
	}
	return -1
}

// summarize returns debug's human summary of a bundle at time now.
func summarize(b *caveat.Bundle, now time.Time) string {
	var s strings.Builder
	for i := range b.Tokens {
		m := &b.Tokens[i]
		discharge := b.IsDischarge(i)
		role := "permission token"
		if discharge {
			role = "discharge"
		}
		fmt.Fprintf(&s, "token %d: %s, location %q\n", i+1, role, m.Location)
		if discharge {
			fmt.Fprintf(&s, "  key id    ticket, %d bytes%s\n", len(m.Nonce.KID), dischargedCaveat(b, i))
		} else {
			fmt.Fprintf(&s, "  key id    %s\n", kidText(m.Nonce.KID))
		}
		fmt.Fprintf(&s, "  uuid      %s\n", m.Nonce.UUID())
		fmt.Fprintf(&s, "  proof     %s\n", yesNo(m.IsProof()))
		fmt.Fprintf(&s, "  caveats   %d\n", len(m.Caveats))
		if discharge {
			continue
		}
		tps := thirdParties(m)
		var missing []string
		for _, tp := range tps {
			status := "NOT discharged"
			if j := dischargeOf(b, i, tp.ticket); j >= 0 {
				status = fmt.Sprintf("discharged by token %d", j+1)
			} else {
				missing = append(missing, fmt.Sprintf("%q", tp.location))
			}
			fmt.Fprintf(&s, "  3P        caveat %d, %q: %s\n", tp.index, tp.location, status)
		}
		fmt.Fprintf(&s, "  usable    %s\n", usableText(b, i, len(tps), missing, now))
		fmt.Fprintf(&s, "  expires   %s\n", expiryText(b, i, now))
	}
	return s.String()
}

// usableText answers the question people bring to debug: can this token
// be used as it is, and until when? A token without third-party caveats
// needs no discharge; one with an undischarged caveat is unusable until a
// discharge is added, and its expiry applies only after that.
func usableText(b *caveat.Bundle, i, thirdParties int, missing []string, now time.Time) string {
	e := b.Expiry(i)
	until := "with no expiry"
	if !e.Never() {
		until = "until " + formatTime(e.At)
		if !e.At.After(now) {
			until = "no longer: it expired at " + formatTime(e.At)
		}
	}
	switch {
	case thirdParties == 0 && !e.Never() && !e.At.After(now):
		return "needs no discharge, but " + until
	case thirdParties == 0:
		return "needs no discharge: valid on its own " + until
	case len(missing) > 0:
		return fmt.Sprintf("NOT until discharged by %s (the expiry below applies after that, and a discharge may end it sooner)",
			strings.Join(missing, ", "))
	}
	return "with its discharges in this bundle, " + until
}

// dischargedCaveat says which 3P caveat of which token a discharge covers.
func dischargedCaveat(b *caveat.Bundle, d int) string {
	for i := range b.Tokens {
		if i == d {
			continue
		}
		for _, tp := range thirdParties(&b.Tokens[i]) {
			if bytes.Equal(tp.ticket, b.Tokens[d].Nonce.KID) {
				return fmt.Sprintf(" (discharges token %d, caveat %d)", i+1, tp.index)
			}
		}
	}
	return " (matches no third-party caveat in this bundle)"
}

func kidText(kid []byte) string {
	switch {
	case kid == nil:
		return "none"
	case len(kid) == 0:
		return "empty"
	}
	return hex.EncodeToString(kid)
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// expiryText describes the effective expiry of permission token i; a
// second line, when a discharge decides, gives the token's own expiry.
func expiryText(b *caveat.Bundle, i int, now time.Time) string {
	e := b.Expiry(i)
	if e.Never() {
		if len(thirdParties(&b.Tokens[i])) > 0 {
			return "never: no ValidityWindow in the token or its discharges in this bundle"
		}
		return "never: no ValidityWindow"
	}
	at := fmt.Sprintf("%s (%s)", formatTime(e.At), relative(e.At, now))
	if e.Token == i {
		return fmt.Sprintf("%s, set by %s", at, caveatRef(b, e.Token, e.Caveat))
	}
	// A discharge decides: say so, and what the token alone would give.
	text := fmt.Sprintf("%s, set by a discharge, not the token itself: %s", at, caveatRef(b, e.Token, e.Caveat))
	if own, _, ok := b.Tokens[i].Expiry(); ok {
		return text + fmt.Sprintf("\n            the token alone expires %s (%s)", formatTime(own), relative(own, now))
	}
	return text + "\n            the token alone never expires"
}

// caveatRef names caveat c of token t: "token 2, caveat 1 (ValidityWindow)".
func caveatRef(b *caveat.Bundle, t, c int) string {
	if t < 0 || t >= len(b.Tokens) || c < 0 || c >= len(b.Tokens[t].Caveats) {
		return fmt.Sprintf("token %d, caveat %d", t+1, c)
	}
	rc := b.Tokens[t].Caveats[c]
	name := rc.Name()
	if rc.Type != caveat.TypeValidityWindow {
		name = "ValidityWindow inside " + name
	}
	return fmt.Sprintf("token %d, caveat %d (%s)", t+1, c, name)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// relative describes t relative to now: "in 10m30s", "expired 3h ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > 0:
		return "in " + shortDuration(d)
	case d < 0:
		return "expired " + shortDuration(-d) + " ago"
	}
	return "expires now"
}

// shortDuration renders a positive duration in at most two units, rounded
// down to the second: "45s", "10m30s", "3h", "3h5m", "364d23h".
func shortDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs == 0 {
		return "less than 1s"
	}
	units := []struct {
		name string
		size int64
	}{{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}}
	var parts []string
	for _, u := range units {
		if n := secs / u.size; n > 0 || len(parts) > 0 {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%d%s", n, u.name))
			} else {
				parts = append(parts, "")
			}
			secs %= u.size
		}
		if len(parts) == 2 {
			break
		}
	}
	return strings.Join(parts, "")
}
