package caveat

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/caveatdev/caveat/internal/vectors"
	"github.com/caveatdev/caveat/internal/wire"
)

type vThirdParty struct {
	Permission       vToken `json:"permission"`
	AttenuatedHex    string `json:"attenuated_permission_token_hex"`
	BindExpectedHex  string `json:"bind_to_parent_expected_hex"`
	TailBefore3PHex  string `json:"tail_before_3p_hex"`
	ThirdPartyKeyHex string `json:"third_party_key_hex"`
	Location         string `json:"third_party_location"`
	DischargeNonce   string `json:"discharge_nonce_hex"`
	DischargeT0      string `json:"discharge_t0_hex"`
	DischargeHeader  string `json:"discharge_header"`
	WronglyBoundHex  string `json:"wrongly_bound_discharge_hex"`
	Caveat3P         struct {
		RnHex          string `json:"discharge_key_rn_hex"`
		Location       string `json:"location"`
		PackedHex      string `json:"packed_hex"`
		TicketHex      string `json:"ticket_hex"`
		TicketNonceHex string `json:"ticket_nonce_hex"`
		TicketPlainHex string `json:"ticket_plaintext_hex"`
		VerifierKeyHex string `json:"verifier_key_hex"`
		VKNonceHex     string `json:"verifier_key_nonce_hex"`
	} `json:"caveat3p"`
	Discharge      vToken `json:"discharge"`
	PlainDischarge vToken `json:"plain_discharge"`
}

func loadThirdParty(t *testing.T) (vThirdParty, SigningKey) {
	t.Helper()
	var tp vThirdParty
	vectors.Section(t, "third_party", &tp)
	var fp struct {
		RootKeyHex string `json:"root_key_hex"`
	}
	vectors.Section(t, "first_party", &fp)
	return tp, SigningKey(hx(t, fp.RootKeyHex))
}

func TestThirdPartyVectorSeals(t *testing.T) {
	tp, _ := loadThirdParty(t)
	c := tp.Caveat3P
	tail := hx(t, tp.TailBefore3PHex)
	rn, err := unseal(tail, hx(t, c.VerifierKeyHex), nil)
	if err != nil {
		t.Fatalf("unseal verifier key with the tail before the caveat: %v", err)
	}
	if hex.EncodeToString(rn) != c.RnHex {
		t.Errorf("rn = %x, want %s", rn, c.RnHex)
	}
	vk, _ := sealNonce(tail, hx(t, c.VKNonceHex), rn)
	if hex.EncodeToString(vk) != c.VerifierKeyHex {
		t.Errorf("resealed verifier key differs")
	}
	ka := hx(t, tp.ThirdPartyKeyHex)
	plain, err := unseal(ka, hx(t, c.TicketHex), nil)
	if err != nil {
		t.Fatalf("unseal ticket: %v", err)
	}
	if hex.EncodeToString(plain) != c.TicketPlainHex {
		t.Errorf("ticket plaintext = %x, want %s", plain, c.TicketPlainHex)
	}
	ticket, _ := sealNonce(ka, hx(t, c.TicketNonceHex), plain)
	if hex.EncodeToString(ticket) != c.TicketHex {
		t.Errorf("resealed ticket differs")
	}
	var k EncryptionKey
	copy(k[:], ka)
	opened, err := OpenTicket(k, ticket)
	if err != nil {
		t.Fatal(err)
	}
	if len(opened.Caveats) != 2 || !bytes.Equal(opened.rn, rn) {
		t.Errorf("OpenTicket: %d caveats, rn %x", len(opened.Caveats), opened.rn)
	}
	// A wrong key does not open the ticket.
	k[0] ^= 1
	if _, err := OpenTicket(k, ticket); err == nil {
		t.Error("ticket opened with a wrong key")
	}
}

// TestThirdPartyVectorReproduced rebuilds the permission token and the
// discharge from the same randomness: both must be byte-identical.
func TestThirdPartyVectorReproduced(t *testing.T) {
	tp, key := loadThirdParty(t)
	c := tp.Caveat3P
	perm, err := Decode(hx(t, tp.Permission.TokenHex))
	if err != nil {
		t.Fatal(err)
	}
	// The first-party token is the permission token up to its 3P caveat.
	base, err := Mint(key, perm.Nonce, perm.Location)
	if err != nil {
		t.Fatal(err)
	}
	i3p := -1
	for i, rc := range perm.Caveats {
		if rc.Type == Type3P {
			i3p = i
			break
		}
		if err := base.AddRaw(rc); err != nil {
			t.Fatal(err)
		}
	}
	if hex.EncodeToString(base.Tail()) != tp.TailBefore3PHex {
		t.Fatalf("tail before 3P = %x", base.Tail())
	}
	plain := hx(t, c.TicketPlainHex)
	r := readerOf(plain)
	r.ReadArrayHeader()
	r.ReadBin()
	ticketCaveats, err := readCaveatSet(&r, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ka EncryptionKey
	copy(ka[:], hx(t, tp.ThirdPartyKeyHex))
	rnd := bytes.NewReader(append(append(hx(t, c.RnHex), hx(t, c.TicketNonceHex)...), hx(t, c.VKNonceHex)...))
	if err := base.add3P(rnd, ka, c.Location, ticketCaveats); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(wire.AppendPacked(nil, uint64(base.Caveats[i3p].Type), base.Caveats[i3p].Body)); got != c.PackedHex {
		t.Fatalf("3P caveat:\n got %s\nwant %s", got, c.PackedHex)
	}
	for _, rc := range perm.Caveats[i3p+1:] {
		if err := base.AddRaw(rc); err != nil {
			t.Fatal(err)
		}
	}
	if got := hex.EncodeToString(base.Encode()); got != tp.Permission.TokenHex {
		t.Fatalf("permission token:\n got %s\nwant %s", got, tp.Permission.TokenHex)
	}
	t.Run("permission chain", func(t *testing.T) { checkChain(t, key, tp.Permission) })
	t.Run("discharge chain", func(t *testing.T) { checkChain(t, hx(t, c.RnHex), tp.Discharge) })
	t.Run("plain discharge chain", func(t *testing.T) { checkChain(t, hx(t, c.RnHex), tp.PlainDischarge) })

	// The discharge, built by the third party from the ticket.
	ticket, err := OpenTicket(ka, hx(t, c.TicketHex))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Mint(SigningKey(ticket.rn), Nonce{KID: ticket.sealed, Rnd: hx(t, tp.Discharge.Nonce.RndHex), Proof: true}, tp.Location)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(d.Nonce.AppendEncoded(nil)) != tp.DischargeNonce {
		t.Errorf("discharge nonce differs")
	}
	if err := d.Bind(base); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(d.Caveats[0].Body[2:]); got != tp.BindExpectedHex {
		t.Errorf("binding = %s, want %s", got, tp.BindExpectedHex)
	}
	for _, vc := range tp.Discharge.Caveats[1:] {
		if err := d.AddRaw(mustRaw(t, vc.PackedHex)); err != nil {
			t.Fatal(err)
		}
	}
	if got := hex.EncodeToString(d.Encode()); got != tp.Discharge.TokenHex {
		t.Fatalf("discharge:\n got %s\nwant %s", got, tp.Discharge.TokenHex)
	}
	if got := "FlyV1 " + d.String(); got != tp.DischargeHeader {
		t.Errorf("discharge header differs")
	}
	// A finalised (decoded) proof cannot be extended.
	dd, _ := Decode(d.Encode())
	if err := dd.AddRaw(mustRaw(t, tp.Discharge.Caveats[1].PackedHex)); !errors.Is(err, ErrProof) {
		t.Errorf("adding to a decoded proof: %v, want ErrProof", err)
	}
}

func TestThirdPartyVectorVerify(t *testing.T) {
	tp, key := loadThirdParty(t)
	var fp struct {
		Token vToken `json:"token"`
	}
	vectors.Section(t, "first_party", &fp)
	dec := func(h string) *Macaroon {
		m, err := Decode(hx(t, h))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	perm := dec(tp.Permission.TokenHex)
	att := dec(tp.AttenuatedHex)
	bound := dec(tp.Discharge.TokenHex)
	plain := dec(tp.PlainDischarge.TokenHex)
	wrong := dec(tp.WronglyBoundHex)
	pre := dec(fp.Token.TokenHex)
	tests := []struct {
		name    string
		m       *Macaroon
		ds      []*Macaroon
		wantErr error
		wantN   int
	}{
		{"perm plus bound discharge", perm, []*Macaroon{bound}, nil, 5 + 2},
		{"attenuated perm plus bound discharge", att, []*Macaroon{bound}, nil, 6 + 2},
		{"perm plus plain discharge", perm, []*Macaroon{plain}, nil, 5 + 1},
		{"perm without discharge", perm, nil, ErrMissingDischarge, 0},
		{"perm plus wrongly bound discharge", perm, []*Macaroon{wrong}, ErrWrongParent, 0},
		{"wrongly bound then good discharge", perm, []*Macaroon{wrong, plain}, nil, 5 + 1},
		{"pre-3P token plus bound discharge (ignored)", pre, []*Macaroon{bound}, nil, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := tc.m.Verify(key, tc.ds, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// wantN counts the bound discharge's FlyioUserID. When the auth
			// package is linked into this test binary (the external tests
			// import it) that is a registered attestation, which an untrusted
			// discharge does not return.
			want := tc.wantN
			if (RawCaveat{Type: 23}).Attestation() && len(tc.ds) > 0 && tc.ds[len(tc.ds)-1] == bound && tc.m != pre {
				want--
			}
			if len(cs) != want {
				t.Errorf("%d caveats, want %d", len(cs), want)
			}
		})
	}
	// The discharge does not verify under another permission token's key.
	other := bytes.Clone(key)
	other[5] ^= 0x40
	if _, err := perm.Verify(other, []*Macaroon{bound}, nil); err == nil {
		t.Error("verified with a wrong root key")
	}
}
