package caveat

// Verification cost is linear in the bundle (issue 14, sections 3 and 4):
// hostile bundles built at the limits (MaxHeaderSize, MaxBundleTokens,
// MaxCaveats) are verified while the package counts its cryptographic
// operations (HMAC-SHA256, ChaCha20-Poly1305 open attempts, SHA-256 of a
// tail), and the count must stay within a small constant times the number
// of caveats and tokens in the bundle. A count, not a timing: the test is
// deterministic on any machine.

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/caveatdev/caveat/internal/msgpack"
)

// opsPerItem is the budget: cryptographic operations per caveat or token of
// the input. A caveat costs one HMAC (two for a token's nonce and a proof's
// finalisation), a 3P caveat one open more, and a binding or a revoked-branch
// check one SHA-256 per tail of the parent.
const opsPerItem = 4

const (
	costLocation = "https://api.example/v1"
	costTP       = "tp"
)

// costBuilder makes the tokens of hostile bundles with chosen discharge keys
// and tickets, which a holder can do for any token it holds (it knows every
// tail).
type costBuilder struct {
	tb      testing.TB
	key     SigningKey
	ka      EncryptionKey
	tiny    CaveatType // an unregistered type with a one-byte code
	trusted TrustedThirdParties
}

func newCostBuilder(tb testing.TB) *costBuilder {
	tb.Helper()
	b := &costBuilder{tb: tb, key: NewSigningKey(), ka: NewEncryptionKey()}
	for t := CaveatType(100); t < 128; t++ {
		if _, ok := Lookup(t); !ok {
			b.tiny = t
			break
		}
	}
	if b.tiny == 0 {
		tb.Fatal("no unregistered one-byte caveat type")
	}
	// The third party is trusted, so that every 3P caveat also tries its
	// key on the discharge's ticket.
	b.trusted = TrustedThirdParties{costTP: {b.ka}}
	return b
}

func randBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// tinyCaveat is a 3-byte caveat of an unregistered type.
func (b *costBuilder) tinyCaveat(i int) RawCaveat {
	return RawCaveat{Type: b.tiny, Body: []byte{byte(i & 0x7f)}}
}

// nestedCaveat is an unregistered caveat whose body nests arrays to MaxDepth.
func (b *costBuilder) nestedCaveat(i int) RawCaveat {
	body := append(bytesRepeat(0x91, MaxDepth-2), 0x91, byte(i&0x7f))
	return RawCaveat{Type: b.tiny, Body: body}
}

func bytesRepeat(c byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func (b *costBuilder) perm() *Macaroon {
	b.tb.Helper()
	m, err := Mint(b.key, NewNonce([]byte("cost-kid"), false), costLocation)
	if err != nil {
		b.tb.Fatal(err)
	}
	return m
}

// clone copies a token so that it can be attenuated on its own.
func (b *costBuilder) clone(m *Macaroon) *Macaroon {
	b.tb.Helper()
	c, err := Decode(m.Encode())
	if err != nil {
		b.tb.Fatal(err)
	}
	return c
}

// add3P appends a third-party caveat with the given ticket and discharge
// key, sealed under the current tail.
func (b *costBuilder) add3P(m *Macaroon, ticket, rn []byte) {
	b.tb.Helper()
	vk, err := seal(m.tail, rn)
	if err != nil {
		b.tb.Fatal(err)
	}
	m.appendCaveat(Encode(&Caveat3P{Location: costTP, VerifierKey: vk, Ticket: ticket}), false)
}

// ticket seals a real ticket for rn under the trusted key.
func (b *costBuilder) ticket(rn []byte) []byte {
	b.tb.Helper()
	plain := msgpack.AppendArrayHeader(nil, 2)
	plain = msgpack.AppendBin(plain, rn)
	plain = CaveatSet{}.AppendEncoded(plain)
	t, err := seal(b.ka[:], plain)
	if err != nil {
		b.tb.Fatal(err)
	}
	return t
}

func (b *costBuilder) add(m *Macaroon, cs ...RawCaveat) {
	for _, c := range cs {
		m.appendCaveat(c, false)
	}
}

// discharge mints a finalised discharge for ticket under rn with the given
// caveats, duplicates kept.
func (b *costBuilder) discharge(rn, ticket []byte, cs ...RawCaveat) *Macaroon {
	b.tb.Helper()
	d, err := Mint(SigningKey(rn), NewNonce(ticket, true), costTP)
	if err != nil {
		b.tb.Fatal(err)
	}
	b.add(d, cs...)
	out, err := Decode(d.Encode())
	if err != nil {
		b.tb.Fatal(err)
	}
	return out
}

func bindTo(tail []byte) RawCaveat {
	var t [tailSize]byte
	copy(t[:], tail)
	id := bindingID(t)
	bind := BindToParentToken(id[:bindingIDSize])
	return Encode(&bind)
}

func costHeader(tb testing.TB, ms ...*Macaroon) string {
	tb.Helper()
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	h := "FlyV1 " + strings.Join(parts, ",")
	if len(h) > MaxHeaderSize {
		tb.Fatalf("header is %d bytes, over MaxHeaderSize", len(h))
	}
	return h
}

// costCase is one hostile bundle.
type costCase struct {
	name   string
	header string
	ok     bool   // whether the bundle verifies
	access Access // when set, Authorize is measured instead of Verify
}

// denyAll refuses through its Validate, so that Authorize tries every
// permission token after verifying it.
type costAccess struct{ now time.Time }

func (a costAccess) Now() time.Time  { return a.now }
func (a costAccess) Validate() error { return nil }

// costCases builds the bundles of the issue and of its kin, as large as the
// limits allow.
func costCases(tb testing.TB, b *costBuilder) []costCase {
	var cases []costCase

	// The construction: P 3P caveats sharing one ticket (each
	// verifier key sealed under the tail at that point) and one discharge
	// with 1023 BindToParentToken caveats naming a real tail: t0, the
	// farthest from the end, or every tail in turn.
	for _, variant := range []string{"t0", "every tail", "last tail, 1023 tiny caveats"} {
		m := b.perm()
		tails := [][]byte{m.tail}
		rn := randBytes(tb, dischargeKeySize)
		ticket := b.ticket(rn)
		const p = 450
		for range p {
			b.add3P(m, ticket, rn)
			tails = append(tails, m.tail)
		}
		var dcs []RawCaveat
		for i := range MaxCaveats - 1 {
			switch variant {
			case "t0":
				dcs = append(dcs, bindTo(tails[0]))
			case "every tail":
				dcs = append(dcs, bindTo(tails[i%len(tails)]))
			default:
				dcs = append(dcs, b.tinyCaveat(i))
			}
		}
		if variant != "t0" && variant != "every tail" {
			dcs = append(dcs, bindTo(tails[len(tails)-1]))
		}
		d := b.discharge(rn, ticket, dcs...)
		cases = append(cases, costCase{name: "shared ticket, one discharge, binding " + variant,
			header: costHeader(tb, m, d), ok: true})
	}

	// Many 3P caveats sharing a ticket and key, and 62 bogus discharges for
	// that ticket (signed with other keys) before the good one.
	{
		m := b.perm()
		rn := randBytes(tb, dischargeKeySize)
		ticket := b.ticket(rn)
		for range 400 {
			b.add3P(m, ticket, rn)
		}
		tokens := []*Macaroon{m}
		var tiny []RawCaveat
		for i := range 600 {
			tiny = append(tiny, b.tinyCaveat(i))
		}
		for range MaxBundleTokens - 2 {
			tokens = append(tokens, b.discharge(randBytes(tb, dischargeKeySize), ticket, tiny...))
		}
		tokens = append(tokens, b.discharge(rn, ticket, tiny...))
		cases = append(cases, costCase{name: "shared ticket, 62 bogus discharges then the good one",
			header: costHeader(tb, tokens...), ok: true})
	}

	// 3P caveats sharing one ticket, each with its own discharge key, and a
	// discharge for each key under that ticket, last key first.
	{
		m := b.perm()
		ticket := randBytes(tb, 16)
		var rns [][]byte
		for range MaxBundleTokens - 1 {
			rn := randBytes(tb, dischargeKeySize)
			rns = append(rns, rn)
			b.add3P(m, ticket, rn)
		}
		tokens := []*Macaroon{m}
		var tiny []RawCaveat
		for i := range 900 {
			tiny = append(tiny, b.tinyCaveat(i))
		}
		for i := len(rns) - 1; i >= 0; i-- {
			tokens = append(tokens, b.discharge(rns[i], ticket, tiny...))
		}
		cases = append(cases, costCase{name: "shared ticket, a discharge key per caveat, 63 discharges",
			header: costHeader(tb, tokens...)})
	}

	// Many discharges: 63 tickets, each named by many 3P caveats.
	{
		m := b.perm()
		const nd = MaxBundleTokens - 1
		var rns, tickets [][]byte
		for range nd {
			rn := randBytes(tb, dischargeKeySize)
			rns = append(rns, rn)
			tickets = append(tickets, randBytes(tb, 16))
		}
		for i := range 640 {
			b.add3P(m, tickets[i%nd], rns[i%nd])
		}
		var tiny []RawCaveat
		for i := range 600 {
			tiny = append(tiny, b.tinyCaveat(i))
		}
		tokens := []*Macaroon{m}
		for i := range nd {
			tokens = append(tokens, b.discharge(rns[i], tickets[i], tiny...))
		}
		cases = append(cases, costCase{name: "63 discharges, each for ~10 caveats",
			header: costHeader(tb, tokens...), ok: true})
	}

	// Many permission tokens: 62 attenuations of one token that share a big
	// discharge, each then failing on a second discharge bound elsewhere
	// (Verify), or verifying and then denied (Authorize).
	for _, authorize := range []bool{false, true} {
		root := b.perm()
		rn, ticket := randBytes(tb, dischargeKeySize), randBytes(tb, 16)
		b.add3P(root, ticket, rn)
		bound := root.tail
		rn2, ticket2 := randBytes(tb, dischargeKeySize), randBytes(tb, 16)
		var tokens []*Macaroon
		for i := range MaxBundleTokens - 2 {
			m := b.clone(root)
			b.add(m, b.tinyCaveat(i))
			b.add3P(m, ticket2, rn2)
			tokens = append(tokens, m)
		}
		big := []RawCaveat{bindTo(bound)}
		for i := range MaxCaveats - 1 {
			big = append(big, b.tinyCaveat(i))
		}
		second := bindTo(randBytes(tb, tailSize))
		if authorize {
			second = bindTo(bound)
		}
		tokens = append(tokens, b.discharge(rn, ticket, big...), b.discharge(rn2, ticket2, second))
		c := costCase{name: "62 permission tokens sharing a 1024-caveat discharge",
			header: costHeader(tb, tokens...)}
		if authorize {
			c.name += ", Authorize"
			c.access = costAccess{time.Unix(1764000000, 0)}
		}
		cases = append(cases, c)
	}

	// Deep nesting: caveats whose bodies nest to MaxDepth, in the token and in
	// a discharge that many caveats share.
	{
		m := b.perm()
		rn, ticket := randBytes(tb, dischargeKeySize), randBytes(tb, 16)
		for i := range 300 {
			b.add(m, b.nestedCaveat(i))
			b.add3P(m, ticket, rn)
		}
		var nested []RawCaveat
		for i := range MaxCaveats {
			nested = append(nested, b.nestedCaveat(i))
		}
		d := b.discharge(rn, ticket, nested...)
		cases = append(cases, costCase{name: "nesting to MaxDepth, shared discharge",
			header: costHeader(tb, m, d), ok: true})
	}

	// Many permission tokens of 1024 tiny caveats each, all for the location
	// and all failing their signature: the plain linear worst case.
	{
		var tokens []*Macaroon
		for i := range MaxBundleTokens {
			m := b.perm()
			for j := range 800 {
				b.add(m, b.tinyCaveat(i+j))
			}
			m.tail = randBytes(tb, tailSize)
			tokens = append(tokens, m)
		}
		cases = append(cases, costCase{name: "64 tokens of 800 tiny caveats, bad signatures",
			header: costHeader(tb, tokens...)})
	}
	return cases
}

// countOps runs f while counting the package's cryptographic operations.
func countOps(f func()) (hmacs, opens, hashes int64) {
	opCount.hmac.Store(0)
	opCount.open.Store(0)
	opCount.hash.Store(0)
	counting.Store(true)
	f()
	counting.Store(false)
	return opCount.hmac.Load(), opCount.open.Load(), opCount.hash.Load()
}

// TestVerificationCostIsLinear holds verification of hostile bundles at the
// limits to at most opsPerItem cryptographic operations per caveat or token
// of the input, and the verified set to at most the input's caveats.
func TestVerificationCostIsLinear(t *testing.T) {
	b := newCostBuilder(t)
	// A revoked-branch set that names none of the tokens' steps: every tail
	// is then hashed once more, in the walk.
	revoked := BranchSet{BranchID(randBytes(t, bindingIDSize)): {}}
	withRevoked := &VerifyOptions{RevokedBranches: func(*Macaroon) (BranchSet, error) { return revoked, nil }}
	for _, c := range costCases(t, b) {
		for _, opts := range []*VerifyOptions{nil, withRevoked} {
			if opts != nil && c.access != nil {
				continue
			}
			name := c.name
			if opts != nil {
				name += ", revoked branches"
			}
			t.Run(name, func(t *testing.T) {
				bundle, err := ParseBundle(c.header)
				if err != nil {
					t.Fatal(err)
				}
				items := len(bundle.Tokens)
				for i := range bundle.Tokens {
					items += len(bundle.Tokens[i].Caveats)
				}
				var cs CaveatSet
				var verr error
				hmacs, opens, hashes := countOps(func() {
					if c.access != nil {
						verr = bundle.Authorize(costLocation, StaticKey(b.key), b.trusted, c.access)
					} else {
						cs, _, verr = verifiedParts(bundle.VerifyWith(costLocation, StaticKey(b.key), b.trusted, opts))
					}
				})
				total := hmacs + opens + hashes
				t.Logf("%d bytes, %d tokens, %d caveats + tokens: %d HMAC + %d open + %d SHA-256 = %d operations (%.2f per item); verified set %d; %.200v",
					len(c.header), len(bundle.Tokens), items, hmacs, opens, hashes, total, float64(total)/float64(items), len(cs), verr)
				if total > int64(opsPerItem*items) {
					t.Errorf("%d cryptographic operations for %d caveats and tokens: over %d per item", total, items, opsPerItem)
				}
				if c.ok && verr != nil {
					t.Errorf("the bundle should verify: %v", verr)
				}
				if !c.ok && verr == nil {
					t.Errorf("the bundle verified")
				}
				if len(cs) > items-len(bundle.Tokens) {
					t.Errorf("verified set of %d caveats from an input of %d", len(cs), items-len(bundle.Tokens))
				}
			})
		}
	}
}
