package tp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/auth"
	"github.com/caveatdev/caveat/tp"
)

// A login service discharges the caveats confined to the user whose
// session credential the client presents; the holder of a token fetches
// its discharge and presents both to the first party.
func Example() {
	ticketKey := caveat.NewEncryptionKey() // shared by the first party and the login service

	// The login service.
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	defer ts.Close()
	location := ts.URL + "/aaa/v1"
	srv, err := tp.NewServer(tp.Config{
		Location: location,
		Keys:     []caveat.EncryptionKey{ticketKey},
		Validity: 10 * time.Minute,
		Decide: func(_ context.Context, req *tp.Request) (tp.Decision, error) {
			if req.HTTP.Header.Get("Authorization") != "Bearer alice-session" {
				return tp.Refuse(http.StatusUnauthorized, "log in first"), nil
			}
			alice := &auth.DischargeRequest{Flyio: []auth.FlyioIdentity{{UserID: 42}}}
			if err := req.Ticket.Caveats.Clear(alice); err != nil {
				return tp.Refuse(http.StatusForbidden, err.Error()), nil
			}
			id := auth.FlyioUserID(42)
			return tp.Discharge(&id), nil
		},
	})
	if err != nil {
		panic(err)
	}
	mux.Handle("/aaa/v1/.well-known/macfly/3p", srv)
	mux.Handle("/aaa/v1/.well-known/macfly/3p/poll/", srv)

	// The first party mints a token that needs alice's login.
	rootKey := caveat.NewSigningKey()
	token, _ := caveat.Mint(rootKey, caveat.NewNonce([]byte("key-1"), false), "https://api.example/v1")
	token.Add3P(ticketKey, location, &auth.ConfineUser{ID: 42})

	// The holder fetches the discharge.
	client := &tp.Client{Credentials: map[string]string{"127.0.0.1": "Bearer alice-session"}}
	header, err := client.FetchDischarges(context.Background(), "FlyV1 "+token.String(), "https://api.example/v1")
	if err != nil {
		panic(err)
	}

	// The first party verifies the bundle, trusting the login service.
	b, _ := caveat.ParseBundle(header)
	verified, err := b.Verify("https://api.example/v1", caveat.StaticKey(rootKey),
		caveat.TrustedThirdParties{location: {ticketKey}})
	fmt.Println("verified:", err == nil)
	for _, c := range verified.Caveats {
		fmt.Println(c.Name())
	}
	// Output:
	// verified: true
	// FlyioUserID
	// ValidityWindow
}
