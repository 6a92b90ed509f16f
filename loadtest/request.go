package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// endpoints sends requests to the base URLs in turn and sends a failed
// request again to the next one.
type endpoints struct {
	urls    []string
	plain   *http.Client // requests that carry their own Authorization
	session *http.Client // requests made as the admin session
	next    atomic.Uint64
	// retries bounds the attempts after the first.
	retries int
	// timeout bounds each attempt.
	timeout time.Duration
	// pause is the wait before a new round of attempts, once every URL
	// has failed.
	pause time.Duration
}

// newHTTPTransport returns the transport every request goes through: one
// pool of keep-alive connections big enough for every client.
func newHTTPTransport(clients int) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no limit
		MaxIdleConnsPerHost:   clients + 8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: time.Minute,
	}
}

// call is one request.
type call struct {
	method string
	path   string
	body   []byte
	// auth is the Authorization header, if any.
	auth string
	// asSession sends the request with the admin session.
	asSession bool
}

// answer is how a request ended: the last attempt's status and body, or
// its network error.
type answer struct {
	status   int
	body     []byte
	url      string
	err      error
	attempts int
}

// retryable reports whether an attempt's failure may be a replica's
// rather than the request's: it is worth sending to another replica.
func (a *answer) retryable() bool {
	if a.err != nil {
		return true
	}
	switch a.status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// do sends c to the next URL, and again to the following ones while it
// fails in a retryable way, at most e.retries more times. It stops early
// when ctx is done.
func (e *endpoints) do(ctx context.Context, c call) answer {
	first := int(e.next.Add(1) - 1)
	var a answer
	for attempt := 0; attempt <= e.retries; attempt++ {
		if attempt > 0 && attempt%len(e.urls) == 0 {
			t := time.NewTimer(e.pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return a
			case <-t.C:
			}
		}
		base := e.urls[(first+attempt)%len(e.urls)]
		a = e.once(ctx, c, base)
		a.attempts = attempt + 1
		if !a.retryable() || ctx.Err() != nil {
			return a
		}
	}
	return a
}

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// once makes one attempt.
func (e *endpoints) once(ctx context.Context, c call, base string) answer {
	a := answer{url: base}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, body)
	if err != nil {
		a.err = err
		return a
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	hc := e.plain
	if c.asSession {
		hc = e.session
	}
	resp, err := hc.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		a.err = fmt.Errorf("reading the answer: %w", err)
		return a
	}
	a.status = resp.StatusCode
	return a
}

// describe renders an answer for an error message: the status and the
// start of the body, or the network error.
func (a *answer) describe() string {
	if a.err != nil {
		return fmt.Sprintf("%s: %v", a.url, a.err)
	}
	msg := strings.TrimSpace(string(a.body))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return fmt.Sprintf("%s: HTTP %d %s", a.url, a.status, msg)
}
