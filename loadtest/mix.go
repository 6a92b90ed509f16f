package loadtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Mix weighs the four groups of requests. Weights need not add up to 100;
// a group with weight 0 is never sent.
type Mix struct {
	Authorize    int
	Authenticate int
	Machines     int
	Tokens       int
}

// DefaultMix is the mix: 90 % authorize or authenticate, 8 %
// machine start or stop, 2 % mint or revoke.
var DefaultMix = Mix{Authorize: 70, Authenticate: 20, Machines: 8, Tokens: 2}

// The group names, as ParseMix and String spell them.
var mixNames = []string{"authorize", "authenticate", "machines", "tokens"}

func (m *Mix) weights() []*int {
	return []*int{&m.Authorize, &m.Authenticate, &m.Machines, &m.Tokens}
}

// ParseMix parses "authorize=70,authenticate=20,machines=8,tokens=2".
// Groups left out weigh 0; at least one must weigh more.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix: %q is not NAME=WEIGHT", part)
		}
		i := slices.Index(mixNames, name)
		if i < 0 {
			return Mix{}, fmt.Errorf("mix: unknown group %q (known: %s)", name, strings.Join(mixNames, ", "))
		}
		if seen[name] {
			return Mix{}, fmt.Errorf("mix: %s is given twice", name)
		}
		seen[name] = true
		w, err := strconv.Atoi(val)
		if err != nil || w < 0 || w > 1_000_000 {
			return Mix{}, fmt.Errorf("mix: the weight of %s must be a whole number from 0 to 1000000, not %q", name, val)
		}
		*m.weights()[i] = w
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("mix: every weight is 0")
	}
	return m, nil
}

// String renders the mix as ParseMix reads it.
func (m Mix) String() string {
	parts := make([]string, len(mixNames))
	for i, w := range m.weights() {
		parts[i] = fmt.Sprintf("%s=%d", mixNames[i], *w)
	}
	return strings.Join(parts, ",")
}

func (m Mix) total() int {
	t := 0
	for _, w := range m.weights() {
		t += *w
	}
	return t
}

// pick returns the index of a group (in mixNames order) drawn by weight.
func (m Mix) pick(r *rand.Rand) int {
	n := r.IntN(m.total())
	for i, w := range m.weights() {
		if n < *w {
			return i
		}
		n -= *w
	}
	return len(mixNames) - 1 // not reached: n < total
}
