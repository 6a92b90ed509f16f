package caveat_test

// Benchmarks on the autoscaler bundle of issue 2: a permission token with
// Organization{4721, rwcdC}, Apps{555: rwcdC}, a one-year ValidityWindow, a
// 3P caveat to the login service (ticket caveat ConfineOrganization{4721})
// and Machines{"": rC}; and its login discharge, a proof with a 10 min 30 s
// ValidityWindow, FlyioUserID(42) and BindToParentToken.
//
// BenchmarkStdlibCryptoOnly does only the cryptography that verifying the
// bundle needs, with the standard library: VerifyAndClear must cost no more.
// The worst bundles within the limits are in bench_worst_test.go. Run:
//
//	go test -run '^$' -bench . -benchmem -count 6 .

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/wire"
	"github.com/caveatdev/caveat/resset"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	benchLocation = "https://caveat.example/v1"
	benchLogin    = "https://caveat.example/aaa/v1"
)

type autoscalerFixture struct {
	key      caveat.SigningKey
	tpKey    caveat.EncryptionKey
	now      time.Time
	perm     *caveat.Macaroon
	header   string
	trusted  caveat.TrustedThirdParties
	access   *flyio.Access
	machines caveat.Caveat
}

func newAutoscalerFixture(tb testing.TB) *autoscalerFixture {
	tb.Helper()
	f := &autoscalerFixture{
		key:   caveat.NewSigningKey(),
		tpKey: caveat.NewEncryptionKey(),
		now:   time.Unix(1764000000, 0),
	}
	perm, err := caveat.Mint(f.key, caveat.NewNonce([]byte("0123456789abcdef"), false), benchLocation,
		&flyio.Organization{ID: 4721, Mask: resset.ActionAll},
		&flyio.Apps{Apps: resset.ResourceSet[uint64]{555: resset.ActionAll}},
		caveat.NewValidityWindow(f.now, 365*24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	if err := perm.Add3P(f.tpKey, benchLogin, &auth.ConfineOrganization{ID: 4721}); err != nil {
		tb.Fatal(err)
	}
	f.machines = &flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead | resset.ActionControl}}
	if err := perm.Add(f.machines); err != nil {
		tb.Fatal(err)
	}
	tickets := perm.ThirdPartyTickets()
	if len(tickets) != 1 {
		tb.Fatalf("%d tickets", len(tickets))
	}
	ticket, err := caveat.OpenTicket(f.tpKey, tickets[0].Ticket)
	if err != nil {
		tb.Fatal(err)
	}
	uid := auth.FlyioUserID(42)
	d, err := ticket.Discharge(benchLogin, caveat.NewValidityWindow(f.now, 10*time.Minute+30*time.Second), &uid)
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Bind(perm); err != nil {
		tb.Fatal(err)
	}
	f.perm = perm
	f.header = "FlyV1 " + perm.String() + "," + d.String()
	f.trusted = caveat.TrustedThirdParties{benchLogin: {f.tpKey}}
	f.access = &flyio.Access{OrgID: flyio.Ptr[uint64](4721), AppID: flyio.Ptr[uint64](555),
		Machine: flyio.Ptr("m1"), Action: resset.ActionControl, Time: f.now.Add(time.Minute)}
	return f
}

// verifyAndClear is the whole server-side path: header → allowed or not.
func (f *autoscalerFixture) verifyAndClear() error {
	b, err := caveat.ParseBundle(f.header)
	if err != nil {
		return err
	}
	return b.Authorize(benchLocation, caveat.StaticKey(f.key), f.trusted, f.access)
}

func TestAutoscalerBundle(t *testing.T) {
	f := newAutoscalerFixture(t)
	if err := f.verifyAndClear(); err != nil {
		t.Fatal(err)
	}
	b, err := caveat.ParseBundle(f.header)
	if err != nil {
		t.Fatal(err)
	}
	cs, _, err := caveat.VerifiedParts(b.Verify(benchLocation, caveat.StaticKey(f.key), f.trusted))
	if err != nil {
		t.Fatal(err)
	}
	// Organization, Apps, ValidityWindow, Machines, then the discharge's
	// ValidityWindow and FlyioUserID; the 3P and binding are consumed.
	if len(cs) != 6 {
		t.Fatalf("verified %d caveats: %+v", len(cs), cs)
	}
	deny := *f.access
	deny.Action = resset.ActionDelete
	if err := b.Authorize(benchLocation, caveat.StaticKey(f.key), f.trusted, &deny); err == nil {
		t.Fatal("the rC token allows destroying a machine")
	}
	late := *f.access
	late.Time = f.now.Add(11 * time.Minute) // after the discharge, inside the year
	if err := b.Authorize(benchLocation, caveat.StaticKey(f.key), f.trusted, &late); err == nil {
		t.Fatal("the bundle is allowed after its discharge expired")
	}
	if e := b.Expiry(0); !e.At.Equal(f.now.Add(630*time.Second)) || e.Token != 1 {
		t.Errorf("expiry %v from token %d, want the discharge's", e.At, e.Token)
	}
}

// TestVerifyAndClearAllocations holds the budget: at most 10
// allocations for the whole path.
func TestVerifyAndClearAllocations(t *testing.T) {
	f := newAutoscalerFixture(t)
	n := testing.AllocsPerRun(200, func() {
		if err := f.verifyAndClear(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%v allocations per VerifyAndClear", n)
	if n > 10 {
		t.Errorf("VerifyAndClear allocates %v times, budget 10", n)
	}
}

func BenchmarkVerifyAndClear(b *testing.B) {
	f := newAutoscalerFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.verifyAndClear(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(f.header)), "ns/byte")
	b.ReportMetric(float64(len(f.header)), "bytes")
}

// BenchmarkAutoscalerBranches is the server path with branch revocation:
// parse, VerifyWith and Clear of the autoscaler bundle, with no
// RevokedBranches callback, with one that answers an empty set, and with one
// that answers 100 revoked branches of the token, none of them on its chain
// (each of the token's 6 tails is then hashed and looked up).
func BenchmarkAutoscalerBranches(b *testing.B) {
	f := newAutoscalerFixture(b)
	revoked := caveat.BranchSet{}
	for i := range 100 {
		var id caveat.BranchID
		id[0], id[1] = byte(i), 0xb7
		revoked[id] = struct{}{}
	}
	for _, tc := range []struct {
		name string
		opts *caveat.VerifyOptions
	}{
		{"none", nil},
		{"empty", &caveat.VerifyOptions{RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) { return nil, nil }}},
		{"revoked=100", &caveat.VerifyOptions{RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) { return revoked, nil }}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bd, err := caveat.ParseBundle(f.header)
				if err != nil {
					b.Fatal(err)
				}
				v, err := bd.VerifyWith(benchLocation, caveat.StaticKey(f.key), f.trusted, tc.opts)
				if err == nil {
					err = v.Caveats.Clear(f.access)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStdlibCryptoOnly is the baseline: the cryptography of verifying
// the autoscaler bundle done with the standard library and nothing else —
// 11 HMAC-SHA256, each with a fresh key through crypto/hmac, over exactly
// the bytes verification MACs (each token's nonce and packed caveats, and
// the discharge's finalisation), one SHA-256 of 32 bytes (the binding) and
// one ChaCha20-Poly1305 open of 32 bytes (the discharge key). It parses
// nothing, checks nothing and clears nothing.
func BenchmarkStdlibCryptoOnly(b *testing.B) {
	f := newAutoscalerFixture(b)
	bd, err := caveat.ParseBundle(f.header)
	if err != nil {
		b.Fatal(err)
	}
	var msgs [][]byte
	for _, m := range bd.Tokens {
		msgs = append(msgs, m.Nonce.AppendEncoded(nil))
		for _, c := range m.Caveats {
			msgs = append(msgs, wire.AppendPacked(nil, uint64(c.Type), c.Body))
		}
	}
	msgs = append(msgs, make([]byte, 32)) // finalisation of the discharge's tail
	if len(msgs) != 11 {
		b.Fatalf("%d MACs, want 11", len(msgs))
	}
	keys := make([][]byte, len(msgs))
	for i := range keys {
		keys[i] = make([]byte, 32)
		keys[i][0] = byte(i + 1)
	}
	ka := caveat.NewEncryptionKey()
	aead, err := chacha20poly1305.New(ka[:])
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	sealed := aead.Seal(nil, nonce, make([]byte, 32), nil)
	tail := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		for i, k := range keys {
			h := hmac.New(sha256.New, k)
			h.Write(msgs[i])
			h.Sum(nil)
		}
		sha256.Sum256(tail)
		a, _ := chacha20poly1305.New(ka[:])
		if _, err := a.Open(nil, nonce, sealed, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	key := caveat.NewSigningKey()
	org := &flyio.Organization{ID: 4721, Mask: resset.ActionAll}
	apps := &flyio.Apps{Apps: resset.ResourceSet[uint64]{555: resset.ActionAll}}
	vw := caveat.NewValidityWindow(time.Unix(1764000000, 0), 365*24*time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		m, err := caveat.Mint(key, caveat.NewNonce([]byte("0123456789abcdef"), false), benchLocation, org, apps, vw)
		if err != nil {
			b.Fatal(err)
		}
		_ = m.String()
	}
}

func BenchmarkAttenuate(b *testing.B) {
	f := newAutoscalerFixture(b)
	text := f.perm.String()
	more := &flyio.Machines{Machines: resset.ResourceSet[string]{"m1": resset.ActionRead}}
	b.ReportAllocs()
	for b.Loop() {
		m, err := caveat.Parse(text)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Add(more); err != nil {
			b.Fatal(err)
		}
		_ = m.String()
	}
}

func BenchmarkDecode(b *testing.B) {
	f := newAutoscalerFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := caveat.ParseBundle(f.header); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExpiryAllocations: a server reads a fresh token's Expiry on every
// verification, so it allocates only the list of the token's discharges
// (it sorted every token of the bundle and related each 3P caveat first:
// 5 allocations for the autoscaler bundle).
func TestExpiryAllocations(t *testing.T) {
	f := newAutoscalerFixture(t)
	b, err := caveat.ParseBundle(f.header)
	if err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(200, func() {
		if e := b.Expiry(0); e.Token != 1 {
			t.Fatalf("expiry from token %d, want the discharge's", e.Token)
		}
	})
	if n > 1 {
		t.Errorf("Expiry allocates %v times, want 1", n)
	}
}
