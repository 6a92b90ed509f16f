package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/tp"
)

// Transport is an http.RoundTripper that sends a token bundle as
// "Authorization: FlyV1 …" with every request and keeps the bundle
// working: before a request, it fetches the discharges that are missing
// and renews those about to expire (spec §8, through tp.Client), and after
// a 401 it renews once and retries.
//
// A named token (from "caveat tokens create") needs none of this: it has no
// third-party caveat, and is sent as it is. A session bundle (from a login)
// has the login caveat, whose discharge lasts minutes; with the session's
// Secret, Transport renews it for as long as the session lasts.
type Transport struct {
	// Base sends the requests; http.DefaultTransport when nil.
	Base http.RoundTripper
	// Location is the permission tokens' location, the server's URL + "/v1".
	Location string
	// Secret is the session secret, sent (as a Bearer credential) only to
	// SecretHost when fetching discharges.
	Secret     string
	SecretHost string
	// Margin renews a discharge this long before it expires, or at a third
	// of its lifetime before, whichever is shorter (DefaultMargin when 0).
	Margin time.Duration
	// OnRenew is called with the new bundle after every renewal, so that
	// the caller can save it; it must not call the Transport.
	OnRenew func(bundle string)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// TP fetches discharges; when nil, one is built from Base and Secret.
	TP *tp.Client

	mu     sync.Mutex
	bundle string
}

// DefaultMargin is the default renewal margin.
const DefaultMargin = time.Minute

// NewTransport returns a Transport for a server at baseURL holding bundle
// and, for a session, its secret.
func NewTransport(baseURL, bundle, secret string) *Transport {
	host := ""
	if u, err := url.Parse(baseURL); err == nil {
		host = u.Hostname()
	}
	return &Transport{Location: baseURL + "/v1", Secret: secret, SecretHost: host, bundle: bundle}
}

// Bundle returns the current bundle.
func (t *Transport) Bundle() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bundle
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) tpClient() *tp.Client {
	if t.TP != nil {
		return t.TP
	}
	c := &tp.Client{HTTP: &http.Client{Transport: t.base(), Timeout: time.Minute}}
	if t.Secret != "" && t.SecretHost != "" {
		c.Credentials = map[string]string{t.SecretHost: "Bearer " + t.Secret}
	}
	return c
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	header, err := t.fresh(req.Context(), false)
	if err != nil {
		return nil, err
	}
	resp, err := t.base().RoundTrip(authorized(req, header))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || t.Secret == "" {
		return resp, err
	}
	// The server refused the bundle: its discharge may have been cut short
	// (clock skew, a server-side change). Renew once and retry, if the
	// request can be sent again.
	if req.Body != nil && req.GetBody == nil {
		return resp, nil
	}
	header2, ferr := t.fresh(req.Context(), true)
	if ferr != nil || header2 == header {
		return resp, nil
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	resp.Body.Close()
	return t.base().RoundTrip(authorized(retry, header2))
}

func authorized(req *http.Request, header string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", header)
	return r
}

// Renew fetches missing discharges and renews those about to expire
// (all of them when force is set), and returns the bundle to send.
func (t *Transport) Renew(ctx context.Context, force bool) (string, error) {
	return t.fresh(ctx, force)
}

func (t *Transport) fresh(ctx context.Context, force bool) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bundle == "" {
		return "", errors.New("no token: log in, or give a token")
	}
	b, err := caveat.ParseBundle(t.bundle)
	if err != nil {
		return "", fmt.Errorf("the saved token is malformed: %w", err)
	}
	now := t.now()
	margin := t.margin(b)
	if force {
		margin = 100 * 365 * 24 * time.Hour // every discharge
	}
	expiring := tp.Expiring(b, now, margin)
	if len(expiring) == 0 && !t.missing(b) {
		return "FlyV1 " + b.String(), nil
	}
	if t.Secret == "" && len(expiring) > 0 {
		// Nothing to renew with: send what there is and let the server
		// say what is wrong.
		return "FlyV1 " + b.String(), nil
	}
	header, err := t.tpClient().FetchDischarges(ctx, tp.DropExpiring(b, now, margin).Header(), t.Location)
	if err != nil {
		// Keep using discharges that have not expired yet.
		if len(tp.Expiring(b, now, 0)) == 0 && !t.missing(b) && !force {
			return "FlyV1 " + b.String(), nil
		}
		return "", fmt.Errorf("renewing the login discharge: %w", err)
	}
	t.bundle = header
	if t.OnRenew != nil {
		t.OnRenew(header)
	}
	return header, nil
}

// missing reports whether a permission token for t.Location has a
// third-party caveat that no token of the bundle answers.
func (t *Transport) missing(b *caveat.Bundle) bool {
	for i := range b.Tokens {
		if b.Tokens[i].Location != t.Location || b.IsDischarge(i) {
			continue
		}
		for _, tp := range b.ThirdParties(i) {
			if !tp.Discharged() {
				return true
			}
		}
	}
	return false
}

// margin is the renewal margin for the bundle: Margin, or a third of the
// shortest discharge lifetime when that is shorter.
func (t *Transport) margin(b *caveat.Bundle) time.Duration {
	m := t.Margin
	if m <= 0 {
		m = DefaultMargin
	}
	for i := range b.Tokens {
		if !b.IsDischarge(i) {
			continue
		}
		for _, c := range b.Tokens[i].Caveats {
			if c.Type != caveat.TypeValidityWindow {
				continue
			}
			v, err := c.Decode()
			if err != nil {
				continue
			}
			vw := v.(*caveat.ValidityWindow)
			if life := time.Duration(vw.NotAfter-vw.NotBefore) * time.Second / 3; life > 0 && life < m {
				m = life
			}
		}
	}
	return m
}
