package tp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/caveatdev/caveat"
)

// Client errors. Every error FetchDischarges returns for a third party is an
// *Error, which wraps one of these or the transport's error.
var (
	// ErrRefused means the third party answered with {"error": …}: it
	// refused to discharge, or the flow failed.
	ErrRefused = errors.New("third party refused")
	// ErrProtocol means the answer does not follow the protocol: not JSON,
	// none of the expected fields, or a discharge that does not decode or
	// is not for the ticket sent.
	ErrProtocol = errors.New("bad discharge response")
	// ErrNoUserCallback means the third party wants the user to visit a URL
	// and Client.UserURL is nil.
	ErrNoUserCallback = errors.New("missing user-url callback")
)

// Error is the failure of one third party's flow.
type Error struct {
	// Location is the third party's location.
	Location string
	// Step is where the flow failed: "init", "poll" or "user".
	Step string
	// Status is the HTTP status of the failing answer, or 0.
	Status int
	// Message is the third party's "error" message, if it sent one.
	Message string
	// Err is the cause.
	Err error
}

// Error says "discharge from <location>: <step>: <cause>".
func (e *Error) Error() string {
	cause := "failed"
	if e.Err != nil {
		cause = e.Err.Error()
	}
	loc := e.Location
	if strings.ContainsFunc(loc, unicode.IsControl) {
		loc = fmt.Sprintf("%q", loc)
	}
	return "discharge from " + loc + ": " + e.Step + ": " + cause
}

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Defaults of the poll backoff.
const (
	DefaultPollInterval    = time.Second
	DefaultMaxPollInterval = 30 * time.Second
)

// maxParallel bounds the flows a Client runs at once.
const maxParallel = 8

// Client fetches the discharges of a bundle's third-party caveats (spec
// §8.4). The zero Client works: http.DefaultClient, no credentials, no
// user interaction. A Client may be used concurrently.
type Client struct {
	// HTTP makes the requests; http.DefaultClient when nil. Give it a
	// cookie jar to keep the principal's session with third parties.
	HTTP *http.Client
	// Credentials maps a hostname to the Authorization header value sent to
	// it ("Bearer …"), on init and poll requests, redirects included. It is
	// sent to no other host. Matching ignores case and the port, not the
	// scheme: list only hosts whose locations are https URLs.
	Credentials map[string]string
	// UserURL shows the user a third party's URL (prints it, opens a
	// browser) and returns; polling starts when it returns. Without it, a
	// third party that needs the user fails with ErrNoUserCallback.
	UserURL func(ctx context.Context, url string) error
	// PollInterval is the first wait between polls, doubled after each
	// "not ready" up to MaxPollInterval (DefaultPollInterval and
	// DefaultMaxPollInterval when zero).
	PollInterval    time.Duration
	MaxPollInterval time.Duration
	// Ignore lists third-party locations to fetch nothing from.
	Ignore []string
	// RequireBinding fails a flow whose discharge is not bound to the
	// permission token it was asked for (a third party that ignores the
	// parent_binding extension). Proof permission tokens, which cannot be
	// bound to, are exempt.
	RequireBinding bool
	// Sleep waits d or until ctx is done; a timer when nil. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// job is one discharge to fetch.
type job struct {
	location string
	ticket   []byte
	binding  []byte // nil when the parent is a proof
}

// FetchDischarges fetches a discharge for every third-party caveat of the
// bundle's permission tokens that has none yet, and returns the bundle with
// the new discharges appended, starting with "FlyV1 " if header had a
// scheme.
//
// The permission tokens are those whose Location is firstPartyLocation; when
// it is empty, every token that is not a discharge. Locations in c.Ignore
// are skipped. Each discharge is asked to be bound to its permission token
// (see the package documentation). Flows run in parallel, unless both a
// cookie jar and UserURL are set: then one after another, so that the
// session cookie of the first interaction spares the user the next ones.
//
// The output keeps every token of the input in order (fo1_ entries, which
// caveat.ParseBundle skips, excepted). A third party may answer "not ready"
// forever: ctx bounds the whole operation, so give it a deadline.
//
// On failure it returns "" and the first error, an *Error naming the
// location and the step; the flows still running are cancelled.
func (c *Client) FetchDischarges(ctx context.Context, header, firstPartyLocation string) (string, error) {
	b, err := caveat.ParseBundle(header)
	if err != nil {
		return "", fmt.Errorf("fetch discharges: %w", err)
	}
	jobs := c.jobs(b, firstPartyLocation)
	got := make([]string, len(jobs))
	if err := c.run(ctx, jobs, got); err != nil {
		return "", err
	}
	var sb strings.Builder
	if caveat.StripScheme(header) != strings.TrimSpace(header) {
		sb.WriteString("FlyV1 ")
	}
	sb.WriteString(b.String())
	for _, d := range got {
		sb.WriteByte(',')
		sb.WriteString(d)
	}
	return sb.String(), nil
}

func (c *Client) jobs(b *caveat.Bundle, firstParty string) []job {
	all := make([]*caveat.Macaroon, len(b.Tokens))
	for i := range b.Tokens {
		all[i] = &b.Tokens[i]
	}
	var jobs []job
	seen := make(map[string]bool)
	for i, m := range all {
		if firstParty != "" && m.Location != firstParty || firstParty == "" && b.IsDischarge(i) {
			continue
		}
		var binding []byte
		if !m.IsProof() {
			binding = caveat.BindingID(m)
		}
		for _, t := range m.ThirdPartyTickets(all...) {
			if c.ignored(t.Location) {
				continue
			}
			key := string(t.Ticket) + "\x00" + string(binding)
			if seen[key] {
				continue
			}
			seen[key] = true
			jobs = append(jobs, job{location: t.Location, ticket: t.Ticket, binding: binding})
		}
	}
	return jobs
}

func (c *Client) ignored(location string) bool {
	for _, l := range c.Ignore {
		if l == location {
			return true
		}
	}
	return false
}

// run fetches the jobs' discharges into out: one after another, or in
// parallel with the first failure cancelling the rest.
func (c *Client) run(ctx context.Context, jobs []job, out []string) error {
	hc := c.httpClient()
	if c.HTTP != nil && c.HTTP.Jar != nil && c.UserURL != nil {
		for i, j := range jobs {
			d, err := c.fetch(ctx, hc, j)
			if err != nil {
				return err
			}
			out[i] = d
		}
		return nil
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, maxParallel)
	)
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
spawn:
	for i, j := range jobs {
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			break spawn
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := c.fetch(runCtx, hc, j)
			if err != nil {
				fail(err)
				return
			}
			out[i] = d
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for _, d := range out {
		if d == "" { // not started: the caller's context ended
			return fmt.Errorf("fetch discharges: %w", ctx.Err())
		}
	}
	return nil
}

// fetch runs one flow: init, then poll or user interaction and poll.
func (c *Client) fetch(ctx context.Context, hc *http.Client, j job) (string, error) {
	fail := func(step string, status int, err error) error {
		return &Error{Location: j.location, Step: step, Status: status, Err: err}
	}
	initURL, err := url.Parse(InitURL(j.location))
	if err != nil || !httpURL(initURL) {
		return "", fail("init", 0, errors.New("location is not an http(s) URL"))
	}
	req := initRequest{Ticket: caveat.EncodeTicket(j.ticket)}
	if j.binding != nil {
		req.ParentBinding = base64.StdEncoding.EncodeToString(j.binding)
	}
	body, _ := json.Marshal(&req) // strings only: cannot fail
	status, data, err := c.do(ctx, hc, http.MethodPost, initURL.String(), body)
	if err != nil {
		return "", fail("init", status, err)
	}
	// The init status is not checked (spec §8.4): the body says it all.
	r, err := decodeResponse(data)
	if err != nil {
		return "", fail("init", status, err)
	}
	switch {
	case r.Error != "":
		return "", c.refused(j, "init", status, r.Error)
	case r.Discharge != "":
		d, err := checkDischarge(r.Discharge, j, c.RequireBinding)
		if err != nil {
			return "", fail("init", status, err)
		}
		return d, nil
	case r.PollURL != "":
		pollURL, err := resolve(initURL, r.PollURL)
		if err != nil {
			return "", fail("init", status, fmt.Errorf("%w: poll_url: %v", ErrProtocol, err))
		}
		return c.poll(ctx, hc, j, pollURL)
	case r.UserInteractive != nil:
		pollURL, err := resolve(initURL, r.UserInteractive.PollURL)
		if err != nil {
			return "", fail("init", status, fmt.Errorf("%w: user_interactive.poll_url: %v", ErrProtocol, err))
		}
		userURL, err := resolve(initURL, r.UserInteractive.UserURL)
		if err != nil {
			return "", fail("init", status, fmt.Errorf("%w: user_interactive.user_url: %v", ErrProtocol, err))
		}
		if c.UserURL == nil {
			return "", fail("user", 0, ErrNoUserCallback)
		}
		if err := c.UserURL(ctx, userURL); err != nil {
			return "", fail("user", 0, err)
		}
		return c.poll(ctx, hc, j, pollURL)
	}
	return "", fail("init", status, fmt.Errorf("%w: no error, discharge, poll_url or user_interactive (HTTP %d)", ErrProtocol, status))
}

func (c *Client) refused(j job, step string, status int, msg string) error {
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return &Error{Location: j.location, Step: step, Status: status, Message: msg,
		Err: fmt.Errorf("%w: %q (HTTP %d)", ErrRefused, msg, status)}
}

// poll GETs pollURL until the answer is not 202, waiting longer each time.
func (c *Client) poll(ctx context.Context, hc *http.Client, j job, pollURL string) (string, error) {
	wait, max := c.PollInterval, c.MaxPollInterval
	if wait <= 0 {
		wait = DefaultPollInterval
	}
	if max <= 0 {
		max = DefaultMaxPollInterval
	}
	sleep := c.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	for {
		status, data, err := c.do(ctx, hc, http.MethodGet, pollURL, nil)
		if err != nil {
			return "", &Error{Location: j.location, Step: "poll", Status: status, Err: err}
		}
		if status == http.StatusAccepted {
			// Not ready; the body is ignored (spec §8.3).
			if err := sleep(ctx, wait); err != nil {
				return "", &Error{Location: j.location, Step: "poll", Err: err}
			}
			wait = min(2*wait, max)
			continue
		}
		r, err := decodeResponse(data)
		if err == nil && r.Error != "" {
			return "", c.refused(j, "poll", status, r.Error)
		}
		if err == nil && r.Discharge == "" {
			err = fmt.Errorf("%w: no discharge in the poll answer (HTTP %d)", ErrProtocol, status)
		}
		if err == nil {
			var d string
			if d, err = checkDischarge(r.Discharge, j, c.RequireBinding); err == nil {
				return d, nil
			}
		}
		return "", &Error{Location: j.location, Step: "poll", Status: status, Err: err}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do sends one request and reads the answer, at most maxResponseBody bytes.
// Its errors never quote the URL, which may hold a poll secret.
func (c *Client) do(ctx context.Context, hc *http.Client, method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, errors.New("bad request URL")
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(data) > maxResponseBody {
		return resp.StatusCode, nil, fmt.Errorf("%w: answer larger than %d bytes", ErrProtocol, maxResponseBody)
	}
	return resp.StatusCode, data, nil
}

// decodeResponse decodes an answer body leniently: unknown fields are
// allowed (a third party may add some), anything but a JSON object is not.
func decodeResponse(data []byte) (*response, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("%w: the answer is not a JSON object", ErrProtocol)
	}
	var r response
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: the answer is not valid JSON", ErrProtocol)
	}
	return &r, nil
}

// resolve makes ref absolute against base, which the reference client does
// not do (spec §8.4): servers should send absolute URLs, and a relative one
// is taken relative to the init URL. Only http(s) URLs are accepted.
func resolve(base *url.URL, ref string) (string, error) {
	if ref == "" {
		return "", errors.New("missing")
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", errors.New("not a URL")
	}
	u = base.ResolveReference(u)
	if !httpURL(u) {
		return "", errors.New("not an http(s) URL")
	}
	return u.String(), nil
}

// checkDischarge decodes a discharge and checks that it is for the job's
// ticket (and bound, if required).
func checkDischarge(s string, j job, requireBinding bool) (string, error) {
	s = strings.TrimSpace(s)
	m, err := caveat.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: the discharge does not decode: %v", ErrProtocol, err)
	}
	if !bytes.Equal(m.Nonce.KID, j.ticket) {
		return "", fmt.Errorf("%w: the discharge is for another ticket", ErrProtocol)
	}
	if requireBinding && j.binding != nil && !boundTo(m, j.binding) {
		return "", fmt.Errorf("%w: the discharge is not bound to its permission token", ErrProtocol)
	}
	return s, nil
}

func boundTo(d *caveat.Macaroon, binding []byte) bool {
	for _, c := range d.Caveats {
		if c.Type != caveat.TypeBindToParentToken {
			continue
		}
		v, err := c.Decode()
		if b, ok := v.(*caveat.BindToParentToken); err == nil && ok && bytes.Equal(*b, binding) {
			return true
		}
	}
	return false
}
