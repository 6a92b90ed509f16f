package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caveatdev/caveat/client"
)

// CheckOptions tune Check.
type CheckOptions struct {
	// Settle is how long after the last recorded revocation Check starts
	// (DefaultSettle when 0): a revocation reaches the other replicas
	// within a second.
	Settle time.Duration
	// Workers is the number of concurrent checks (16 when 0).
	Workers int
}

// DefaultSettle is how long a revocation may take to reach every replica.
const DefaultSettle = time.Second

// CheckResult is what Check found.
type CheckResult struct {
	// Mints, Revoked and Unknown count the recorded mints, successful
	// revocations and revocations of unknown outcome.
	Mints   int `json:"mints"`
	Revoked int `json:"revoked"`
	Unknown int `json:"revocations_unknown"`
	// Requests counts the authorize requests Check made.
	Requests int `json:"requests"`
	// Problems lists what is wrong, at most maxProblems of them;
	// ProblemCount counts them all.
	Problems     []string `json:"problems"`
	ProblemCount int      `json:"problem_count"`
}

// maxProblems bounds the problems listed.
const maxProblems = 50

func (c *CheckResult) problem(format string, args ...any) {
	c.ProblemCount++
	if len(c.Problems) < maxProblems {
		c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
	}
}

// Check verifies a run's records against every replica of t: each token
// whose mint returned success is listed (GET /v1/tokens) and authorizes
// its access, unless it was revoked; each token whose revocation returned
// success is listed as revoked and is refused as revoked. A revocation of
// unknown outcome may have happened or not, but every replica must agree
// with the list. The error is about checking itself (a login, a list that
// fails); what is wrong with the deployment is in the result's Problems.
func Check(ctx context.Context, t Target, recs []Record, opt CheckOptions) (*CheckResult, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if opt.Settle <= 0 {
		opt.Settle = DefaultSettle
	}
	if opt.Workers <= 0 {
		opt.Workers = 16
	}
	res := &CheckResult{Problems: []string{}}
	mints := map[string]Record{}
	revoked := map[string]bool{}
	unknown := map[string]bool{}
	var order []string
	var last time.Time
	for i, r := range recs {
		switch r.Op {
		case "setup":
			if t.Org != "" && t.Org != r.Org {
				return nil, fmt.Errorf("the record is of organization %q, not %q", r.Org, t.Org)
			}
			t.Org = r.Org
		case "mint":
			if r.ID == "" || r.Token == "" || len(r.Access) == 0 {
				return nil, fmt.Errorf("record %d: a mint without id, token or access", i+1)
			}
			if _, dup := mints[r.ID]; !dup {
				order = append(order, r.ID)
			}
			mints[r.ID] = r
		case "revoke":
			revoked[r.ID] = true
		case "revoke-unknown":
			unknown[r.ID] = true
		default:
			return nil, fmt.Errorf("record %d: unknown op %q", i+1, r.Op)
		}
		if (r.Op == "revoke" || r.Op == "revoke-unknown") && r.At.After(last) {
			last = r.At
		}
	}
	if t.Org == "" {
		return nil, errors.New("the record has no setup line naming the organization")
	}
	for id := range revoked {
		if _, ok := mints[id]; !ok {
			res.problem("token %s: its revocation is recorded but not its mint", id)
		}
		delete(unknown, id) // a later success settles an unknown attempt
	}
	res.Mints, res.Revoked, res.Unknown = len(mints), len(revoked), len(unknown)

	if wait := time.Until(last.Add(opt.Settle)); wait > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}

	fx := &Fixture{target: t, transport: newHTTPTransport(opt.Workers)}
	defer fx.Close()
	base, err := fx.firstHealthy(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := fx.login(ctx, client.New(base, &http.Client{Transport: fx.transport, Timeout: time.Minute}))
	if err != nil {
		return nil, err
	}

	// Each replica's list, and what each token should be.
	wantRevoked := map[string]bool{}
	for id := range revoked {
		wantRevoked[id] = true
	}
	for _, u := range t.URLs {
		// The organization may hold many more tokens than the record:
		// keep only the recorded ones, a page at a time.
		listed := make(map[string]client.Token, len(order))
		cl := client.New(u, &http.Client{Transport: sess, Timeout: time.Minute})
		var err error
		for page, perr := range cl.Tokens(ctx, client.TokenQuery{Org: t.Org, Expired: true}, client.Page{Limit: 1000}) {
			if err = perr; err != nil {
				break
			}
			for _, tok := range page {
				if _, ok := mints[tok.ID]; ok {
					listed[tok.ID] = tok
				}
			}
		}
		if err != nil {
			res.problem("%s: listing the tokens of %s: %v", u, t.Org, err)
			continue
		}
		for _, id := range order {
			tok, ok := listed[id]
			if !ok {
				res.problem("%s: token %s, minted through %s at %s, is not listed", u, id, mints[id].URL, mints[id].At.Format(time.RFC3339Nano))
				continue
			}
			isRevoked := tok.RevokedAt != nil
			switch {
			case revoked[id] && !isRevoked:
				res.problem("%s: token %s, whose revocation returned success, is listed as not revoked", u, id)
			case !revoked[id] && !unknown[id] && isRevoked:
				res.problem("%s: token %s, never revoked, is listed as revoked", u, id)
			}
			if _, decided := wantRevoked[id]; unknown[id] && !decided {
				wantRevoked[id] = isRevoked // the first list decides; every replica must agree with it
			}
		}
	}

	// Each token, through each replica.
	type job struct {
		url string
		id  string
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	ep := &endpoints{plain: &http.Client{Transport: fx.transport}, timeout: DefaultTimeout}
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				m := mints[j.id]
				body, _ := json.Marshal(map[string]any{"header": m.Token, "access": m.Access})
				a := ep.once(ctx, call{method: "POST", path: "/v1/tokens/authorize", body: body}, j.url)
				want, wantText, what := http.StatusOK, "", "is refused"
				if wantRevoked[j.id] {
					want, wantText, what = http.StatusUnauthorized, "revoked", "is not refused as revoked"
				}
				if out := classify(&a, want, wantText); out != OutcomeOK && out != OutcomeDenied {
					mu.Lock()
					res.problem("%s: token %s %s: %s", j.url, j.id, what, a.describe())
					mu.Unlock()
				}
				mu.Lock()
				res.Requests++
				mu.Unlock()
			}
		}()
	}
	for _, u := range t.URLs {
		for _, id := range order {
			select {
			case jobs <- job{url: u, id: id}:
			case <-ctx.Done():
			}
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	sort.Strings(res.Problems)
	return res, nil
}

// Err returns an error summarizing the problems, or nil.
func (c *CheckResult) Err() error {
	if c.ProblemCount == 0 {
		return nil
	}
	more := ""
	if c.ProblemCount > len(c.Problems) {
		more = fmt.Sprintf("\n… and %d more", c.ProblemCount-len(c.Problems))
	}
	return fmt.Errorf("%d problems:\n%s%s", c.ProblemCount, strings.Join(c.Problems, "\n"), more)
}
