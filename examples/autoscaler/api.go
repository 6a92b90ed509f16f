package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// api calls the Machines API the way a client of Fly's Machines API does:
// only the base URL and the token differ.
type api struct {
	base  string
	token string
	http  *http.Client
}

func newAPI(base, token string) *api {
	if !strings.HasPrefix(token, "FlyV1 ") && !strings.HasPrefix(token, "Bearer ") {
		token = "FlyV1 " + token
	}
	return &api{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is a refusal from the API.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

func (a *api) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", a.token)
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return &apiError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func machinesPath(app string) string { return "/v1/apps/" + url.PathEscape(app) + "/machines" }

func (a *api) List(ctx context.Context, app string) ([]machine, error) {
	var ms []machine
	err := a.do(ctx, "GET", machinesPath(app), &ms)
	return ms, err
}

func (a *api) Start(ctx context.Context, app, id string) error {
	return a.do(ctx, "POST", machinesPath(app)+"/"+url.PathEscape(id)+"/start", nil)
}

func (a *api) Stop(ctx context.Context, app, id string) error {
	return a.do(ctx, "POST", machinesPath(app)+"/"+url.PathEscape(id)+"/stop", nil)
}
