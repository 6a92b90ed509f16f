package caveat

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
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
	// discharge), and inlineCaveats their caveats, in the Bundle's own
	// allocation.
	inline        [2]Macaroon
	inlineCaveats [16]RawCaveat
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
	for _, sp := range spans {
		_, payload, _ := splitPrefix(s[sp.start:sp.end])
		raw, err := decodeBase64(payload, buf)
		if err != nil {
			return nil, &EntryError{sp.entry, err}
		}
		buf = buf[len(raw):]
		raws = append(raws, raw)
	}
	// One backing array for every token's caveats: the Bundle's own for a
	// small header, which cannot hold many (a larger set only makes append
	// grow it), and one of the size the tokens declare otherwise.
	caveats := CaveatSet(b.inlineCaveats[:0])
	if total > smallHeader {
		n := 0
		for _, raw := range raws {
			n += countCaveats(raw)
		}
		if n > len(b.inlineCaveats) {
			caveats = make(CaveatSet, 0, n)
		}
	}
	for i, sp := range spans {
		text := s[sp.start:sp.end]
		m := &b.Tokens[i]
		var err error
		if caveats, err = m.decode(raws[i], caveats); err != nil {
			return nil, &EntryError{sp.entry, err}
		}
		if strings.HasPrefix(text, "fm2_") {
			m.text = text // re-emitted as given; legacy prefixes become fm2_
		}
	}
	return b, nil
}

// smallHeader is the decoded size up to which ParseBundle does not count
// the caveats of the tokens before decoding them.
const smallHeader = 1024

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

// KeyFunc returns the root key for a permission token's key ID, or an error
// when the key is unknown (or retired).
type KeyFunc func(kid []byte) (SigningKey, error)

// StaticKey is a KeyFunc that has one key for every key ID.
func StaticKey(key SigningKey) KeyFunc {
	return func([]byte) (SigningKey, error) { return key, nil }
}

// ErrNoPermissionToken means the bundle holds no token for the location.
var ErrNoPermissionToken = class("no permission token for this location", ErrInvalid)

// Verified is what a verification of a bundle established: which
// permission token verified, under which key, the caveats that each request
// must then clear, and which discharge answered each of the token's
// third-party caveats. A caller that needs to know whose key verified (the
// organization that owns it, say) looks KID up, rather than watching which
// keys its KeyFunc was asked for.
type Verified struct {
	// Token is the index in Bundle.Tokens of the permission token that
	// verified: the first for the location that does.
	Token int
	// KID is that token's nonce key ID: the key that KeyFunc returned for
	// it verified it. It aliases the bundle.
	KID []byte
	// Caveats are the verified caveats, to clear with CaveatSet.Clear: the
	// token's own, then those of each discharge used (once each, in the
	// order of the 3P caveats they first answer), with 3P caveats and
	// BindToParentToken consumed, and attestations kept only from a
	// discharge whose ticket a trusted key opens.
	Caveats CaveatSet
	// Discharges are the token's third-party caveats, in order, each with
	// the discharge that verification accepted for it. (Bundle.ThirdParties
	// relates them without verifying: it lists every candidate.)
	Discharges []Discharged

	inline [2]Discharged
}

// Discharged is a third-party caveat of a verified permission token and the
// discharge that answered it.
type Discharged struct {
	// Caveat is the 3P caveat's index in the permission token's Caveats.
	Caveat int
	// Discharge is the index in Bundle.Tokens of the discharge.
	Discharge int
}

// answered notes the discharges that the resolved 3P caveats ps found.
func (out *Verified) answered(ps []pending3P) {
	if out.Discharges == nil {
		out.Discharges = out.inline[:0]
	}
	for _, q := range ps {
		out.Discharges = append(out.Discharges, Discharged{Caveat: q.index, Discharge: int(q.answer)})
	}
}

// Verify verifies the bundle's permission tokens for location (those whose
// Location equals it) with their discharges, in bundle order, and describes
// the first that verifies. When none does, the error is the first token's
// refusal, or ErrNoPermissionToken when the bundle has none for location.
//
// The work is linear in the bundle however its tokens are arranged: each
// discharge is verified at most once however many 3P caveats and permission
// tokens name it, and contributes its caveats once to a verified set.
func (b *Bundle) Verify(location string, keys KeyFunc, trusted TrustedThirdParties) (*Verified, error) {
	return b.VerifyWith(location, keys, trusted, nil)
}

// VerifyWith is Verify with options: with opts.RevokedBranches, a permission
// token any of whose attenuation steps is a revoked branch is refused with
// ErrBranchRevoked (and the next one is tried, as for any refusal).
func (b *Bundle) VerifyWith(location string, keys KeyFunc, trusted TrustedThirdParties, opts *VerifyOptions) (*Verified, error) {
	var st verifierStack
	v := newVerifier(b.Tokens, trusted, &st)
	out := new(Verified)
	i, err := v.firstParent(b, location, keys, opts, out, nil)
	if err != nil {
		return nil, err
	}
	if i < 0 {
		return nil, b.noPermission(location)
	}
	return v.verified(out, b, i), nil
}

// firstParent verifies the permission tokens of b for location, in bundle
// order, until one verifies and accept (when not nil) takes it, and returns
// its index, having noted its discharges in out (when not nil). accept is
// told whether the token is the first for location, whose refusal is the
// one reported. Otherwise the index is -1 and the error the first token's,
// or nil when the bundle has no permission token for location; a failure
// of an opts callback (errAborted) ends the search at once.
func (v *verifier) firstParent(b *Bundle, location string, keys KeyFunc, opts *VerifyOptions, out *Verified, accept func(m *Macaroon, first bool) error) (int, error) {
	var firstErr error
	// settle ends the search with token i's err, or notes it and goes on.
	settle := func(i int, err error) (done bool) {
		if err == nil && accept != nil {
			err = accept(&b.Tokens[i], firstErr == nil)
		}
		if err == nil || errors.Is(err, errAborted) {
			return true
		}
		if firstErr == nil {
			firstErr = err
		}
		return false
	}
	n := b.parents(location)
	if n > 1 {
		ws, errs, at := v.walkAll(b, location, keys, opts)
		index := &lazyIndex{ws: ws, errs: errs}
		for k := range ws {
			err := errs[k]
			if err == nil {
				tid := tailIDs{tails: ws[k].tails, ids: ws[k].ids}
				err = v.resolveAll(&ws[k], binder{tid: &tid, index: index, parent: k})
			}
			if settle(at[k], err) {
				if err != nil {
					return -1, err
				}
				if out != nil {
					out.answered(ws[k].pending)
				}
				return at[k], nil
			}
		}
		return -1, firstErr
	}
	for i := range b.Tokens {
		m := &b.Tokens[i]
		if m.Location != location {
			continue
		}
		err := verifyToken(v, m, keys, opts, out)
		if settle(i, err) {
			if err != nil {
				return -1, err
			}
			return i, nil
		}
	}
	return -1, firstErr
}

// verified completes out for token i of b, which v has just verified.
func (v *verifier) verified(out *Verified, b *Bundle, i int) *Verified {
	m := &b.Tokens[i]
	out.Token, out.KID, out.Caveats = i, m.Nonce.KID, v.collect(m)
	return out
}

// parents counts the permission tokens for location.
func (b *Bundle) parents(location string) int {
	n := 0
	for i := range b.Tokens {
		if b.Tokens[i].Location == location {
			n++
		}
	}
	return n
}

// walkAll walks the chains of every permission token for location, in
// order, asking keys and opts for each: when several are verified, they are
// walked together first, so that their bindings are checked against one
// index (see binding.go). It returns them with why each is refused, if it
// is, and their places in the bundle.
func (v *verifier) walkAll(b *Bundle, location string, keys KeyFunc, opts *VerifyOptions) (ws []walked, errs []error, at []int) {
	for i := range b.Tokens {
		m := &b.Tokens[i]
		if m.Location != location {
			continue
		}
		at = append(at, i)
		key, revoked, err := tokenKey(m, keys, opts)
		var w walked
		if err == nil {
			w, err = v.walk(m, key, revoked, nil, nil, nil)
		}
		ws, errs = append(ws, w), append(errs, err)
	}
	return ws, errs, at
}

// verifyToken verifies permission token m, noting its discharges in out
// (when not nil).
func verifyToken(v *verifier, m *Macaroon, keys KeyFunc, opts *VerifyOptions, out *Verified) error {
	key, revoked, err := tokenKey(m, keys, opts)
	if err != nil {
		return err
	}
	return v.verifyParent(m, key, revoked, out)
}

// tokenKey asks for m's key and, with opts, its revoked branches.
func tokenKey(m *Macaroon, keys KeyFunc, opts *VerifyOptions) (SigningKey, BranchSet, error) {
	key, err := keys(m.Nonce.KID)
	if err != nil {
		return nil, nil, fmt.Errorf("key %x: %w", m.Nonce.KID, err)
	}
	var revoked BranchSet
	if opts != nil && opts.RevokedBranches != nil {
		if revoked, err = opts.RevokedBranches(m); err != nil {
			return nil, nil, fmt.Errorf("%w: revoked branches of the token with key id %x: %w", errAborted, m.Nonce.KID, err)
		}
	}
	return key, revoked, nil
}

func (b *Bundle) noPermission(location string) error {
	// Which tokens are discharges, as IsDischarge says, for all of them at
	// once: each token's tickets are read once.
	type owned struct {
		ticket []byte
		owner  int
	}
	var all []owned
	for i := range b.Tokens {
		for _, t := range b.Tokens[i].tickets(nil) {
			all = append(all, owned{t, i})
		}
	}
	slices.SortFunc(all, func(x, y owned) int { return bytes.Compare(x.ticket, y.ticket) })
	isDischarge := func(i int) bool {
		d := &b.Tokens[i]
		if d.Nonce.Proof {
			return true
		}
		k, _ := slices.BinarySearchFunc(all, d.Nonce.KID, func(o owned, kid []byte) int { return bytes.Compare(o.ticket, kid) })
		// The run of this ticket may hold token i's own 3P caveats (at
		// most its caveats) before another owner's.
		for ; k < len(all) && bytes.Equal(all[k].ticket, d.Nonce.KID); k++ {
			if all[k].owner != i {
				return true
			}
		}
		return false
	}
	var locs []string
	for i := range b.Tokens {
		if !isDischarge(i) {
			locs = append(locs, fmt.Sprintf("%q", b.Tokens[i].Location))
		}
	}
	if len(locs) == 0 {
		return fmt.Errorf("%w %q: the bundle holds only discharges", ErrNoPermissionToken, location)
	}
	return fmt.Errorf("%w %q (the bundle has permission tokens for %s)", ErrNoPermissionToken, location, strings.Join(locs, ", "))
}

// errNotAllowed is a later permission token's refusal in Authorize, which
// is never reported: the first token's is.
var errNotAllowed = errors.New("the access is not allowed")

// Authorize verifies the bundle for location and clears the access: it is
// allowed if any permission token for location verifies and allows it. The
// error of the first permission token is returned otherwise. After the
// first, a token is only asked whether it allows the access, and the
// caveats of a discharge that several tokens use are cleared once.
func (b *Bundle) Authorize(location string, keys KeyFunc, trusted TrustedThirdParties, a Access) error {
	var st verifierStack
	v := newVerifier(b.Tokens, trusted, &st)
	validated := false
	// The first token is cleared fully, since its refusal is the one
	// reported; after that a token is only asked whether it allows.
	i, err := v.firstParent(b, location, keys, nil, nil, func(m *Macaroon, first bool) error {
		if first {
			return v.clearVerified(m, a)
		}
		if !validated {
			if a.Validate() != nil {
				return errNotAllowed
			}
			validated = true
		}
		if !v.allows(m, a) {
			return errNotAllowed
		}
		return nil
	})
	if err == nil && i < 0 {
		return b.noPermission(location)
	}
	return err
}
