package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caveatdev/caveat/api"
)

// Signup creates an account; org names the organization to create with it
// (the server picks one for the first user when it is empty).
func (c *Client) Signup(ctx context.Context, email, password, org string) (SignupResult, error) {
	in := map[string]string{"email": email, "password": password}
	if org != "" {
		in["organization"] = org
	}
	var out SignupResult
	err := c.do(ctx, "POST", "/aaa/v1/users", in, &out, nil)
	return out, err
}

// Login logs in with a password.
func (c *Client) Login(ctx context.Context, email, password string) (Session, error) {
	var out Session
	err := c.do(ctx, "POST", "/aaa/v1/sessions", map[string]string{"email": email, "password": password}, &out, nil)
	return out, err
}

// LoginWeb logs in through the browser: it asks the server for a login
// page, hands its URL to open (which shows or opens it), and polls until
// the user has logged in there, every interval, until ctx is done.
func (c *Client) LoginWeb(ctx context.Context, open func(url string) error, interval time.Duration) (Session, error) {
	var start api.WebLogin
	if err := c.do(ctx, "POST", "/aaa/v1/sessions/web", map[string]string{}, &start, nil); err != nil {
		return Session{}, err
	}
	ui := start.UserInteractive
	if ui.UserURL == "" || ui.PollURL == "" {
		return Session{}, errors.New("the server did not answer with a login page and a poll URL")
	}
	if err := open(ui.UserURL); err != nil {
		return Session{}, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	for {
		var out Session
		done, err := pollOnce(ctx, hc, ui.PollURL, &out)
		if err != nil {
			return Session{}, err
		}
		if done {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return Session{}, fmt.Errorf("waiting for the browser login: %w", ctx.Err())
		case <-time.After(interval):
		}
	}
}

// Logout ends the session of the secret.
func (c *Client) Logout(ctx context.Context, secret string) error {
	return c.do(ctx, "DELETE", "/aaa/v1/sessions/current", nil, nil, bearer(secret))
}

// WhoAmI returns the account and session of the secret.
func (c *Client) WhoAmI(ctx context.Context, secret string) (WhoAmI, error) {
	var out WhoAmI
	err := c.do(ctx, "GET", "/aaa/v1/whoami", nil, &out, bearer(secret))
	return out, err
}

func bearer(secret string) http.Header {
	return http.Header{"Authorization": {"Bearer " + secret}}
}

// pollOnce GETs a poll URL (spec §8.3): 202 is "not yet"; 200 with
// {"error"} is a failure; 200 otherwise is the answer, decoded into out.
func pollOnce(ctx context.Context, hc *http.Client, pollURL string, out any) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", pollURL, nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	raw, err := readAnswer(resp, "GET", "poll URL")
	if err != nil {
		return false, err
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return false, nil
	case resp.StatusCode >= 400:
		return false, apiError(resp, raw)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return false, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := decodeAnswer(resp, "GET", "poll URL", raw, out); err != nil {
		return false, err
	}
	return true, nil
}
