package caveat_test

import (
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/resset"
)

// The life of a token: a service mints it, its holder narrows it and asks
// for a login, a login service discharges that, and the service verifies
// the bundle and clears each request against what it verified.
func Example() {
	const (
		api   = "https://api.example/v1"       // the service: the token's location
		login = "https://login.example/aaa/v1" // the login service
	)
	now := time.Unix(1764000000, 0)
	rootKey := caveat.NewSigningKey()      // the service's alone
	ticketKey := caveat.NewEncryptionKey() // shared by the service and the login service

	// Mint: everything in organization 4721, for a year.
	token, err := caveat.Mint(rootKey, caveat.NewNonce([]byte("key-1"), false), api,
		&flyio.Organization{ID: 4721, Mask: resset.ActionAll},
		caveat.NewValidityWindow(now, 365*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}

	// Attenuate, with no key and no server: only read and control
	// (start, stop) machines.
	readControl := resset.ActionRead | resset.ActionControl
	if err := token.Add(&flyio.Machines{Machines: resset.ResourceSet[string]{"": readControl}}); err != nil {
		log.Fatal(err)
	}

	// A third-party caveat: the token now also needs a discharge from the
	// login service, for a member of organization 4721.
	if err := token.Add3P(ticketKey, login, &auth.ConfineOrganization{ID: 4721}); err != nil {
		log.Fatal(err)
	}

	// The login service opens the ticket, checks its caveats against who
	// logged in, and discharges it: a ten-minute proof that user 42 did,
	// bound to this token.
	ticket, err := caveat.OpenTicket(ticketKey, token.ThirdPartyTickets()[0].Ticket)
	if err != nil {
		log.Fatal(err)
	}
	alice := &auth.DischargeRequest{Flyio: []auth.FlyioIdentity{{UserID: 42, OrganizationIDs: []uint64{4721}}}}
	if err := ticket.Caveats.Clear(alice); err != nil {
		log.Fatal(err)
	}
	user := auth.FlyioUserID(42)
	discharge, err := ticket.Discharge(login, caveat.NewValidityWindow(now, 10*time.Minute), &user)
	if err != nil {
		log.Fatal(err)
	}
	if err := discharge.Bind(token); err != nil {
		log.Fatal(err)
	}
	header := "FlyV1 " + token.String() + "," + discharge.String()

	// The service verifies the bundle: signatures, the discharge, its
	// binding, and whether its attestation comes from a trusted login key.
	bundle, err := caveat.ParseBundle(header)
	if err != nil {
		log.Fatal(err)
	}
	trusted := caveat.TrustedThirdParties{login: {ticketKey}}
	verified, err := bundle.Verify(api, caveat.StaticKey(rootKey), trusted)
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	for _, c := range verified.Caveats {
		names = append(names, c.Name())
	}
	fmt.Println("verified:", strings.Join(names, ", "))
	for _, d := range verified.Discharges {
		fmt.Printf("token %d, caveat %d: discharged by token %d\n", verified.Token, d.Caveat, d.Discharge)
	}
	fmt.Println("expires:", bundle.Expiry(0).At.Sub(now))

	// Then it clears each request against the verified caveats.
	start := &flyio.Access{OrgID: flyio.Ptr[uint64](4721), AppID: flyio.Ptr[uint64](555), Machine: flyio.Ptr("m1"),
		Action: resset.ActionControl, Time: now.Add(time.Minute)}
	fmt.Println("start m1:", verified.Caveats.Clear(start))

	destroy := *start
	destroy.Action = resset.ActionDelete
	err = verified.Caveats.Clear(&destroy)
	fmt.Println("destroy m1:", errors.Is(err, caveat.ErrUnauthorizedForAction))
	fmt.Println(err)

	late := *start
	late.Time = now.Add(11 * time.Minute)
	fmt.Println("start m1 after the login expired:", verified.Caveats.Clear(&late) == nil)
	// Output:
	// verified: Organization, ValidityWindow, Machines, ValidityWindow, FlyioUserID
	// token 0, caveat 3: discharged by token 1
	// expires: 10m0s
	// start m1: <nil>
	// destroy m1: true
	// caveat 2 (Machines): unauthorized for action: action d on machine "m1": d not permitted (permitted: rC)
	// start m1 after the login expired: false
}
