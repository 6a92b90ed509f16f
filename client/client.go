// Package client is the Go client of a caveat server: its identity API
// (signup, login, logout, whoami), its authority API (organizations, apps,
// tokens, members), its Machines API, a Transport that attaches a token
// bundle to every request and keeps the bundle's login discharges fresh,
// so that a program holding session credentials keeps working past any
// discharge lifetime, and Remote, the middleware.Authenticator of a
// service that verifies tokens through the authority.
//
// The shapes it sends and reads are package api's, which the server's
// handlers use too; the types of this package with the same names are
// aliases of them.
//
// The caveat CLI's online commands are built on it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one caveat server. Requests that need a token take it from
// HTTP's Transport (see Transport); without one they are anonymous.
type Client struct {
	// BaseURL is the server's public URL, without /v1.
	BaseURL string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// New returns a client of the server at baseURL.
func New(baseURL string, hc *http.Client) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: hc}
}

// APIError is a refusal from the server: its status and its message.
type APIError struct {
	Status  int
	Message string
	// RetryAfter is set from the Retry-After header of a 429.
	RetryAfter time.Duration

	// page is set when Message is the answer's text rather than a caveat
	// server's JSON error (a proxy's page, say): shown to the user of this
	// client, never relayed further (see Remote).
	page bool
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// IsStatus reports whether err is an *APIError with the status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// MaxResponse bounds what the client reads of an answer. Lists come a
// page at a time (at most 1 000 records, a few hundred kilobytes), so an
// answer larger than this is not one the client asked for: it is refused
// as cut, never read on.
const MaxResponse = 4 << 20

// AnswerError is an answer the client cannot use although the server did
// answer: larger than MaxResponse, cut short, or not the JSON expected. It
// says which, so that nobody is told to check whether the server runs.
type AnswerError struct {
	Method, Path string
	// Status is the answer's HTTP status.
	Status int
	// Kind is what is wrong: AnswerTooLarge, AnswerCut or AnswerMalformed.
	Kind AnswerKind
	// Problem says it, for people.
	Problem string
	// Err is the underlying error, if any.
	Err error
}

func (e *AnswerError) Error() string {
	if e.Method == "" {
		return "the server's answer " + e.Problem
	}
	return fmt.Sprintf("%s %s: the server's answer (HTTP %d) %s", e.Method, e.Path, e.Status, e.Problem)
}

// Unwrap returns the underlying error.
func (e *AnswerError) Unwrap() error { return e.Err }

// AnswerKind is what makes an answer unusable.
type AnswerKind uint8

// The kinds of unusable answers.
const (
	// AnswerMalformed: not the JSON expected (another service's page, a
	// proxy's error, a server of another version).
	AnswerMalformed AnswerKind = iota
	// AnswerTooLarge: larger than MaxResponse.
	AnswerTooLarge
	// AnswerCut: the connection ended before the answer did.
	AnswerCut
)

// readAnswer reads a body of at most MaxResponse bytes; a longer one, or
// one cut short, is an *AnswerError.
func readAnswer(resp *http.Response, method, path string) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, &AnswerError{Method: method, Path: path, Status: resp.StatusCode, Err: err, Kind: AnswerCut,
			Problem: fmt.Sprintf("was cut short after %d bytes: %v", len(raw), err)}
	}
	if len(raw) > MaxResponse {
		return nil, &AnswerError{Method: method, Path: path, Status: resp.StatusCode, Kind: AnswerTooLarge,
			Problem: fmt.Sprintf("is larger than %d MiB, the most this client reads; it was not read to its end", MaxResponse>>20)}
	}
	return raw, nil
}

// decodeAnswer decodes a JSON answer into out; anything else is an
// *AnswerError naming the content type and the size, never the content
// (which may hold a token).
func decodeAnswer(resp *http.Response, method, path string, raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		ct := resp.Header.Get("Content-Type")
		if ct == "" {
			ct = "no content type"
		}
		return &AnswerError{Method: method, Path: path, Status: resp.StatusCode, Err: err, Kind: AnswerMalformed,
			Problem: fmt.Sprintf("is not the JSON expected (%d bytes, %s): %v", len(raw), ct, err)}
	}
	return nil
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil). A status of 400 or more is an *APIError; an answer that cannot be
// read or decoded is an *AnswerError.
func (c *Client) do(ctx context.Context, method, path string, in, out any, header http.Header) error {
	_, err := c.exchange(ctx, method, path, in, out, header)
	return err
}

// exchange is do, and returns the answer's header.
func (c *Client) exchange(ctx context.Context, method, path string, in, out any, header http.Header) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readAnswer(resp, method, path)
	if err != nil {
		return resp.Header, err
	}
	if resp.StatusCode >= 400 {
		return resp.Header, apiError(resp, raw)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.Header, nil
	}
	return resp.Header, decodeAnswer(resp, method, path, raw, out)
}

func apiError(resp *http.Response, raw []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg, page := strings.TrimSpace(string(raw)), true
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg, page = e.Error, false
	}
	if msg == "" {
		msg, page = http.StatusText(resp.StatusCode), false
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	ae := &APIError{Status: resp.StatusCode, Message: msg, page: page}
	if s := resp.Header.Get("Retry-After"); s != "" {
		var secs int
		if _, err := fmt.Sscanf(s, "%d", &secs); err == nil {
			ae.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return ae
}

// OrganizationsPage lists a page of the caller's organizations and the
// cursor of the next page ("" after the last).
func (c *Client) OrganizationsPage(ctx context.Context, p Page) ([]Organization, string, error) {
	var out struct {
		Organizations []Organization `json:"organizations"`
		Next          string         `json:"next"`
	}
	err := c.do(ctx, "GET", "/v1/orgs"+p.query(nil), nil, &out, nil)
	return out.Organizations, out.Next, err
}

// Organizations lists all the caller's organizations, a page at a time.
// A user belongs to few; for lists that can be long, see Pages.
func (c *Client) Organizations(ctx context.Context) ([]Organization, error) {
	return Collect(Pages(Page{Limit: maxPage}, func(p Page) ([]Organization, string, error) { return c.OrganizationsPage(ctx, p) }))
}

// CreateOrganization creates an organization with the caller as admin.
func (c *Client) CreateOrganization(ctx context.Context, slug string) (Organization, error) {
	var out Organization
	err := c.do(ctx, "POST", "/v1/orgs", map[string]string{"slug": slug}, &out, nil)
	return out, err
}

// RotateKey gives the organization a new minting key and returns its id
// in hex.
func (c *Client) RotateKey(ctx context.Context, slug string) (string, error) {
	var out struct {
		KID string `json:"kid"`
	}
	err := c.do(ctx, "POST", "/v1/orgs/"+url.PathEscape(slug)+"/rotate-key", nil, &out, nil)
	return out.KID, err
}

// AppsPage lists a page of the organization's apps that the caller may
// read, and the cursor of the next page ("" after the last). A page may
// hold fewer apps than its limit when the caller's caveats hide some.
func (c *Client) AppsPage(ctx context.Context, org string, p Page) ([]App, string, error) {
	var out struct {
		Apps []App  `json:"apps"`
		Next string `json:"next"`
	}
	err := c.do(ctx, "GET", "/v1/apps"+p.query(url.Values{"org_slug": {org}}), nil, &out, nil)
	return out.Apps, out.Next, err
}

// Apps yields the organization's apps a page at a time, from p on.
func (c *Client) Apps(ctx context.Context, org string, p Page) iter.Seq2[[]App, error] {
	return Pages(p, func(p Page) ([]App, string, error) { return c.AppsPage(ctx, org, p) })
}

// CreateApp creates an app in the organization.
func (c *Client) CreateApp(ctx context.Context, org, name string) (App, error) {
	var out App
	err := c.do(ctx, "POST", "/v1/apps", map[string]string{"app_name": name, "org_slug": org}, &out, nil)
	return out, err
}

// CreateToken mints a named token; the result's Header is the token.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (Token, error) {
	var out Token
	err := c.do(ctx, "POST", "/v1/tokens", req, &out, nil)
	return out, err
}

// TokenQuery says which tokens to list.
type TokenQuery struct {
	// Org is the organization's slug.
	Org string
	// App, when set, lists only the tokens of this app.
	App string
	// Expired lists the tokens that have expired too.
	Expired bool
}

// TokensPage lists a page of the tokens q selects, oldest first, and the
// cursor of the next page ("" after the last).
func (c *Client) TokensPage(ctx context.Context, q TokenQuery, p Page) ([]Token, string, error) {
	v := url.Values{"org": {q.Org}}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.Expired {
		v.Set("expired", "true")
	}
	var out struct {
		Tokens []Token `json:"tokens"`
		Next   string  `json:"next"`
	}
	err := c.do(ctx, "GET", "/v1/tokens"+p.query(v), nil, &out, nil)
	return out.Tokens, out.Next, err
}

// Tokens yields the tokens q selects a page at a time, from p on: an
// organization may hold millions.
func (c *Client) Tokens(ctx context.Context, q TokenQuery, p Page) iter.Seq2[[]Token, error] {
	return Pages(p, func(p Page) ([]Token, string, error) { return c.TokensPage(ctx, q, p) })
}

// RevokeToken revokes a token by id; it reports false when the token was
// already revoked.
func (c *Client) RevokeToken(ctx context.Context, id string) (bool, error) {
	var out struct {
		Revoked bool `json:"revoked"`
	}
	err := c.do(ctx, "DELETE", "/v1/tokens/"+url.PathEscape(id), nil, &out, nil)
	return out.Revoked, err
}

// Authenticate asks the authority who presents header: the permission
// token it verified, or an *APIError (401) saying why none did.
func (c *Client) Authenticate(ctx context.Context, header string) (VerifiedToken, error) {
	var out []VerifiedToken
	if err := c.do(ctx, "POST", "/v1/tokens/authenticate", map[string]any{"header": header}, &out, nil); err != nil {
		return VerifiedToken{}, err
	}
	if len(out) == 0 {
		return VerifiedToken{}, &APIError{Status: http.StatusUnauthorized, Message: "the authority verified no permission token"}
	}
	return out[0], nil
}

// RevokeBranch revokes the branch that token is (a token attenuated from
// one of the caller's tokens, as a header or bare, with its discharges if
// it has third-party caveats): it and everything attenuated from it are
// refused, and the tokens it was attenuated from keep working. The caller
// must be logged in as an admin of the token's organization or its
// creator.
func (c *Client) RevokeBranch(ctx context.Context, token string) (BranchRevocation, error) {
	var out BranchRevocation
	err := c.do(ctx, "POST", "/v1/tokens/revoke-branch", map[string]string{"token": token}, &out, nil)
	return out, err
}

// RevokeSelf revokes the branch that the client's own token is, with the
// client's token as the credential: no login is needed, and nothing above
// the token (the tokens it was attenuated from) is affected.
func (c *Client) RevokeSelf(ctx context.Context) (BranchRevocation, error) {
	var out BranchRevocation
	err := c.do(ctx, "POST", "/v1/tokens/revoke", nil, &out, nil)
	return out, err
}

// Authorize asks the authority whether header allows access (a
// flyio.Access in JSON). It returns nil when allowed, and an *APIError
// (403 naming the caveat, or 401) otherwise.
func (c *Client) Authorize(ctx context.Context, header string, access json.RawMessage) error {
	return c.do(ctx, "POST", "/v1/tokens/authorize", map[string]any{"header": header, "access": access}, nil, nil)
}

// KeysPage lists a page of the organization's root keys and the cursor of
// the next page ("" after the last).
func (c *Client) KeysPage(ctx context.Context, slug string, p Page) ([]Key, string, error) {
	var out struct {
		Keys []Key  `json:"keys"`
		Next string `json:"next"`
	}
	err := c.do(ctx, "GET", "/v1/orgs/"+url.PathEscape(slug)+"/keys"+p.query(nil), nil, &out, nil)
	return out.Keys, out.Next, err
}

// Keys yields the organization's root keys a page at a time, from p on.
func (c *Client) Keys(ctx context.Context, slug string, p Page) iter.Seq2[[]Key, error] {
	return Pages(p, func(p Page) ([]Key, string, error) { return c.KeysPage(ctx, slug, p) })
}

// RetireKey stops a rotated key from verifying: the tokens it minted stop
// working.
func (c *Client) RetireKey(ctx context.Context, slug, kid string) error {
	return c.do(ctx, "POST", "/v1/orgs/"+url.PathEscape(slug)+"/retire-key", map[string]string{"kid": kid}, nil, nil)
}
