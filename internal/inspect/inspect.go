// Package inspect describes a token bundle for people, offline: which
// tokens it holds, their third-party caveats and whether a discharge in the
// bundle covers each, whether a permission token can be used as it is, and
// its effective expiry with the caveat that sets it.
//
// It is what "caveat tokens debug" prints on stderr (Summary) and what the
// web console's token inspector shows (Describe), so that the two never
// disagree. It verifies nothing: no key is needed to describe a token.
package inspect

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
)

// Token describes one token of a bundle.
type Token struct {
	// Number is the token's position in the bundle, from 1.
	Number   int
	Location string
	// Discharge is set for a discharge, unset for a permission token.
	Discharge bool
	// KeyID is the permission token's key id in hex ("none", "empty"), or
	// for a discharge the size of its ticket and which caveat it
	// discharges.
	KeyID   string
	UUID    string
	Proof   bool
	Caveats int
	// The rest is only for permission tokens.

	// ThirdParties are its third-party caveats, in order.
	ThirdParties []ThirdParty
	// Usable says whether the token can be used as it is, and until when.
	Usable string
	// Expires is the effective expiry: the earliest not_after over the
	// token and its discharges in the bundle, and the caveat that sets it.
	Expires string
	// TokenAlone, when a discharge sets the expiry, is the token's own.
	TokenAlone string
}

// ThirdParty is a third-party caveat of a permission token, as
// caveat.Bundle.ThirdParties relates it, for display.
type ThirdParty struct {
	// Index is the caveat's index in its token.
	Index    int
	Location string
	Ticket   []byte
	// DischargedBy is the number of the discharge in the bundle that
	// covers it (the first, when several do), or 0 when none does.
	DischargedBy int
}

// Status is "discharged by token N" or "NOT discharged".
func (tp ThirdParty) Status() string {
	if tp.DischargedBy > 0 {
		return fmt.Sprintf("discharged by token %d", tp.DischargedBy)
	}
	return "NOT discharged"
}

// Describe describes every token of the bundle at time now.
func Describe(b *caveat.Bundle, now time.Time) []Token {
	out := make([]Token, len(b.Tokens))
	answers := answered(b)
	for i := range b.Tokens {
		m := &b.Tokens[i]
		t := Token{
			Number:    i + 1,
			Location:  m.Location,
			Discharge: b.IsDischarge(i),
			UUID:      m.Nonce.UUID().String(),
			Proof:     m.IsProof(),
			Caveats:   len(m.Caveats),
		}
		if t.Discharge {
			t.KeyID = fmt.Sprintf("ticket, %d bytes%s", len(m.Nonce.KID), dischargedCaveat(answers, i))
			out[i] = t
			continue
		}
		t.KeyID = kidText(m.Nonce.KID)
		var missing []string
		tps := b.ThirdParties(i)
		for _, tp := range tps {
			desc := ThirdParty{Index: tp.Caveat, Location: tp.Location, Ticket: tp.Ticket}
			if tp.Discharged() {
				desc.DischargedBy = tp.Discharges[0] + 1
			} else {
				missing = append(missing, fmt.Sprintf("%q", tp.Location))
			}
			t.ThirdParties = append(t.ThirdParties, desc)
		}
		t.Usable = usableText(b, i, len(t.ThirdParties), missing, now)
		t.Expires, t.TokenAlone = expiryText(b, i, len(tps) > 0, now)
		out[i] = t
	}
	return out
}

// Summary is "caveat tokens debug"'s human summary of the bundle at time
// now: a paragraph per token.
func Summary(b *caveat.Bundle, now time.Time) string {
	var s strings.Builder
	for _, t := range Describe(b, now) {
		role := "permission token"
		if t.Discharge {
			role = "discharge"
		}
		fmt.Fprintf(&s, "token %d: %s, location %q\n", t.Number, role, t.Location)
		fmt.Fprintf(&s, "  key id    %s\n", t.KeyID)
		fmt.Fprintf(&s, "  uuid      %s\n", t.UUID)
		fmt.Fprintf(&s, "  proof     %s\n", yesNo(t.Proof))
		fmt.Fprintf(&s, "  caveats   %d\n", t.Caveats)
		if t.Discharge {
			continue
		}
		for _, tp := range t.ThirdParties {
			fmt.Fprintf(&s, "  3P        caveat %d, %q: %s\n", tp.Index, tp.Location, tp.Status())
		}
		fmt.Fprintf(&s, "  usable    %s\n", t.Usable)
		fmt.Fprintf(&s, "  expires   %s\n", t.Expires)
		if t.TokenAlone != "" {
			fmt.Fprintf(&s, "            %s\n", t.TokenAlone)
		}
	}
	return s.String()
}

// View is the JSON form of one token: its location and caveats.
type View struct {
	Location string           `json:"location"`
	Caveats  caveat.CaveatSet `json:"caveats"`
}

// Views returns the JSON form of every token of the bundle, as "caveat
// tokens debug" prints it on stdout.
func Views(b *caveat.Bundle) []View {
	views := make([]View, len(b.Tokens))
	for i := range b.Tokens {
		views[i] = View{Location: b.Tokens[i].Location, Caveats: b.Tokens[i].Caveats}
	}
	return views
}

// usableText answers the question people bring to debug: can this token
// be used as it is, and until when? A token without third-party caveats
// needs no discharge; one with an undischarged caveat is unusable until a
// discharge is added, and its expiry applies only after that.
func usableText(b *caveat.Bundle, i, thirdParties int, missing []string, now time.Time) string {
	e := b.Expiry(i)
	until := "with no expiry"
	if !e.Never() {
		until = "until " + FormatTime(e.At)
		if !e.At.After(now) {
			until = "no longer: it expired at " + FormatTime(e.At)
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

// answer is a third-party caveat that a token of the bundle answers.
type answer struct{ token, caveat int }

// answered maps each token of b that answers a third-party caveat of
// another token to the first such caveat, in bundle and caveat order.
func answered(b *caveat.Bundle) map[int]answer {
	out := make(map[int]answer)
	for i := range b.Tokens {
		for _, tp := range b.ThirdParties(i) {
			for _, d := range tp.Discharges {
				if _, ok := out[d]; !ok {
					out[d] = answer{i, tp.Caveat}
				}
			}
		}
	}
	return out
}

// dischargedCaveat says which 3P caveat of which token discharge d covers.
func dischargedCaveat(answers map[int]answer, d int) string {
	if a, ok := answers[d]; ok {
		return fmt.Sprintf(" (discharges token %d, caveat %d)", a.token+1, a.caveat)
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

// expiryText describes the effective expiry of permission token i and,
// when a discharge decides it, the token's own expiry.
func expiryText(b *caveat.Bundle, i int, thirdParties bool, now time.Time) (expires, alone string) {
	e := b.Expiry(i)
	if e.Never() {
		if thirdParties {
			return "never: no ValidityWindow in the token or its discharges in this bundle", ""
		}
		return "never: no ValidityWindow", ""
	}
	at := fmt.Sprintf("%s (%s)", FormatTime(e.At), Relative(e.At, now))
	if e.Token == i {
		return fmt.Sprintf("%s, set by %s", at, caveatRef(b, e.Token, e.Caveat)), ""
	}
	// A discharge decides: say so, and what the token alone would give.
	expires = fmt.Sprintf("%s, set by a discharge, not the token itself: %s", at, caveatRef(b, e.Token, e.Caveat))
	if own, _, ok := b.Tokens[i].Expiry(); ok {
		return expires, fmt.Sprintf("the token alone expires %s (%s)", FormatTime(own), Relative(own, now))
	}
	return expires, "the token alone never expires"
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

// FormatTime is how times are shown: RFC 3339 in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Relative describes t relative to now: "in 10m30s", "expired 3h ago".
func Relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > 0:
		return "in " + ShortDuration(d)
	case d < 0:
		return "expired " + ShortDuration(-d) + " ago"
	}
	return "expires now"
}

// ShortDuration renders a positive duration in at most two units, rounded
// down to the second: "45s", "10m30s", "3h", "3h5m", "364d23h".
func ShortDuration(d time.Duration) string {
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
