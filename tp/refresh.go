package tp

import (
	"time"

	"github.com/caveatdev/caveat"
)

// Discharges are short-lived (a login discharge lasts minutes) while the
// permission tokens they satisfy last for months, so a holder renews them:
// before each use, it drops the discharges that are about to expire and
// fetches new ones.
//
//	if tp.NeedsRefresh(b, now, time.Minute) {
//		header, err = client.FetchDischarges(ctx, tp.DropExpiring(b, now, time.Minute).Header(), location)
//	}

// discharges returns which tokens of b discharge a third-party caveat of
// another token of b.
func discharges(b *caveat.Bundle) []bool {
	is := make([]bool, len(b.Tokens))
	for i := range b.Tokens {
		for _, j := range b.Discharges(i) {
			is[j] = true
		}
	}
	return is
}

// DischargeExpiry returns the earliest end of a ValidityWindow among the
// bundle's discharges, and false when none has one.
func DischargeExpiry(b *caveat.Bundle) (time.Time, bool) {
	var earliest time.Time
	found := false
	for i, d := range discharges(b) {
		if !d {
			continue
		}
		if at, _, ok := b.Tokens[i].Expiry(); ok && (!found || at.Before(earliest)) {
			earliest, found = at, true
		}
	}
	return earliest, found
}

// Expiring returns the indexes of the bundle's discharges that expire
// within margin of now (their ValidityWindow ends at or before now+margin),
// the expired ones included.
func Expiring(b *caveat.Bundle, now time.Time, margin time.Duration) []int {
	limit := now.Add(margin)
	var out []int
	for i, d := range discharges(b) {
		if !d {
			continue
		}
		if at, _, ok := b.Tokens[i].Expiry(); ok && !at.After(limit) {
			out = append(out, i)
		}
	}
	return out
}

// NeedsRefresh reports whether a discharge of the bundle expires within
// margin of now. (Missing discharges are FetchDischarges' business: it
// fetches every one that is missing.)
func NeedsRefresh(b *caveat.Bundle, now time.Time, margin time.Duration) bool {
	return len(Expiring(b, now, margin)) > 0
}

// DropExpiring returns a new bundle with the tokens of b, in order, except
// the discharges that Expiring reports. FetchDischarges then fetches their
// replacements. Permission tokens are never dropped.
func DropExpiring(b *caveat.Bundle, now time.Time, margin time.Duration) *caveat.Bundle {
	drop := make(map[int]bool)
	for _, i := range Expiring(b, now, margin) {
		drop[i] = true
	}
	out := &caveat.Bundle{Tokens: make([]caveat.Macaroon, 0, len(b.Tokens)-len(drop))}
	for i := range b.Tokens {
		if !drop[i] {
			out.Tokens = append(out.Tokens, b.Tokens[i])
		}
	}
	return out
}
