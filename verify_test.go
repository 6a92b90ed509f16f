package caveat_test

import (
	"errors"
	"testing"

	"github.com/caveatdev/caveat"
)

// TestUnfinalisedDischarge: a discharge still being built (not yet encoded,
// so not finalised) is refused as such, as a permission proof would be,
// rather than with a misleading signature error; once encoded it verifies.
func TestUnfinalisedDischarge(t *testing.T) {
	key, ka := caveat.NewSigningKey(), caveat.NewEncryptionKey()
	m, err := caveat.Mint(key, caveat.NewNonce([]byte("kid"), false), "https://a.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add3P(ka, "https://login.example"); err != nil {
		t.Fatal(err)
	}
	ticket, err := caveat.OpenTicket(ka, m.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ticket.Discharge("https://login.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(key, []*caveat.Macaroon{d}, nil); !errors.Is(err, caveat.ErrProof) {
		t.Fatalf("unfinalised discharge: %v, want ErrProof", err)
	}
	d2, err := caveat.Decode(d.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(key, []*caveat.Macaroon{d2}, nil); err != nil {
		t.Fatalf("encoded discharge: %v", err)
	}
}
