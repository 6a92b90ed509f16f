package caveat

import (
	"errors"
	"fmt"
	"strings"
)

// Bundle is the list of tokens presented together, as in an Authorization
// header: permission tokens and the discharges of their third-party caveats
// (spec §1.3, §1.5).
type Bundle struct {
	// Tokens are the macaroons in the order given. fo1_ entries (Fly OAuth
	// tokens, not macaroons) are skipped.
	Tokens []Macaroon

	// inline holds the tokens of the common bundle (a token and its
	// discharge) in the Bundle's own allocation.
	inline [2]Macaroon
}

// EntryError reports a bundle entry that is not a usable token.
type EntryError struct {
	// Entry is the 1-based position of the entry in the header.
	Entry int
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("token %d: %v", e.Entry, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// StripScheme removes the Authorization scheme: surrounding whitespace, then
// any number of leading "FlyV1" or "Bearer" words, case-insensitively. Other
// schemes are left in place (and then fail as a token prefix).
func StripScheme(h string) string {
	h = strings.TrimSpace(h)
	for {
		i := strings.IndexByte(h, ' ')
		if i < 0 {
			return h
		}
		w := h[:i]
		if !strings.EqualFold(w, "FlyV1") && !strings.EqualFold(w, "Bearer") {
			return h
		}
		h = strings.TrimSpace(h[i+1:])
	}
}

// ParseBundle parses an Authorization header or a bare comma-separated
// token list. It accepts the FlyV1 and Bearer schemes or none, whitespace
// around entries, empty entries, the fm2_, fm1r_ and fm1a_ prefixes, and
// skips fo1_ entries. Any other entry, or one that does not decode, is an
// *EntryError naming its position and the reason; a truncated paste fails
// here rather than as a generic "unauthorized" later.
func ParseBundle(header string) (*Bundle, error) {
	if len(header) > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header is %d bytes (limit %d)", ErrLimit, len(header), MaxHeaderSize)
	}
	s := StripScheme(header)
	if strings.EqualFold(s, "FlyV1") || strings.EqualFold(s, "Bearer") {
		s = "" // a scheme with nothing after it
	}

	type span struct{ entry, start, end int }
	var spanStack [8]span
	spans := spanStack[:0]
	total := 0
	entry := 0
	for start := 0; start <= len(s); {
		end := strings.IndexByte(s[start:], ',')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		entry++
		text := strings.TrimSpace(s[start:end])
		tstart := start + strings.Index(s[start:end], text)
		start = end + 1
		if text == "" {
			continue
		}
		prefix, payload, ok := splitPrefix(text)
		switch {
		case ok && prefix == "fo1":
			continue
		case !ok:
			return nil, &EntryError{entry, fmt.Errorf("%w: not a token (no fm2_ prefix)", ErrMalformed)}
		case !macaroonPrefix(prefix):
			return nil, &EntryError{entry, fmt.Errorf("%w: unknown token prefix %q", ErrMalformed, truncate(prefix, 16))}
		case payload == "":
			return nil, &EntryError{entry, fmt.Errorf("%w: blank token", ErrMalformed)}
		}
		if len(spans) == MaxBundleTokens {
			return nil, fmt.Errorf("%w: more than %d tokens", ErrLimit, MaxBundleTokens)
		}
		spans = append(spans, span{entry, tstart, tstart + len(text)})
		total += len(payload) * 3 / 4
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("%w: no tokens found", ErrMalformed)
	}

	// One buffer holds every decoded token; the macaroons keep sub-slices of
	// it, and nothing writes to it after this function returns.
	buf := make([]byte, total+3*len(spans))
	b := new(Bundle)
	if len(spans) <= len(b.inline) {
		b.Tokens = b.inline[:len(spans):len(spans)]
	} else {
		b.Tokens = make([]Macaroon, len(spans))
	}
	raws := make([][]byte, 0, 8)[:0]
	ncaveats := 0
	for _, sp := range spans {
		_, payload, _ := splitPrefix(s[sp.start:sp.end])
		raw, err := decodeBase64(payload, buf)
		if err != nil {
			return nil, &EntryError{sp.entry, err}
		}
		buf = buf[len(raw):]
		raws = append(raws, raw)
		ncaveats += countCaveats(raw)
	}
	// One backing array for every token's caveats.
	caveats := make(CaveatSet, 0, ncaveats)
	for i, sp := range spans {
		text := s[sp.start:sp.end]
		m := &b.Tokens[i]
		if err := m.decode(raws[i], caveats); err != nil {
			return nil, &EntryError{sp.entry, err}
		}
		caveats = caveats[len(m.Caveats):len(m.Caveats)]
		if strings.HasPrefix(text, "fm2_") {
			m.text = text // re-emitted as given; legacy prefixes become fm2_
		}
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Header returns the bundle as an Authorization header value:
// "FlyV1 fm2_…,fm2_…".
func (b *Bundle) Header() string { return "FlyV1 " + b.String() }

// String returns the tokens joined with commas, without a scheme.
func (b *Bundle) String() string {
	parts := make([]string, len(b.Tokens))
	for i := range b.Tokens {
		parts[i] = b.Tokens[i].String()
	}
	return strings.Join(parts, ",")
}

// IsDischarge reports whether token i is a discharge: a proof, or a token
// whose nonce KID is the ticket of a third-party caveat of another token.
// The others are permission tokens. (The Location decides roles on a
// server, which knows its own; offline tools use this rule.)
func (b *Bundle) IsDischarge(i int) bool {
	d := &b.Tokens[i]
	if d.Nonce.Proof {
		return true
	}
	for j := range b.Tokens {
		if j != i && b.Tokens[j].dischargedBy(d) >= 0 {
			return true
		}
	}
	return false
}

// dischargedBy returns the index of m's 3P caveat whose ticket is d's KID,
// or -1.
func (m *Macaroon) dischargedBy(d *Macaroon) int {
	for i, c := range m.Caveats {
		if c.Type != Type3P {
			continue
		}
		if r, err := parse3P(c.Body); err == nil && len(r.ticket) > 0 && string(r.ticket) == string(d.Nonce.KID) {
			return i
		}
	}
	return -1
}

// Discharges returns the indexes of the tokens that discharge a 3P caveat
// of token i.
func (b *Bundle) Discharges(i int) []int {
	var out []int
	for j := range b.Tokens {
		if j != i && b.Tokens[i].dischargedBy(&b.Tokens[j]) >= 0 {
			out = append(out, j)
		}
	}
	return out
}

// KeyFunc returns the root key for a permission token's key ID, or an error
// when the key is unknown (or retired).
type KeyFunc func(kid []byte) (SigningKey, error)

// StaticKey is a KeyFunc that has one key for every key ID.
func StaticKey(key SigningKey) KeyFunc {
	return func([]byte) (SigningKey, error) { return key, nil }
}

// ErrNoPermissionToken means the bundle holds no token for the location.
var ErrNoPermissionToken = class("no permission token for this location", ErrInvalid)

// Verify verifies the bundle's permission tokens for location (those whose
// Location equals it) with their discharges, and returns the caveats of the
// first that verifies, with its index.
//
// The work is linear in the bundle however its tokens are arranged: each
// discharge is verified at most once however many 3P caveats and permission
// tokens name it, and contributes its caveats once to a verified set.
func (b *Bundle) Verify(location string, keys KeyFunc, trusted TrustedThirdParties) (CaveatSet, int, error) {
	return b.VerifyWith(location, keys, trusted, nil)
}

// VerifyWith is Verify with options: with opts.RevokedBranches, a permission
// token any of whose attenuation steps is a revoked branch is refused with
// ErrBranchRevoked (and the next one is tried, as for any refusal).
func (b *Bundle) VerifyWith(location string, keys KeyFunc, trusted TrustedThirdParties, opts *VerifyOptions) (CaveatSet, int, error) {
	var st verifierStack
	v := newVerifier(b.Tokens, trusted, &st)
	var firstErr error
	for i := range b.Tokens {
		m := &b.Tokens[i]
		if m.Location != location {
			continue
		}
		err := verifyToken(&v, m, keys, opts)
		if err == nil {
			return v.collect(m), i, nil
		}
		if errors.Is(err, errAborted) {
			return nil, -1, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		return nil, -1, b.noPermission(location)
	}
	return nil, -1, firstErr
}

func verifyToken(v *verifier, m *Macaroon, keys KeyFunc, opts *VerifyOptions) error {
	key, err := keys(m.Nonce.KID)
	if err != nil {
		return fmt.Errorf("key %x: %w", m.Nonce.KID, err)
	}
	var revoked BranchSet
	if opts != nil && opts.RevokedBranches != nil {
		if revoked, err = opts.RevokedBranches(m); err != nil {
			return fmt.Errorf("%w: revoked branches of the token with key id %x: %w", errAborted, m.Nonce.KID, err)
		}
	}
	return v.verifyParent(m, key, revoked)
}

func (b *Bundle) noPermission(location string) error {
	var locs []string
	for i := range b.Tokens {
		if !b.IsDischarge(i) {
			locs = append(locs, fmt.Sprintf("%q", b.Tokens[i].Location))
		}
	}
	if len(locs) == 0 {
		return fmt.Errorf("%w %q: the bundle holds only discharges", ErrNoPermissionToken, location)
	}
	return fmt.Errorf("%w %q (the bundle has permission tokens for %s)", ErrNoPermissionToken, location, strings.Join(locs, ", "))
}

// Authorize verifies the bundle for location and clears the access: it is
// allowed if any permission token for location verifies and allows it. The
// error of the first permission token is returned otherwise. After the
// first, a token is only asked whether it allows the access, and the
// caveats of a discharge that several tokens use are cleared once.
func (b *Bundle) Authorize(location string, keys KeyFunc, trusted TrustedThirdParties, a Access) error {
	var st verifierStack
	v := newVerifier(b.Tokens, trusted, &st)
	var firstErr error
	found, validated := false, false
	for i := range b.Tokens {
		m := &b.Tokens[i]
		if m.Location != location {
			continue
		}
		found = true
		err := verifyToken(&v, m, keys, nil)
		switch {
		case err == nil && firstErr == nil:
			err = v.collect(m).Clear(a)
		case err == nil:
			if !validated {
				if a.Validate() != nil {
					return firstErr
				}
				validated = true
			}
			if v.allows(m, a) {
				return nil
			}
			continue
		}
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if !found {
		return b.noPermission(location)
	}
	return firstErr
}
