// Package lifetime parses the lifetimes people give tokens: a Go duration
// ("30m", "720h", "1h30m") or a number of days, alone or before one
// ("30d", "1d12h"). The CLI's --expiry flags and the API's "expiry" field
// read the same forms, so that what works in one works in the other.
package lifetime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Max bounds a lifetime: a hundred years, far beyond any token's need and
// far below time.Duration's limit.
const Max = 100 * 365 * 24 * time.Hour

// Forms describes the accepted forms, for error messages and hints.
const Forms = "a duration such as 30m, 12h, 30d, 1d12h or 8760h"

// Parse returns the lifetime s names. It must be positive, at least a
// second (the resolution of a ValidityWindow), and at most Max.
func Parse(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty lifetime: want " + Forms)
	}
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil || i == 0 {
			return 0, fmt.Errorf("%q is not %s", s, Forms)
		}
		if days > uint64(Max/(24*time.Hour)) {
			return 0, fmt.Errorf("%q is longer than %s", s, describe(Max))
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = s[i+1:]
	}
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' && d > 0 {
			return 0, fmt.Errorf("%q is not %s", s, Forms)
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not %s", s, Forms)
		}
		d += r
	}
	switch {
	case d <= 0:
		return 0, fmt.Errorf("%q is not a positive lifetime", s)
	case d < time.Second:
		return 0, fmt.Errorf("%q is shorter than a second, the resolution of a ValidityWindow", s)
	case d > Max:
		return 0, fmt.Errorf("%q is longer than %s", s, describe(Max))
	}
	return d, nil
}

func describe(d time.Duration) string {
	return fmt.Sprintf("%d days", d/(24*time.Hour))
}
