package tp

// Client credentials go in through the transport, not onto the request:
// http.Client copies a request's Authorization header to redirects within
// the same domain, while the transport sees every hop's own hostname.

import (
	"net"
	"net/http"
	"strings"
)

// httpClient returns c.HTTP with the credentials added by its transport,
// so that they follow the request's host through redirects and polls.
func (c *Client) httpClient() *http.Client {
	base := c.HTTP
	if base == nil {
		base = http.DefaultClient
	}
	if len(c.Credentials) == 0 {
		return base
	}
	creds := make(map[string]string, len(c.Credentials))
	for host, v := range c.Credentials {
		creds[normalHost(host)] = v
	}
	hc := *base
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &credTransport{base: rt, creds: creds}
	return &hc
}

func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// credTransport adds the Authorization header for the request's hostname.
type credTransport struct {
	base  http.RoundTripper
	creds map[string]string
}

func (t *credTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if v, ok := t.creds[normalHost(r.URL.Hostname())]; ok {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", v)
	}
	return t.base.RoundTrip(r)
}
