package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Config is a run's configuration.
type Config struct {
	// Clients is the number of concurrent clients (DefaultClients when 0).
	Clients int
	// Duration is how long clients start new requests (DefaultDuration
	// when 0); requests in flight then finish.
	Duration time.Duration
	// Mix weighs the requests (DefaultMix when zero).
	Mix Mix
	// Retries bounds the attempts after the first (DefaultRetries when
	// 0; negative for none).
	Retries int
	// Timeout bounds each attempt (DefaultTimeout when 0).
	Timeout time.Duration
	// Record, when set, is the file that receives the Records.
	Record string
	// ForceRecord overwrites an existing record file.
	ForceRecord bool
	// Progress receives a line every second; nil means none.
	Progress io.Writer
}

func (c *Config) defaults() {
	if c.Clients <= 0 {
		c.Clients = DefaultClients
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
}

// run is the state of a run shared by its clients.
type run struct {
	fx  *Fixture
	cfg Config
	ep  *endpoints
	rec *recorder
	// done and errs count finished requests and errors, for the progress
	// line.
	done atomic.Uint64
	errs atomic.Uint64
}

// Run drives the deployment with the mix until cfg.Duration has passed,
// then waits for the requests in flight. If ctx ends first, Run stops at
// once and summarizes what finished. The error is about the run itself
// (the record file); the requests' errors are in the Result.
func Run(ctx context.Context, fx *Fixture, cfg Config) (*Result, error) {
	cfg.defaults()
	r := &run{fx: fx, cfg: cfg}
	r.ep = &endpoints{
		urls:    fx.target.URLs,
		plain:   &http.Client{Transport: fx.transport},
		session: &http.Client{Transport: fx.session},
		retries: cfg.Retries,
		timeout: cfg.Timeout,
		pause:   100 * time.Millisecond,
	}
	if cfg.Record != "" {
		rec, err := createRecorder(cfg.Record, cfg.ForceRecord)
		if err != nil {
			return nil, err
		}
		r.rec = rec
		r.rec.add(Record{Op: "setup", At: time.Now().UTC(), Org: fx.Org, OrgID: fx.OrgID})
	}

	start := time.Now()
	deadline := start.Add(cfg.Duration)
	all := make([]*stats, cfg.Clients)
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		all[i] = &stats{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(ctx, all[i], deadline, uint64(i))
		}()
	}
	finished := make(chan struct{})
	timeline := make(chan []Second, 1)
	go func() { timeline <- r.progress(start, finished) }()
	wg.Wait()
	elapsed := time.Since(start)
	close(finished)

	res := &Result{Start: start.UTC(), Clients: cfg.Clients, URLs: fx.target.URLs, Mix: cfg.Mix.String()}
	var total stats
	for _, s := range all {
		total.merge(s)
	}
	res.summarize(&total, elapsed)
	res.Timeline = <-timeline
	res.Records = r.rec.count()
	if err := r.rec.close(); err != nil {
		return res, err
	}
	return res, nil
}

// progress writes a line every second until finished is closed, and
// returns the timeline.
func (r *run) progress(start time.Time, finished <-chan struct{}) []Second {
	var tl []Second
	var lastDone, lastErrs uint64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sample := func(whole bool) {
		done, errs := r.done.Load(), r.errs.Load()
		tl = append(tl, Second{Second: len(tl) + 1, Requests: done - lastDone, Errors: errs - lastErrs})
		if r.cfg.Progress != nil && whole {
			fmt.Fprintf(r.cfg.Progress, "caveat-load: %3.0fs %9d requests %7d req/s %6d errors\n",
				time.Since(start).Seconds(), done, done-lastDone, errs)
		}
		lastDone, lastErrs = done, errs
	}
	for {
		select {
		case <-tick.C:
			sample(true)
		case <-finished:
			if r.done.Load() != lastDone {
				sample(false) // the requests that finished in the last part of a second
			}
			return tl
		}
	}
}

// minted is a token a client minted, and the authorize request it should
// pass until it is revoked.
type minted struct {
	id   string
	body []byte
}

// revokedToken is the authorize request of a token the client revoked,
// and when the revocation returned.
type revokedToken struct {
	body []byte
	at   time.Time
}

// own holds the tokens a client minted, for its own authorize requests.
type own struct {
	live    []minted
	revoked []revokedToken // the newest keepRevoked
}

// keepRevoked bounds the revoked tokens a client keeps asking about.
const keepRevoked = 16

// ownShare is the share of a client's authorize requests that are about
// its own tokens, when it has some: one in ownShare.
const ownShare = 8

// ownCase returns, one time in ownShare, an authorize request of one of
// the client's tokens: a live one, meant to be allowed, or one revoked
// more than DefaultSettle ago, meant to be refused as revoked by every
// replica, which has had the time to evict it from its cache.
func (o *own) ownCase(rng *rand.Rand, now time.Time) (prepared, bool) {
	if rng.IntN(ownShare) != 0 {
		return prepared{}, false
	}
	settled := 0
	for _, t := range o.revoked {
		if now.Sub(t.at) > DefaultSettle {
			settled++
		}
	}
	switch n := len(o.live) + settled; {
	case n == 0:
		return prepared{}, false
	case rng.IntN(n) < len(o.live):
		return prepared{name: "a live token of this client", body: o.live[rng.IntN(len(o.live))].body, want: 200}, true
	}
	i := rng.IntN(settled)
	for _, t := range o.revoked {
		if now.Sub(t.at) > DefaultSettle {
			if i == 0 {
				return prepared{name: "a token this client revoked", body: t.body, want: 401, wantText: "revoked"}, true
			}
			i--
		}
	}
	return prepared{}, false // not reached: i < settled
}

// client sends requests until the deadline (or until ctx ends).
func (r *run) client(ctx context.Context, s *stats, deadline time.Time, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	var mine own
	for ctx.Err() == nil && time.Now().Before(deadline) {
		start := time.Now()
		var kind Kind
		var out Outcome
		var a answer
		switch r.cfg.Mix.pick(rng) {
		case 0:
			kind = KindAuthorize
			p, ok := mine.ownCase(rng, start)
			if !ok {
				p = r.fx.authorize[rng.IntN(len(r.fx.authorize))]
			}
			a, out = r.prepared(ctx, "/v1/tokens/authorize", p)
		case 1:
			kind = KindAuthenticate
			a, out = r.prepared(ctx, "/v1/tokens/authenticate", r.fx.authenticate[rng.IntN(len(r.fx.authenticate))])
		case 2:
			kind = KindMachineStart
			op := "start"
			if rng.IntN(2) == 0 {
				kind, op = KindMachineStop, "stop"
			}
			a, out = r.machine(ctx, r.fx.Machines[rng.IntN(len(r.fx.Machines))], op)
		default:
			if len(mine.live) > 0 && rng.IntN(2) == 0 {
				kind = KindRevoke
				m := mine.live[0]
				mine.live = mine.live[1:]
				a, out = r.revoke(ctx, m)
				if out == OutcomeOK {
					mine.revoked = append(mine.revoked, revokedToken{body: m.body, at: time.Now()})
					if len(mine.revoked) > keepRevoked {
						mine.revoked = mine.revoked[1:]
					}
				}
			} else {
				kind = KindMint
				var m minted
				a, m, out = r.mint(ctx)
				if m.id != "" {
					mine.live = append(mine.live, m)
				}
			}
		}
		if ctx.Err() != nil {
			return // interrupted: this request's end says nothing about the deployment
		}
		s.latency[kind].add(time.Since(start))
		s.outcomes[kind][out]++
		if a.attempts > 1 {
			s.retries += uint64(a.attempts - 1)
			if !out.IsError() {
				s.recovered++
			}
		}
		r.done.Add(1)
		if out.IsError() {
			r.errs.Add(1)
		}
	}
}

// classify maps an answer to an outcome, given the status and word that
// a refusal is meant to come with (want 200: none is).
func classify(a *answer, want int, wantText string) Outcome {
	switch {
	case a.err != nil:
		return OutcomeNetwork
	case a.status >= 500:
		return Outcome5xx
	case a.status == want && (want < 300 || bytes.Contains(a.body, []byte(wantText))):
		if want < 300 {
			return OutcomeOK
		}
		return OutcomeDenied
	case a.status < 300 && want >= 400:
		return OutcomeUnintendedAllow
	case want < 300 && (a.status == http.StatusUnauthorized || a.status == http.StatusForbidden):
		return OutcomeUnintendedDenial
	}
	return OutcomeOther4xx
}

// prepared sends a prepared authorize or authenticate request.
func (r *run) prepared(ctx context.Context, path string, p prepared) (answer, Outcome) {
	a := r.ep.do(ctx, call{method: "POST", path: path, body: p.body})
	return a, classify(&a, p.want, p.wantText)
}

// machine starts or stops a machine with the rC token. A 412 is the
// machine being in another state: an expected conflict.
func (r *run) machine(ctx context.Context, id, op string) (answer, Outcome) {
	a := r.ep.do(ctx, call{method: "POST", path: "/v1/apps/" + appA + "/machines/" + url.PathEscape(id) + "/" + op,
		auth: r.fx.control})
	if a.err == nil && a.status == http.StatusPreconditionFailed {
		return a, OutcomeConflict
	}
	return a, classify(&a, http.StatusOK, "")
}

// mint mints a deploy token of load-a with the admin session and records
// it when that succeeded.
func (r *run) mint(ctx context.Context) (answer, minted, Outcome) {
	a := r.ep.do(ctx, call{method: "POST", path: "/v1/tokens", body: r.fx.mintBody, asSession: true})
	out := classify(&a, http.StatusCreated, "")
	if out != OutcomeOK {
		return a, minted{}, out
	}
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(a.body, &tok); err != nil || tok.ID == "" || tok.Token == "" {
		// A 201 without a token is a broken answer, not a mint.
		return a, minted{}, OutcomeOther4xx
	}
	r.rec.add(Record{Op: "mint", At: time.Now().UTC(), URL: a.url, ID: tok.ID, Token: tok.Token, Access: r.fx.mintAccess})
	body, _ := json.Marshal(map[string]any{"header": tok.Token, "access": r.fx.mintAccess}) // strings and a raw message always encode
	return a, minted{id: tok.ID, body: body}, OutcomeOK
}

// revoke revokes a token the client minted, with the admin session, and
// records the revocation when it succeeded, or when its outcome is
// unknown.
func (r *run) revoke(ctx context.Context, m minted) (answer, Outcome) {
	a := r.ep.do(ctx, call{method: "DELETE", path: "/v1/tokens/" + url.PathEscape(m.id), asSession: true})
	out := classify(&a, http.StatusOK, "")
	switch {
	case out == OutcomeOK:
		r.rec.add(Record{Op: "revoke", At: time.Now().UTC(), URL: a.url, ID: m.id})
	case out == OutcomeNetwork || out == Outcome5xx:
		r.rec.add(Record{Op: "revoke-unknown", At: time.Now().UTC(), URL: a.url, ID: m.id})
	}
	return a, out
}
