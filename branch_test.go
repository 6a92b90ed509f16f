package caveat_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/caveatdev/caveat"
)

// attenuationChain mints a token and attenuates it n times, one caveat a
// step; chain[k] is the token with its first k caveats, as a header.
func attenuationChain(tb testing.TB, key caveat.SigningKey, n int) []*caveat.Macaroon {
	tb.Helper()
	m, err := caveat.Mint(key, caveat.NewNonce([]byte("kid-branches"), false), "https://api.example/v1")
	if err != nil {
		tb.Fatal(err)
	}
	chain := []*caveat.Macaroon{m}
	for k := 1; k <= n; k++ {
		next, err := caveat.Parse(chain[k-1].String())
		if err != nil {
			tb.Fatal(err)
		}
		if err := next.AddRaw(caveat.RawCaveat{Type: 1 << 40, Body: []byte{byte(k)}}); err != nil {
			tb.Fatal(err)
		}
		chain = append(chain, next)
	}
	return chain
}

func branchOf(m *caveat.Macaroon) caveat.BranchID { return caveat.BranchID(caveat.BindingID(m)) }

// TestBranchRevocation: revoking the branch of step k refuses the tokens at
// steps k and later, which were attenuated through it, and allows the
// earlier ones, its ancestors.
func TestBranchRevocation(t *testing.T) {
	key := caveat.NewSigningKey()
	const n = 6
	chain := attenuationChain(t, key, n)
	for k := 0; k <= n; k++ {
		revoked := caveat.BranchSet{branchOf(chain[k]): {}}
		calls := 0
		opts := &caveat.VerifyOptions{RevokedBranches: func(m *caveat.Macaroon) (caveat.BranchSet, error) {
			calls++
			return revoked, nil
		}}
		for j := 0; j <= n; j++ {
			b, err := caveat.ParseBundle(chain[j].String())
			if err != nil {
				t.Fatal(err)
			}
			calls = 0
			cs, _, err := caveat.VerifiedParts(b.VerifyWith("https://api.example/v1", caveat.StaticKey(key), nil, opts))
			if calls != 1 {
				t.Errorf("revoked %d, token %d: RevokedBranches called %d times, want once", k, j, calls)
			}
			if j < k {
				if err != nil || len(cs) != j {
					t.Errorf("revoked step %d: ancestor at step %d refused: %v", k, j, err)
				}
				continue
			}
			if !errors.Is(err, caveat.ErrBranchRevoked) || !errors.Is(err, caveat.ErrInvalid) {
				t.Errorf("revoked step %d: token at step %d: %v, want ErrBranchRevoked", k, j, err)
			} else if want := fmt.Sprintf("step %d ", k); !strings.Contains(err.Error(), want) {
				t.Errorf("revoked step %d: error %q does not name the step", k, err)
			}
		}
	}
}

// TestBranchRevocationOptions: no set, an empty set and a set of unrelated
// branches change nothing; a callback error aborts the verification and is
// not a token error; a bundle with two permission tokens falls back to the
// one whose branch is not revoked.
func TestBranchRevocationOptions(t *testing.T) {
	key := caveat.NewSigningKey()
	chain := attenuationChain(t, key, 3)
	verify := func(header string, opts *caveat.VerifyOptions) (int, error) {
		t.Helper()
		b, err := caveat.ParseBundle(header)
		if err != nil {
			t.Fatal(err)
		}
		_, i, err := caveat.VerifiedParts(b.VerifyWith("https://api.example/v1", caveat.StaticKey(key), nil, opts))
		return i, err
	}
	other := attenuationChain(t, caveat.NewSigningKey(), 2)
	for name, set := range map[string]caveat.BranchSet{
		"nil": nil, "empty": {}, "unrelated": {branchOf(other[1]): {}, branchOf(other[2]): {}},
	} {
		opts := &caveat.VerifyOptions{RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) { return set, nil }}
		if _, err := verify(chain[3].String(), opts); err != nil {
			t.Errorf("%s set: %v", name, err)
		}
	}
	if _, err := verify(chain[3].String(), &caveat.VerifyOptions{}); err != nil {
		t.Errorf("no callback: %v", err)
	}

	storeDown := errors.New("store down")
	_, err := verify(chain[3].String(), &caveat.VerifyOptions{RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) {
		return nil, storeDown
	}})
	if !errors.Is(err, storeDown) || errors.Is(err, caveat.ErrInvalid) {
		t.Errorf("callback error: %v, want it wrapped and not ErrInvalid", err)
	}

	// The attenuated token first, its branch revoked; its parent second.
	revoked := caveat.BranchSet{branchOf(chain[3]): {}}
	i, err := verify(chain[3].String()+","+chain[2].String(), &caveat.VerifyOptions{
		RevokedBranches: func(*caveat.Macaroon) (caveat.BranchSet, error) { return revoked, nil }})
	if err != nil || i != 1 {
		t.Errorf("bundle of a revoked child and its parent: token %d, %v; want the parent (1)", i, err)
	}

	// With two permission tokens, a callback error counts when its token's
	// turn comes: after a token that verifies it is never reached.
	failFor := func(bad *caveat.Macaroon) *caveat.VerifyOptions {
		return &caveat.VerifyOptions{RevokedBranches: func(m *caveat.Macaroon) (caveat.BranchSet, error) {
			if caveat.BranchID(caveat.BindingID(m)) == branchOf(bad) {
				return nil, storeDown
			}
			return nil, nil
		}}
	}
	if i, err := verify(chain[3].String()+","+chain[2].String(), failFor(chain[2])); err != nil || i != 0 {
		t.Errorf("store fails for the second token only: token %d, %v; want the first", i, err)
	}
	if _, err := verify(chain[3].String()+","+chain[2].String(), failFor(chain[3])); !errors.Is(err, storeDown) || errors.Is(err, caveat.ErrInvalid) {
		t.Errorf("store fails for the first token: %v, want the store's error", err)
	}
}
