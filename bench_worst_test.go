package caveat

// The worst bundles we know how to build within the limits, for the
// benchmarks in BENCHMARKS.md (BenchmarkVerifyWorst, next to
// BenchmarkVerifyAndClear's autoscaler bundle). Each reports ns/byte of
// header. Run:
//
//	go test -run '^$' -bench 'VerifyWorst|VerifyAndClear|Autoscaler' -benchmem -count 6 .

import (
	"testing"
)

type worstBundle struct {
	name   string
	header string
}

// worstBundles builds, within MaxHeaderSize, MaxBundleTokens and
// MaxCaveats:
//   - tiny caveats: 64 permission tokens of tiny caveats with bad
//     signatures, the most HMACs per byte (one per 2-byte caveat);
//   - the same made genuine (attenuations of one token) with two 3P
//     caveats whose discharges make every tail be hashed twice (once in
//     the token's own lookup, once into the binding index, which is
//     sorted), before each token is refused;
//   - bindings: 32 permission tokens sharing a trunk of tiny caveats, each
//     with a 3P caveat for each of 31 discharges that bind to every trunk
//     tail (2-byte prefixes, so that each discharge is a prefix-free set of
//     many short bindings), and a last discharge that binds elsewhere, so
//     that every token does every binding lookup and then fails: the most
//     binding lookups per byte;
//   - the issue's: one token with 450 3P caveats sharing a ticket and a
//     discharge with 1023 bindings to t0.
func worstBundles(tb testing.TB, b *costBuilder) []worstBundle {
	var out []worstBundle
	{
		var tokens []*Macaroon
		for i := range MaxBundleTokens {
			m := b.perm()
			for j := range MaxCaveats - 4 {
				b.add(m, b.tinyCaveat(i+j))
			}
			m.tail = randBytes(tb, tailSize)
			tokens = append(tokens, m)
		}
		out = append(out, worstBundle{"tiny caveats", costHeader(tb, tokens...)})
	}
	{
		// The same made genuine: attenuations of one token with two 3P
		// caveats. The first's discharge binds to the token as minted, so
		// each token hashes every tail looking for it; the second's has
		// five bindings (more than fewBindings), so they are looked up in
		// the index of every token's tails, hashed and sorted, where they
		// fail: each token is refused after all that.
		root := b.perm()
		t0 := root.tail
		rn1, ticket1 := randBytes(tb, dischargeKeySize), randBytes(tb, 4)
		rn2, ticket2 := randBytes(tb, dischargeKeySize), randBytes(tb, 4)
		b.add3P(root, ticket1, rn1)
		b.add3P(root, ticket2, rn2)
		var tokens []*Macaroon
		for i := range MaxBundleTokens - 2 {
			m := b.clone(root)
			for j := range MaxCaveats - 6 {
				b.add(m, b.tinyCaveat(i+j))
			}
			tokens = append(tokens, m)
		}
		var five []RawCaveat
		for range 5 {
			five = append(five, bindTo(randBytes(tb, tailSize)))
		}
		tokens = append(tokens, b.discharge(rn1, ticket1, bindTo(t0)), b.discharge(rn2, ticket2, five...))
		out = append(out, worstBundle{"tiny caveats, genuine, bindings", costHeader(tb, tokens...)})
	}
	{
		const parents, trunk = 32, 300
		root := b.perm()
		tails := [][]byte{root.tail}
		for j := range trunk {
			b.add(root, b.tinyCaveat(j))
			tails = append(tails, root.tail)
		}
		var binds []RawCaveat
		seen := map[[2]byte]bool{}
		for _, tl := range tails {
			var t [tailSize]byte
			copy(t[:], tl)
			id := bindingID(t)
			if k := [2]byte{id[0], id[1]}; !seen[k] {
				seen[k] = true
				v := BindToParentToken(id[:2])
				binds = append(binds, Encode(&v))
			}
		}
		nd := MaxBundleTokens - parents
		var rns, tickets [][]byte
		for range nd {
			rns = append(rns, randBytes(tb, dischargeKeySize))
			tickets = append(tickets, randBytes(tb, 4))
		}
		var tokens []*Macaroon
		for range parents {
			m := b.clone(root)
			for j := range nd {
				b.add3P(m, tickets[j], rns[j])
			}
			tokens = append(tokens, m)
		}
		for j := range nd - 1 {
			tokens = append(tokens, b.discharge(rns[j], tickets[j], binds...))
		}
		tokens = append(tokens, b.discharge(rns[nd-1], tickets[nd-1], bindTo(randBytes(tb, tailSize))))
		out = append(out, worstBundle{"bindings", costHeader(tb, tokens...)})
	}
	{
		m := b.perm()
		rn := randBytes(tb, dischargeKeySize)
		ticket := b.ticket(rn)
		t0 := m.tail
		for range 450 {
			b.add3P(m, ticket, rn)
		}
		var dcs []RawCaveat
		for range MaxCaveats - 1 {
			dcs = append(dcs, bindTo(t0))
		}
		out = append(out, worstBundle{"issue", costHeader(tb, m, b.discharge(rn, ticket, dcs...))})
	}
	return out
}

// BenchmarkVerifyWorst parses and verifies each worst bundle, as a server
// does with a header, and reports the cost per byte.
func BenchmarkVerifyWorst(b *testing.B) {
	cb := newCostBuilder(b)
	for _, w := range worstBundles(b, cb) {
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bundle, err := ParseBundle(w.header)
				if err != nil {
					b.Fatal(err)
				}
				_, _, _ = verifiedParts(bundle.Verify(costLocation, StaticKey(cb.key), cb.trusted))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(w.header)), "ns/byte")
			b.ReportMetric(float64(len(w.header)), "bytes")
		})
	}
}

// TestWorstBundlesAreLinear runs the benchmarks' bundles through the
// operation count of TestVerificationCostIsLinear, so that they are what
// they claim to be: within the limits, and refused or verified as meant.
func TestWorstBundlesAreLinear(t *testing.T) {
	cb := newCostBuilder(t)
	for _, w := range worstBundles(t, cb) {
		bundle, err := ParseBundle(w.header)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		items := len(bundle.Tokens)
		for i := range bundle.Tokens {
			items += len(bundle.Tokens[i].Caveats)
		}
		var verr error
		h, o, s := countOps(func() { _, _, verr = verifiedParts(bundle.Verify(costLocation, StaticKey(cb.key), cb.trusted)) })
		t.Logf("%s: %d bytes, %d items, %d HMAC + %d open + %d SHA-256; %v", w.name, len(w.header), items, h, o, s, verr)
		if h+o+s > int64(opsPerItem*items) {
			t.Errorf("%s: %d operations for %d items", w.name, h+o+s, items)
		}
		if (verr == nil) != (w.name == "issue") {
			t.Errorf("%s: %v", w.name, verr)
		}
	}
}
