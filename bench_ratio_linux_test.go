//go:build linux

package caveat_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/internal/wire"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/unix"
)

// BenchmarkVerifyAndClearVsStdlib is BenchmarkVerifyAndClear against
// BenchmarkStdlibCryptoOnly measured the way a shared, loaded machine
// allows: both workloads run in one goroutine locked to its thread, in
// alternating batches of about a millisecond each, timed by the thread's
// CPU clock (time spent descheduled does not count), and each batch of
// VerifyAndClear is compared with the baseline batch next to it. It
// reports the median of those ratios (ratio), and the median CPU time per
// operation of each (verify-ns/op, stdlib-ns/op). An operation is one of
// each, so ns/op is their sum, in wall time. Run:
//
//	go test -run '^$' -bench VerifyAndClearVsStdlib -benchtime 20000x -count 6 .
func BenchmarkVerifyAndClearVsStdlib(b *testing.B) {
	f := newAutoscalerFixture(b)
	stdlib := newStdlibCrypto(b, f)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const batch = 100
	var ratios, verify, base []float64
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		t0 := threadCPU(b)
		for range n {
			if err := f.verifyAndClear(); err != nil {
				b.Fatal(err)
			}
		}
		t1 := threadCPU(b)
		for range n {
			stdlib.run(b)
		}
		t2 := threadCPU(b)
		v, s := float64(t1-t0)/float64(n), float64(t2-t1)/float64(n)
		verify, base, ratios = append(verify, v), append(base, s), append(ratios, v/s)
	}
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(median(verify), "verify-ns/op")
	b.ReportMetric(median(base), "stdlib-ns/op")
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)/2]
}

func threadCPU(tb testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// stdlibCrypto is the work of BenchmarkStdlibCryptoOnly.
type stdlibCrypto struct {
	msgs, keys    [][]byte
	ka            caveat.EncryptionKey
	nonce, sealed []byte
	tail          []byte
}

func newStdlibCrypto(tb testing.TB, f *autoscalerFixture) *stdlibCrypto {
	bd, err := caveat.ParseBundle(f.header)
	if err != nil {
		tb.Fatal(err)
	}
	s := &stdlibCrypto{ka: caveat.NewEncryptionKey(), tail: make([]byte, 32)}
	for _, m := range bd.Tokens {
		s.msgs = append(s.msgs, m.Nonce.AppendEncoded(nil))
		for _, c := range m.Caveats {
			s.msgs = append(s.msgs, wire.AppendPacked(nil, uint64(c.Type), c.Body))
		}
	}
	s.msgs = append(s.msgs, make([]byte, 32)) // finalisation of the discharge's tail
	if len(s.msgs) != 11 {
		tb.Fatalf("%d MACs, want 11", len(s.msgs))
	}
	s.keys = make([][]byte, len(s.msgs))
	for i := range s.keys {
		s.keys[i] = make([]byte, 32)
		s.keys[i][0] = byte(i + 1)
	}
	aead, err := chacha20poly1305.New(s.ka[:])
	if err != nil {
		tb.Fatal(err)
	}
	s.nonce = make([]byte, aead.NonceSize())
	s.sealed = aead.Seal(nil, s.nonce, make([]byte, 32), nil)
	return s
}

func (s *stdlibCrypto) run(tb testing.TB) {
	for i, k := range s.keys {
		h := hmac.New(sha256.New, k)
		h.Write(s.msgs[i])
		h.Sum(nil)
	}
	sha256.Sum256(s.tail)
	a, _ := chacha20poly1305.New(s.ka[:])
	if _, err := a.Open(nil, s.nonce, s.sealed, nil); err != nil {
		tb.Fatal(err)
	}
}
