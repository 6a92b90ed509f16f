// Package client is the Go client of a caveat server: its identity API
// (signup, login, logout, whoami), its authority API (organizations, apps,
// tokens) and a Transport that attaches a token bundle to every request and
// keeps the bundle's login discharges fresh, so that a program holding
// session credentials keeps working past any discharge lifetime.
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
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// IsStatus reports whether err is an *APIError with the status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// maxResponse bounds what the client reads of a response.
const maxResponse = 4 << 20

// do sends a JSON request and decodes a JSON answer into out (when not
// nil). A status of 400 or more is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, in, out any, header http.Header) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
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
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return apiError(resp, raw)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the server's answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

func apiError(resp *http.Response, raw []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	ae := &APIError{Status: resp.StatusCode, Message: msg}
	if s := resp.Header.Get("Retry-After"); s != "" {
		var secs int
		if _, err := fmt.Sscanf(s, "%d", &secs); err == nil {
			ae.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return ae
}

// User is an account.
type User struct {
	ID    uint64 `json:"id"`
	Email string `json:"email"`
}

// Organization is an organization, with the caller's role in it where the
// server says.
type Organization struct {
	ID   uint64 `json:"id"`
	Slug string `json:"slug"`
	Role string `json:"role,omitempty"`
}

// App is an app of an organization.
type App struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	OrgID     uint64    `json:"org_id"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is a registry record; Header is set only when it was just created.
type Token struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Profile   string `json:"profile"`
	OrgID     uint64 `json:"org_id"`
	AppID     uint64 `json:"app_id,omitempty"`
	CreatedBy uint64 `json:"created_by"`
	// CreatedByEmail is the creator's email, in lists.
	CreatedByEmail string     `json:"created_by_email,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
	// RevokedBranches counts the token's revoked branches (attenuations
	// revoked with everything derived from them; the token itself and
	// its other attenuations keep working).
	RevokedBranches int    `json:"revoked_branches"`
	Header          string `json:"token,omitempty"`
}

// Command is one allowed command of a machine-exec token.
type Command struct {
	Args  []string `json:"args"`
	Exact bool     `json:"exact,omitempty"`
}

// CreateTokenRequest asks for a named token.
type CreateTokenRequest struct {
	Profile  string    `json:"profile"`
	Name     string    `json:"name,omitempty"`
	Org      string    `json:"org"`
	App      string    `json:"app,omitempty"`
	Expiry   string    `json:"expiry,omitempty"` // a Go duration, e.g. "720h"
	Commands []Command `json:"commands,omitempty"`
}

// Organizations lists the caller's organizations.
func (c *Client) Organizations(ctx context.Context) ([]Organization, error) {
	var out struct {
		Organizations []Organization `json:"organizations"`
	}
	err := c.do(ctx, "GET", "/v1/orgs", nil, &out, nil)
	return out.Organizations, err
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

// Apps lists the organization's apps.
func (c *Client) Apps(ctx context.Context, org string) ([]App, error) {
	var out struct {
		Apps []App `json:"apps"`
	}
	err := c.do(ctx, "GET", "/v1/apps?org_slug="+url.QueryEscape(org), nil, &out, nil)
	return out.Apps, err
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

// Tokens lists the tokens of an organization, or of one of its apps.
func (c *Client) Tokens(ctx context.Context, org, app string) ([]Token, error) {
	q := url.Values{"org": {org}}
	if app != "" {
		q.Set("app", app)
	}
	var out struct {
		Tokens []Token `json:"tokens"`
	}
	err := c.do(ctx, "GET", "/v1/tokens?"+q.Encode(), nil, &out, nil)
	return out.Tokens, err
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

// VerifiedToken is one permission token the authority verified, as
// POST /v1/tokens/authenticate describes it: Fly's two fields and caveat's.
type VerifiedToken struct {
	Caveats         json.RawMessage `json:"caveats"`
	PermissionToken string          `json:"permission_token"`
	TokenID         string          `json:"token_id"`
	Kind            string          `json:"kind"` // "session" or "token"
	UserID          uint64          `json:"user_id"`
	OrgID           uint64          `json:"org_id,omitempty"`
	ExpiresAt       *time.Time      `json:"expires_at,omitempty"`
	Memberships     []Organization  `json:"memberships,omitempty"`
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

// BranchRevocation is the answer to a branch revocation.
type BranchRevocation struct {
	// ID is the token's id, which every branch of it shares.
	ID string `json:"id"`
	// Branch is the revoked branch: the binding id of the branch token's
	// final tail, in hex.
	Branch string `json:"branch"`
	// Revoked is false when the branch was already revoked.
	Revoked bool `json:"revoked"`
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

// Key is an organization's root key as the server lists it (never its
// material).
type Key struct {
	KID       string     `json:"kid"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	RotatedAt *time.Time `json:"rotated_at,omitempty"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// Keys lists the organization's root keys.
func (c *Client) Keys(ctx context.Context, slug string) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.do(ctx, "GET", "/v1/orgs/"+url.PathEscape(slug)+"/keys", nil, &out, nil)
	return out.Keys, err
}

// RetireKey stops a rotated key from verifying: the tokens it minted stop
// working.
func (c *Client) RetireKey(ctx context.Context, slug, kid string) error {
	return c.do(ctx, "POST", "/v1/orgs/"+url.PathEscape(slug)+"/retire-key", map[string]string{"kid": kid}, nil, nil)
}
