package caveat

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/caveatdev/caveat/internal/fastpath"
	"github.com/caveatdev/caveat/internal/msgpack"
)

// dischargeKeySize is the length of rn, the root key of a discharge.
const dischargeKeySize = 32

// Caveat3P (type 11, JSON name "3P") demands a discharge from the third
// party at Location (spec §3.4). VerifierKey is rn sealed under the tail
// before this caveat; Ticket is [rn, caveats] sealed under the key shared
// with the third party. Verification consumes it; clearing refuses it.
type Caveat3P struct {
	Location    string `json:"Location"`
	VerifierKey []byte `json:"VerifierKey"`
	Ticket      []byte `json:"Ticket"`
}

// CaveatType implements Caveat.
func (c *Caveat3P) CaveatType() CaveatType { return Type3P }

// AppendBody implements Caveat: [location: str, verifier_key: bin, ticket: bin].
func (c *Caveat3P) AppendBody(b []byte) []byte {
	b = msgpack.AppendArrayHeader(b, 3)
	b = msgpack.AppendStr(b, c.Location)
	b = msgpack.AppendBin(b, c.VerifierKey)
	return msgpack.AppendBin(b, c.Ticket)
}

// Prohibits implements Caveat: a third-party caveat left in a set was never
// discharged.
func (c Caveat3P) Prohibits(Access) error {
	return fmt.Errorf("%w: third-party caveat for %s was not discharged", ErrBadCaveat, c.Location)
}

// raw3P is the body of a 3P caveat as sub-slices of the body, for the
// allocation-free verification path.
type raw3P struct{ location, verifierKey, ticket []byte }

func parse3P(body []byte) (raw3P, error) {
	var c raw3P
	r := msgpack.NewStrictReader(body)
	if err := r.ReadRecordHeader(3); err != nil {
		return c, err
	}
	var err error
	if c.location, err = r.ReadStr(); err != nil {
		return c, err
	}
	if c.verifierKey, err = r.ReadBinOrNil(); err != nil {
		return c, err
	}
	if c.ticket, err = r.ReadBinOrNil(); err != nil {
		return c, err
	}
	return c, r.ExpectEnd()
}

// BindToParentToken (type 12) binds a discharge to its parent permission
// token: its bytes must prefix SHA-256 of one of the parent's tails (spec
// §4.7). Its JSON form is the base64 string.
type BindToParentToken []byte

// CaveatType implements Caveat.
func (c *BindToParentToken) CaveatType() CaveatType { return TypeBindToParentToken }

// AppendBody implements Caveat: the bytes as bin.
func (c *BindToParentToken) AppendBody(b []byte) []byte {
	v := []byte(*c)
	if v == nil {
		v = []byte{}
	}
	return msgpack.AppendBin(b, v)
}

// Prohibits implements Caveat: a binding is consumed by verification, and
// one left in a set (for example at the top level) refuses.
func (c BindToParentToken) Prohibits(Access) error {
	return fmt.Errorf("%w: BindToParentToken outside a discharge", ErrBadCaveat)
}

// bindingIDSize is the length of the binding that Bind writes.
const bindingIDSize = 16

func init() {
	// Verification checks every 3P caveat's encoding: without the copy of
	// the location that Decode makes.
	fastpath.Set(uint64(Type3P), fastpath.Paths[Access]{
		Canonical: func(b []byte) error { _, err := parse3P(b); return err },
	})
	Register(Def[Caveat3P]{Name: "3P", Decode: func(b []byte) (Caveat3P, error) {
		r, err := parse3P(b)
		if err != nil {
			return Caveat3P{}, err
		}
		return Caveat3P{Location: string(r.location), VerifierKey: r.verifierKey, Ticket: r.ticket}, nil
	}})
	Register(Def[BindToParentToken]{Name: "BindToParentToken", Decode: func(b []byte) (BindToParentToken, error) {
		v, err := parseBind(b)
		return BindToParentToken(v), err
	}})
}

func parseBind(body []byte) ([]byte, error) {
	r := msgpack.NewStrictReader(body)
	v, err := r.ReadBin()
	if err != nil {
		return nil, err
	}
	return v, r.ExpectEnd()
}

// Add3P appends a third-party caveat for location, with a ticket that the
// third party holding ka will open, carrying ticketCaveats for it to check
// before it discharges (spec §4.3). At most one third-party caveat per
// location can be added to a token.
func (m *Macaroon) Add3P(ka EncryptionKey, location string, ticketCaveats ...Caveat) error {
	return m.add3P(rand.Reader, ka, location, NewCaveatSet(ticketCaveats...))
}

func (m *Macaroon) add3P(rnd io.Reader, ka EncryptionKey, location string, ticketCaveats CaveatSet) error {
	if m.Nonce.Proof && !m.building {
		return fmt.Errorf("%w: can't add caveats to a finalised proof", ErrProof)
	}
	if len(m.Caveats) >= MaxCaveats {
		return fmt.Errorf("%w: more than %d caveats", ErrLimit, MaxCaveats)
	}
	for _, c := range m.Caveats {
		if c.Type != Type3P {
			continue
		}
		if r, err := parse3P(c.Body); err == nil && string(r.location) == location {
			return fmt.Errorf("add 3P: the token already has a third-party caveat for %s", location)
		}
	}
	rn := make([]byte, dischargeKeySize)
	if _, err := io.ReadFull(rnd, rn); err != nil {
		return err
	}
	plain := msgpack.AppendArrayHeader(nil, 2)
	plain = msgpack.AppendBin(plain, rn)
	plain = ticketCaveats.AppendEncoded(plain)
	ticket, err := sealWith(rnd, ka[:], plain)
	if err != nil {
		return err
	}
	vk, err := sealWith(rnd, m.tail, rn)
	if err != nil {
		return err
	}
	c := &Caveat3P{Location: location, VerifierKey: vk, Ticket: ticket}
	m.appendCaveat(Encode(c), false)
	return nil
}

// sealWith is seal with an explicit source of nonces, for tests.
func sealWith(rnd io.Reader, key, plaintext []byte) ([]byte, error) {
	if rnd == rand.Reader {
		return seal(key, plaintext)
	}
	var nonce [sealNonceSize]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nil, err
	}
	return sealNonce(key, nonce[:], plaintext)
}

// Ticket is the opened content of a third-party caveat's ticket (spec §3.5),
// as the third party sees it.
type Ticket struct {
	// Caveats are the conditions the first party asks the third party to
	// check before discharging (e.g. ConfineUser). Checking them is the
	// third party's job: OpenTicket does not.
	Caveats CaveatSet
	sealed  []byte
	rn      []byte
}

// OpenTicket decrypts a ticket with the third party's key.
func OpenTicket(ka EncryptionKey, ticket []byte) (*Ticket, error) {
	rn, cs, err := openTicket(ka[:], ticket, nil, true)
	if err != nil {
		return nil, err
	}
	return &Ticket{Caveats: cs, sealed: ticket, rn: rn}, nil
}

// openTicket unseals (appending to buf) and decodes [rn, caveats]. The
// ticket's caveats are decoded only when withCaveats is set.
func openTicket(ka []byte, ticket []byte, buf []byte, withCaveats bool) (rn []byte, cs CaveatSet, err error) {
	plain, err := unseal(ka, ticket, buf)
	if err != nil {
		return nil, nil, fmt.Errorf("ticket: %w", err)
	}
	r := msgpack.NewReader(plain)
	if err := r.ReadRecordHeader(2); err != nil {
		return nil, nil, fmt.Errorf("%w: ticket: %v", ErrMalformed, err)
	}
	if rn, err = r.ReadBin(); err != nil {
		return nil, nil, fmt.Errorf("%w: ticket discharge key: %v", ErrMalformed, err)
	}
	if withCaveats {
		if cs, err = readCaveatSet(&r, false, nil); err != nil {
			return nil, nil, fmt.Errorf("ticket: %w", err)
		}
	}
	return rn, cs, nil
}

// Discharge creates the discharge for the ticket: a proof whose nonce KID is
// the sealed ticket, located at the third party's location, signed with rn
// (spec §4.5). Add caveats (ValidityWindow, attestations) and Bind it before
// encoding it; encoding finalises it.
func (t *Ticket) Discharge(location string, caveats ...Caveat) (*Macaroon, error) {
	return Mint(SigningKey(t.rn), NewNonce(t.sealed, true), location, caveats...)
}

// Bind adds BindToParentToken(BindingID(parent)) to a discharge that is
// still being built, so that it only satisfies parent and tokens
// attenuated from it (spec §4.7).
func (m *Macaroon) Bind(parent *Macaroon) error {
	b := BindToParentToken(BindingID(parent))
	return m.Add(&b)
}

// BindingID is the binding a discharge carries to be bound to parent:
// SHA-256 of parent's tail, cut to 16 bytes. A third party that binds the
// discharges it issues (a client cannot: a received discharge is a
// finalised proof) is given it by the client.
//
// For a permission token it is also the branch the token is (BranchID): the
// id to revoke so that this token and everything attenuated from it are
// refused, while the tokens it was attenuated from keep working.
func BindingID(parent *Macaroon) []byte {
	var t [tailSize]byte
	copy(t[:], parent.Tail())
	id := bindingID(t)
	return id[:bindingIDSize]
}

// ThirdPartyTicket is an undischarged third-party caveat of a token.
type ThirdPartyTicket struct {
	// Index is the 3P caveat's position in the token's caveats.
	Index    int
	Location string
	Ticket   []byte
}

// ThirdPartyTickets lists the top-level third-party caveats of m that none
// of the given discharges (matched by nonce KID == ticket) covers.
func (m *Macaroon) ThirdPartyTickets(discharges ...*Macaroon) []ThirdPartyTicket {
	var out []ThirdPartyTicket
	for i, c := range m.Caveats {
		if c.Type != Type3P {
			continue
		}
		r, err := parse3P(c.Body)
		if err != nil {
			continue
		}
		found := false
		for _, d := range discharges {
			if subtle.ConstantTimeCompare(d.Nonce.KID, r.ticket) == 1 {
				found = true
				break
			}
		}
		if !found {
			out = append(out, ThirdPartyTicket{Index: i, Location: string(r.location), Ticket: r.ticket})
		}
	}
	return out
}

// EncodeTicket renders a ticket for the discharge protocol and the CLI:
// standard padded base64 (spec §8.2).
func EncodeTicket(ticket []byte) string { return base64.StdEncoding.EncodeToString(ticket) }
