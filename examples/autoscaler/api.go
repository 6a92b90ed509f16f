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
	_, err := a.exchange(ctx, method, path, out)
	return err
}

// exchange is do, and returns the answer's header.
func (a *api) exchange(ctx context.Context, method, path string, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", a.token)
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return resp.Header, decode(resp, out)
}

// maxAnswer bounds what is read of an answer: a page of 100 machines is
// far less.
const maxAnswer = 4 << 20

// decode reads an answer: an *apiError for a refusal, else JSON into out.
func decode(resp *http.Response, out any) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if len(raw) > maxAnswer {
		return fmt.Errorf("the answer is larger than %d bytes, more than a page of machines should be", maxAnswer)
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

// List reads every machine of the app, a page at a time: the server
// answers 100 per request and names the next page in a Link header
// (rel="next"), which this follows.
func (a *api) List(ctx context.Context, app string) ([]machine, error) {
	var all []machine
	path := machinesPath(app)
	for path != "" {
		var page []machine
		h, err := a.exchange(ctx, "GET", path, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		path = nextLink(h)
	}
	return all, nil
}

// nextLink is the path of the rel="next" link of a Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if ok && strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				return strings.Trim(strings.TrimSpace(target), "<>")
			}
		}
	}
	return ""
}

func (a *api) Start(ctx context.Context, app, id string) error {
	return a.do(ctx, "POST", machinesPath(app)+"/"+url.PathEscape(id)+"/start", nil)
}

func (a *api) Stop(ctx context.Context, app, id string) error {
	return a.do(ctx, "POST", machinesPath(app)+"/"+url.PathEscape(id)+"/stop", nil)
}
