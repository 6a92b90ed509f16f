package caveat

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/caveatdev/caveat/internal/vectors"
)

// TestHeaderParsingVectors checks ParseBundle against the reference bundle
// parser's view of each header: caveat accepts exactly the headers whose
// every entry, apart from empty and fo1_ entries, is a well-formed macaroon,
// and reports the others as errors instead of dropping entries silently.
func TestHeaderParsingVectors(t *testing.T) {
	var cases []struct {
		Header         string   `json:"header"`
		StripFound     bool     `json:"strip_scheme_found"`
		StripResult    string   `json:"strip_scheme_result"`
		ParseTokensHex []string `json:"parse_tokens_hex"`
		BundleString   string   `json:"bundle_string"`
		BundleLen      int      `json:"bundle_len"`
		WellFormed     int      `json:"bundle_well_formed_macaroons"`
		BundleError    string   `json:"bundle_error"`
	}
	vectors.Section(t, "header_parsing", &cases)
	if len(cases) == 0 {
		t.Fatal("no header vectors")
	}
	for _, tc := range cases {
		t.Run(tc.Header[:min(len(tc.Header), 40)], func(t *testing.T) {
			if got := StripScheme(tc.Header); got != tc.StripResult {
				t.Errorf("StripScheme = %q, want %q", got, tc.StripResult)
			}
			entries := 0
			for _, e := range strings.Split(tc.StripResult, ",") {
				e = strings.TrimSpace(e)
				if e != "" && !strings.HasPrefix(e, "fo1_") {
					entries++
				}
			}
			wantOK := tc.BundleError == "" && entries == tc.WellFormed && entries > 0
			b, err := ParseBundle(tc.Header)
			if !wantOK {
				if err == nil {
					t.Fatalf("accepted; want an error (bundle parser: %d of %d well formed, %q)", tc.WellFormed, tc.BundleLen, tc.BundleError)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBundle: %v", err)
			}
			if len(b.Tokens) != tc.WellFormed {
				t.Fatalf("%d tokens, want %d", len(b.Tokens), tc.WellFormed)
			}
			// The strict parser returns the decoded bytes, trailing bytes
			// included; the decoder ignores those.
			for i, want := range tc.ParseTokensHex {
				if got := hex.EncodeToString(b.Tokens[i].Encode()); !strings.HasPrefix(want, got) {
					t.Errorf("token %d = %s, want %s", i, got, want)
				}
			}
		})
	}
}

func TestParseBundleErrorsNameTheEntry(t *testing.T) {
	var fp struct {
		Token struct {
			Header string `json:"header"`
		} `json:"token"`
	}
	vectors.Section(t, "first_party", &fp)
	good := strings.TrimPrefix(fp.Token.Header, "FlyV1 ")
	tests := []struct {
		name, header, want string
	}{
		{"truncated second", good + "," + good[:len(good)-7], "token 2: "},
		{"garbage third", good + ", " + good + ",hello", "token 3: malformed token: not a token"},
		{"unknown prefix", "fm9_AAAA", `token 1: malformed token: unknown token prefix "fm9"`},
		{"empty", "FlyV1 ", "no tokens found"},
		{"only oauth", "fo1_abc", "no tokens found"},
		{"blank", "fm2_", "token 1: malformed token: blank token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBundle(tc.header)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), good[10:30]) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
	// Legacy prefixes, Bearer, spaces and trailing commas are accepted, and
	// the produced header is canonical.
	b, err := ParseBundle("bearer  FM1R_" + strings.TrimPrefix(good, "fm2_") + " , ")
	if err == nil {
		t.Fatalf("upper-case prefix accepted: %v", b.Header())
	}
	b, err = ParseBundle("Bearer fm1r_" + strings.TrimPrefix(good, "fm2_") + " , ")
	if err != nil {
		t.Fatal(err)
	}
	if b.Header() != fp.Token.Header {
		t.Errorf("header = %s, want %s", b.Header(), fp.Token.Header)
	}
}

// TestBundleCaveatStorage: the tokens of a bundle share one array of
// caveats, the Bundle's own for a small header; more caveats than it holds,
// in a small header or a large one, leave every token its own.
func TestBundleCaveatStorage(t *testing.T) {
	key := NewSigningKey()
	for _, n := range []int{3, 16, 17, 40, 300} {
		var tokens []string
		var want [][]*ValidityWindow
		for k := range 3 {
			var cs []Caveat
			var vws []*ValidityWindow
			for i := range n {
				vw := &ValidityWindow{NotBefore: int64(k), NotAfter: int64(i)}
				cs, vws = append(cs, vw), append(vws, vw)
			}
			m, err := Mint(key, NewNonce([]byte{byte(k)}, false), "loc", cs...)
			if err != nil {
				t.Fatal(err)
			}
			tokens, want = append(tokens, m.String()), append(want, vws)
		}
		b, err := ParseBundle(strings.Join(tokens, ","))
		if err != nil {
			t.Fatalf("%d caveats: %v", n, err)
		}
		for k := range b.Tokens {
			m := &b.Tokens[k]
			if len(m.Caveats) != n {
				t.Fatalf("%d caveats: token %d has %d", n, k, len(m.Caveats))
			}
			for i, c := range m.Caveats {
				if got := c.Body; string(got) != string(want[k][i].AppendBody(nil)) {
					t.Fatalf("%d caveats: token %d caveat %d is %x", n, k, i, got)
				}
			}
			if err := m.verifyAlone(key); err != nil {
				t.Errorf("%d caveats: token %d: %v", n, k, err)
			}
		}
	}
}

func (m *Macaroon) verifyAlone(key SigningKey) error {
	_, err := m.Verify(key, nil, nil)
	return err
}
